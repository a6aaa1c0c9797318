"""Numpy-only simulators of AIGC task placement in edge networks."""
