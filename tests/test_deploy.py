"""deploy/: the systemd units verify, and the Dockerfile, compose file, crontab and env example agree
with the code (commands, exit codes, paths, secrets). Docker itself cannot run here: static checks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crawler import cli as cli_mod
from crawler.config import parse_config, shipped_config_text
from crawler.logs import DEFAULT_SECRET_ENV

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("litmon-run.service", "litmon-run.timer", "litmon.service")


def unit_settings(name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def litmon_commands(text: str) -> list[str]:
    """The litmon subcommands a deploy file runs (after global options)."""
    found = []
    for match in re.finditer(r"bin/litmon((?:\s+-{1,2}[\w-]+(?:\s+\S+\.toml)?)*)\s+([a-z]+)", text):
        found.append(match.group(2))
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    result = subprocess.run(["bash", str(DEPLOY / "check-units.sh")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for unit in (*UNITS, "litmon-notify@.service"):
        assert f"check-units: {unit}: ok" in result.stdout
    exposure = {
        name: float(level)
        for name, level in re.findall(r"check-units: (\S+\.service): .*exposure level for \S+: (\d+\.\d+)", result.stdout)
    }
    # the litmon units are locked down (OK); the root mailer keeps what sendmail needs (MEDIUM, was 9.6 UNSAFE)
    assert exposure["litmon-run.service"] < 2 and exposure["litmon.service"] < 2, exposure
    assert exposure["litmon-notify@.service"] < 7, exposure

    broken = tmp_path / "deploy"
    shutil.copytree(DEPLOY, broken)
    unit = broken / "systemd" / "litmon.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes"))
    failed = subprocess.run(["bash", str(broken / "check-units.sh")], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "litmon.service: PROBLEM" in failed.stderr and "NoNewPrivilegs" in failed.stderr


def test_units_run_litmon_hardened_as_a_dedicated_user():
    run, timer, serve = (unit_settings(u) for u in UNITS)
    assert run["ExecStart"] == ["/opt/litmon/venv/bin/litmon run"] and serve["ExecStart"] == ["/opt/litmon/venv/bin/litmon serve"]
    assert run["Type"] == ["oneshot"] and run["SuccessExitStatus"] == [str(cli_mod.EXIT_LOCKED)]
    assert timer["Unit"] == ["litmon-run.service"] and timer["Persistent"] == ["true"]
    sysusers = (DEPLOY / "systemd" / "litmon.sysusers.conf").read_text()
    for unit in (run, serve):
        assert unit["User"] == ["litmon"] and unit["Group"] == ["litmon"] and re.search(r"^u litmon ", sysusers, re.M)
        assert unit["StateDirectory"] == ["litmon"] and unit["WorkingDirectory"] == ["/var/lib/litmon"]
        assert unit["ProtectSystem"] == ["strict"] and unit["NoNewPrivileges"] == ["yes"] and unit["ProtectHome"] == ["yes"]
        assert unit["CapabilityBoundingSet"] == [""] and unit["PrivateTmp"] == ["yes"]
        assert unit["EnvironmentFile"] == ["-/etc/litmon/litmon.env"]
        assert int(unit["TimeoutStopSec"][0]) >= 60  # time for the current batch after SIGTERM


def test_dockerfile_builds_a_slim_non_root_image_with_a_volume_and_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages and all(image.endswith("-slim") for image in stages)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^VOLUME \["/data"\]', text, re.M) and re.search(r"^WORKDIR /data", text, re.M)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):  # every copied path exists in the repo
        for path in source.split():
            assert (ROOT / path).exists(), path
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for needed in ("crawler", "config", "pyproject.toml", "README.md"):
        assert needed not in ignored
    health = re.search(r"^HEALTHCHECK .* CMD \[(.+)\]$", text, re.M)
    args = [a.strip(' "') for a in health.group(1).split(",")]
    assert args[0] == "litmon" and args[-1] in cli_mod.cli.commands
    assert re.search(r'^ENTRYPOINT \["litmon"\]', text, re.M) and re.search(r'^CMD \["serve"\]', text, re.M)
    assert "serve" in cli_mod.cli.commands
    assert re.search(r"^STOPSIGNAL SIGTERM", text, re.M)
    config_path = re.search(r"LITMON_CONFIG=(\S+)", text).group(1)
    assert f"COPY config/litmon.toml {config_path}" in text


def test_compose_file_matches_the_dockerfile():
    text = (DEPLOY / "compose.yaml").read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    context = re.search(r"^\s+context: (\S+)", text, re.M).group(1)
    name = re.search(r"^\s+dockerfile: (\S+)", text, re.M).group(1)
    assert (DEPLOY / context / name).resolve() == (DEPLOY / "Dockerfile").resolve()
    assert re.search(r"^\s+- litmon-data:/data$", text, re.M) and re.search(r"^  litmon-data:", text, re.M)
    config_path = re.search(r"LITMON_CONFIG=(\S+)", dockerfile).group(1)
    assert re.search(rf"^\s+- \./litmon\.toml:{re.escape(config_path)}:ro$", text, re.M)
    assert re.search(r"^\s+- litmon\.env$", text, re.M) and (DEPLOY / "litmon.env.example").exists()
    grace = int(re.search(r"stop_grace_period: (\d+)s", text).group(1))
    assert grace >= int(unit_settings("litmon.service")["TimeoutStopSec"][0])
    assert re.search(r"^\s+restart: unless-stopped$", text, re.M) and "no-new-privileges:true" in text
    assert "\t" not in text  # YAML forbids tabs for indentation


def test_env_example_lists_every_secret():
    config = parse_config(shipped_config_text(), "shipped")
    names = {s["api_key_env"] for s in config.sources.values() if s.get("api_key_env")} | {config.email.password_env}
    names |= set(DEFAULT_SECRET_ENV)
    example = (DEPLOY / "litmon.env.example").read_text()
    for name in names:
        assert re.search(rf"^{name}=$", example, re.M), f"{name} missing from deploy/litmon.env.example"


def test_crontab_example_runs_existing_commands_and_accepts_the_lock_exit_code():
    text = (DEPLOY / "crontab.example").read_text()
    commands = litmon_commands(text)
    assert {"run", "status", "backup"} <= set(commands)
    assert set(commands) <= set(cli_mod.cli.commands)
    assert f'[ "$rc" -eq {cli_mod.EXIT_LOCKED} ]' in text
    for line in text.splitlines():
        if line and not line.startswith("#") and "=" not in line.split()[0]:
            assert len(line.split()[:6]) == 6 and line.split()[5] == "litmon"  # /etc/cron.d format: a user column


def test_readme_documents_every_exit_code_and_the_deploy_steps():
    readme = (ROOT / "README.md").read_text()
    codes = {name: value for name, value in vars(cli_mod).items() if name.startswith("EXIT_")}
    table = readme.split("Exit codes", 1)[1].split("\n\n", 2)[1]
    for value in codes.values():
        assert re.search(rf"^\| \*\*{value}\*\* \|", table, re.M), f"exit code {value} undocumented"
    deploy = readme.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "### cron",
        "### systemd",
        "### Docker",
        "deploy/crontab.example",
        "deploy/systemd/litmon-run.timer",
        "deploy/systemd/litmon.service",
        "deploy/compose.yaml",
        "deploy/litmon.env.example",
        "deploy/check-units.sh",
        "litmon backup",
        "litmon check",
        "litmon status",
    ):
        assert needle in deploy, needle


def test_a_failed_run_unit_mails_someone_through_on_failure():
    """Exit 1 (a source crossed fail_after, a delivery failed) or 2 fails the unit: OnFailure= mails it (issue #10)."""
    run = unit_settings("litmon-run.service")
    [on_failure] = run["OnFailure"]
    template = on_failure.split("@", 1)[0] + "@.service"
    notify = (DEPLOY / "systemd" / template).read_text()
    assert on_failure == "litmon-notify@%n.service" and "/usr/sbin/sendmail" in notify and 'journalctl -u "%i"' in notify
    # hardened without breaking an MTA: postfix's sendmail runs the setgid postdrop and queues under /var/spool
    settings = unit_settings(template)
    assert (
        settings["ProtectSystem"] == ["full"] and settings["PrivateTmp"] == ["yes"] and settings["ProtectHome"] == ["read-only"]
    )
    assert not {"NoNewPrivileges", "RestrictSUIDSGID", "CapabilityBoundingSet", "DynamicUser", "User"} & settings.keys()
    cron = (DEPLOY / "crontab.example").read_text()
    assert "MAILTO=" in cron and "out=$(/opt/litmon/venv/bin/litmon -q run 2>&1)" in cron
