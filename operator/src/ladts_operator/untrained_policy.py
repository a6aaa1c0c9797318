"""Re-export of :mod:`ladts_policy.untrained_policy`.

The builder lives on the policy side, where the tests of ``ladts evaluate`` use it too.
"""

from ladts_policy.untrained_policy import OPSET, build_untrained_policy, write_untrained_policy

__all__ = ["OPSET", "build_untrained_policy", "write_untrained_policy"]
