"""The agent state of the ``paper`` preset as network input.

Numpy only, shared by training and evaluation so both scale it the same way.
"""

from __future__ import annotations

import numpy as np

from ladts_policy.sim.dynamics.paper import PaperConstants

INPUT_SCALE_MBIT = 5.0
"""Input sizes are divided by this (the published upper bound of ``d_n``)."""


def state_width(num_nodes: int, kind: str) -> int:
    """Features per decision: ``2 + B`` (paper) or ``2 + 2B`` (extended, adds ``Q̃``)."""
    return 2 + num_nodes * (2 if kind == "extended" else 1)


def paper_features(
    input_mbit_M: np.ndarray,
    workload_M: np.ndarray,
    backlog_MN: np.ndarray,
    constants: PaperConstants,
    scale_s: float,
    in_slot_MN: np.ndarray | None = None,
) -> np.ndarray:
    """float32 [M, F]: ``[d_n, w_n, Q_1..Q_B(, Q̃_1..Q̃_B)]``, scaled.

    The published state is ``[d_n, w_n, Q_1..Q_B]`` in Mbit and Gcycles; here ``d`` and ``w``
    are divided by 5 Mbit and the largest workload and each backlog becomes its waiting time
    ``Q_e / f_e`` divided by ``scale_s`` (a fixed per-feature rescaling: same information).
    """
    w_hi = float(constants.workload_K.max())
    head_M2 = np.stack([input_mbit_M / INPUT_SCALE_MBIT, workload_M / w_hi], axis=-1)
    wait_MN = backlog_MN / (constants.capacity_N * scale_s)
    parts = [head_M2, wait_MN]
    if in_slot_MN is not None:
        parts.append(in_slot_MN / (constants.capacity_N * scale_s))
    return np.concatenate(parts, axis=-1).astype(np.float32)
