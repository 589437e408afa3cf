"""Helpers the tests share (servers, configs, corpora); test modules never import each other."""
