"""LAD-TS policy side: edge AIGC simulators, feature encoding, baselines and evaluation.

The simulator, feature and contract modules are numpy-only; only training and export
(added later) import torch.
"""

__version__ = "0.1.0"
