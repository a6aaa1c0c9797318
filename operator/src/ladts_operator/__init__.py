"""ladts operator side: cluster state, Prometheus metrics source, scheduler extender.

This package never imports torch (enforced by import-linter); it may use the numpy-only
feature and contract modules of ``ladts_policy``.
"""

__version__ = "0.1.0"
