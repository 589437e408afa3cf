#!/usr/bin/env bash
# Check the systemd units in deploy/systemd with `systemd-analyze verify` (syntax, directives,
# referenced units and executables) and print their hardening score (`systemd-analyze security
# --offline`). The units name /opt/litmon/venv/bin/litmon; the check substitutes LITMON_BIN (default:
# the litmon on PATH, else this checkout's python -m crawler wrapper) so that verify finds an executable.
# Exit: 0 all units verify, 1 a unit has a problem, 77 systemd-analyze is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-units: systemd-analyze not found (apt-get install systemd); skipped" >&2
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="${LITMON_BIN:-$(command -v litmon || true)}"
if [ -z "$bin" ]; then
  bin="$work/litmon"
  printf '#!/bin/sh\nexec python3 -m crawler "$@"\n' >"$bin"
  chmod +x "$bin"
fi
for unit in "$here"/systemd/*.service "$here"/systemd/*.timer; do
  sed "s#/opt/litmon/venv/bin/litmon#$bin#g" "$unit" >"$work/$(basename "$unit")"
done
status=0
for unit in "$work"/*.service "$work"/*.timer; do
  name="$(basename "$unit")"
  # verify prints problems on stderr and may exit 0 on warnings: any output is a failure here
  out="$(cd "$work" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$unit" 2>&1)" || true
  out="$(printf '%s\n' "$out" | grep -v -e '^$' -e 'Failed to prepare filename' -e 'Cannot add dependency job' \
    -e 'Failed to create /init.scope' -e 'Failed to setup.*cgroup' -e 'Failed to initialize manager' || true)"
  if [ -n "$out" ]; then
    echo "check-units: $name: PROBLEM" >&2
    printf '%s\n' "$out" >&2
    status=1
  else
    echo "check-units: $name: ok"
  fi
done
for unit in "$work"/*.service; do
  score="$(cd "$work" && systemd-analyze security --offline=yes --no-pager "$unit" 2>/dev/null | tail -n 1 || true)"
  [ -n "$score" ] && echo "check-units: $(basename "$unit"): $score"
done
exit "$status"
