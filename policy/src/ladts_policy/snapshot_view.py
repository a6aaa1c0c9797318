"""A one-environment :class:`DecisionView` from a :class:`ClusterSnapshot`.

The operator has snapshots, the heuristics take views: this is the one bridge its heuristic
scorers (the serving fallback ``residency-greedy`` and every other entry of
``baselines.HEURISTICS``, ``ladts_operator/scoring.py``) call, so a heuristic sees exactly the
estimates the simulator's view holds (``tests/policy/test_residency_baselines.py``).
"""

from __future__ import annotations

import numpy as np

from ladts_policy.features import ClusterSnapshot
from ladts_policy.sim.base import DecisionView


def decision_view(snapshot: ClusterSnapshot, mask_N: np.ndarray | None = None) -> DecisionView:
    """The view of one decision (``E = 1``) from a snapshot of ``N`` nodes.

    ``mask_N`` (bool [N]) replaces the default mask (present, ready and the model fits),
    e.g. with the encoder's ``node_mask_S``. ``requested_fraction`` is the node's current
    share, without the pod being placed.
    """
    if mask_N is None:
        mask_N = (snapshot.present_N.astype(bool) & snapshot.ready_N.astype(bool)
                  & snapshot.fits_N.astype(bool))
    else:
        mask_N = np.asarray(mask_N, dtype=bool)
    return DecisionView(
        active_E=np.array([bool(mask_N.any())]),
        node_mask_EN=mask_N[None, :],
        capacity_EN=np.asarray(snapshot.speed_N, dtype=float)[None, :],
        queue_len_EN=np.asarray(snapshot.queue_len_N, dtype=float)[None, :],
        expected_delay_EN=np.asarray(snapshot.est_delay_s_N, dtype=float)[None, :],
        requested_fraction_EN=np.asarray(snapshot.requested_fraction_N, dtype=float)[None, :],
        local_node_E=np.array([-1]),
        cold_EN=np.asarray(snapshot.cold_N, dtype=bool)[None, :],
        load_s_EN=np.asarray(snapshot.load_s_N, dtype=float)[None, :],
        evict_cost_EN=np.asarray(snapshot.evict_cost_s_N, dtype=float)[None, :],
        popularity_E=np.array([float(snapshot.popularity)]),
    )
