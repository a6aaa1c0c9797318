"""Scenario presets (``<name>.yaml``) and the shipped GPU profiles (``gpu-profiles.yaml``)."""
