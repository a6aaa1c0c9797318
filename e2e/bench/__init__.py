"""Benchmarks that drive the emulated cluster (scripts, not tests)."""
