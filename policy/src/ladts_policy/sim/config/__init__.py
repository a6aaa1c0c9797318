"""Scenario configuration: typed configs, the YAML schema and its loader."""
