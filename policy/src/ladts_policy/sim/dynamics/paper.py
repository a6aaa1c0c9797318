"""The DEdgeAI simulator of the LAD-TS paper (Xu et al., arXiv 2412.18212), as published.

The executable definition is ``environment_lad.py`` / ``main_lad.py`` of ChangfuXu/DEdgeAI
(arXiv 2412.18212, its system model; docs/scenarios.md). This is a clean, vectorised
reimplementation:

- ``B`` base stations (BS), each with one edge server (ES); an episode has ``T`` slots of
  ``Δ`` seconds; decisions happen in slots ``0..T-2`` (the published loops stop one slot
  early). In every slot each BS receives ``U{1..N_max}`` tasks.
- Task ``n`` (its *position* in its BS's list for the slot) has fixed attributes drawn once
  with the attribute seed: denoising steps ``q_n``, density ``ρ_n`` (Gcycles per step),
  workload ``w_n = ρ_n · q_n`` (Gcycles) and result size ``r_n`` (Mbit). Only the input size
  ``d_n`` (Mbit) and the task counts are drawn per episode.
- Service delay of a task from BS ``b`` served at ES ``e``::

      D = 1[e != b] · d_n / R_e + w_n / f_e + r_n / R_e + (Q_e + Q̃_e) / f_e

  ``Q_e`` is the backlog (Gcycles) at the start of the slot, ``Q̃_e`` the workload sent to
  ``e`` earlier in the same slot by any BS (updated after every decision). At the end of a
  slot ``Q_e ← max(Q_e + Q̃_e − f_e · Δ, 0)`` and ``Q̃_e ← 0``.
- Order inside a slot: BS 0, 1, …, B−1 in turn, each placing its tasks in order.

The arithmetic is evaluated in the published order, so with the ``published`` arrival stream
the delays match the published environment to the last bit (Opt-TS, always-local and
round-robin reproduce its episode means exactly).

Seeds and random streams
------------------------
The published scripts draw everything from numpy's global legacy generator: capacities
after ``seed(2)``, rates after ``seed(5)``, the three attribute arrays after ``seed(1)``
each, and then, *without re-seeding*, every episode's arrivals in sequence (per slot: the
``B`` task counts, then the input sizes of BS 0, 1, …). ``main_lad.py`` additionally draws
its ``[T, B, N_max, B]`` latent-action memory from ``N(0, 1)`` before the first episode.
:attr:`PaperConfig.arrival_stream` chooses how ``reset(seeds)`` maps an episode seed to
arrivals (nothing here touches the global generator):

- ``native``: arrivals come from ``numpy.random.Generator`` (PCG64) seeded with
  ``SeedSequence([seed, ARRIVAL_STREAM_TAG])`` (so a policy seeded with the same integer
  draws independent numbers). Any seed ``>= 0``; reset is O(1). Same distributions as
  published, different numbers.
- ``published``: ``seed = k`` replays episode ``k`` (0-based) of the stream that
  ``Baselines/Opt-TS/main_opt.py`` (and the DQN-TS / SAC-TS mains) consume: a legacy
  ``RandomState(attribute_seed)`` advanced past the attribute draws, then past ``k``
  earlier episodes. Seeds ``0..59`` are the published script's first 60 episodes. Valid
  while the published policy does not itself draw from the global generator (Opt-TS does
  not; a random policy drawing ``np.random`` would shift later episodes). Resetting to
  episode ``k`` replays ``k`` episodes of draws (about 0.6 ms each; checkpoints are cached).
- ``published-lad``: as ``published`` for ``main_lad.py``, whose stream is further advanced
  by the latent-memory normal draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.config.schema_fields import Fields

ARRIVAL_STREAMS = ("native", "published", "published-lad")
"""Values of :attr:`PaperConfig.arrival_stream`."""

ARRIVAL_STREAM_TAG = 0x1AD75
"""Second word of the ``SeedSequence`` of the ``native`` stream (keeps it apart from
generators seeded with the bare episode seed, e.g. the heuristics')."""

_MAX_SEED = 2**32 - 1
MAX_PUBLISHED_EPISODE = 100_000
"""Largest episode seed of the ``published`` streams (replaying costs about 0.6 ms per episode)."""
_CHECKPOINT_EVERY = 64


@dataclass(frozen=True)
class PaperConfig:
    """Parameters of the DEdgeAI simulator; the defaults are the published ones.

    "main" below means ``main_lad.py`` (identical in the DQN-TS / SAC-TS mains and, except
    ``f_max``, in ``main_opt.py``); "env" means ``environment_lad.py``.
    """

    num_nodes: int = 20
    """Base stations = edge servers ``B`` (main: ``NUM_BSs = 20``)."""

    num_slots: int = 60
    """Slots per episode ``T`` (main: ``NUM_TIME_SLOTS = 60``); decisions in ``0..T-2``."""

    slot_s: float = 1.0
    """Slot length ``Δ`` in seconds (env: ``duration = 1``)."""

    max_tasks: int = 50
    """``N_max``: tasks per BS per slot are ``U{1..N_max}``; also the number of task
    positions with fixed attributes (main: ``NUM_TASKS = 50``)."""

    input_mbit: tuple[float, float] = (2.0, 5.0)
    """Input size ``d_n`` in Mbit, ``U[low, high)``, re-drawn every episode
    (main: ``BIT_RANGE = [2, 5]``)."""

    denoising_steps: tuple[int, int] = (1, 14)
    """Required quality ``q_n`` = denoising steps, integers, both ends inclusive (main:
    ``QUALITY_RANGE = [1, 15]`` passed to ``randint``, whose high end is exclusive)."""

    density_gcycles: tuple[float, float] = (0.1024, 0.3072)
    """Computing density ``ρ_n`` in Gcycles per denoising step, ``U[low, high)``
    (env: ``comp_density``; "100–300 cycles/step" rescaled by 1024/10⁶)."""

    result_mbit: tuple[float, float] = (0.6, 1.0)
    """Result size ``r_n`` in Mbit, ``U[low, high)`` (env: ``results_bit``, a 512×512
    image)."""

    capacity_ghz: tuple[int, int] = (10, 50)
    """ES capacity ``f_e`` in GHz (Gcycles/s), integers, both ends inclusive (main:
    ``randint(10, ES_capacity_max + 1)`` with ``ES_capacity_max = 50``; ``main_opt.py``
    ships 20, see reference §3). Realised: ``[50, 25, 18, 32, 28, 21, 50, 17, 44, 41, 21,
    31, 41, 36, 30, 47, 49, 13, 48, 14]``."""

    rate_mbps: tuple[int, int] = (400, 500)
    """Link rate ``R_e`` in Mbit/s to destination ES ``e``, integers, both ends inclusive
    (env: ``randint(400, 501)``)."""

    attribute_seed: int = 1
    """Seed of ``ρ_n``, ``q_n`` and ``r_n`` (env: ``np.random.seed(1)`` before each of the
    three draws) and the start of the ``published`` arrival streams."""

    capacity_seed: int = 2
    """Seed of the capacities ``f_e`` (main: ``np.random.seed(2)``)."""

    rate_seed: int = 5
    """Seed of the rates ``R_e`` (env: ``np.random.seed(5)``)."""

    arrival_stream: str = "native"
    """How episode seeds map to arrivals: ``native``, ``published`` or ``published-lad``
    (see the module docstring). Not a published parameter: ours."""

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> PaperConfig:
        """Build a validated configuration from a mapping (the ``paper:`` section of a scenario).

        Missing keys take the published defaults.

        Raises:
            ScenarioError: a key is unknown, or a value has the wrong type or range; the
                message names the field (``paper.<field>``).
        """
        d = cls()
        f = Fields(m, "paper")
        seed_fields = ("attribute_seed", "capacity_seed", "rate_seed")
        config = cls(
            num_nodes=f.integer("num_nodes", d.num_nodes, minimum=1),
            num_slots=f.integer("num_slots", d.num_slots, minimum=2),
            slot_s=f.number("slot_s", d.slot_s, minimum=0.0, strict=True),
            max_tasks=f.integer("max_tasks", d.max_tasks, minimum=1),
            input_mbit=f.number_range("input_mbit", list(d.input_mbit)),
            denoising_steps=f.integer_range("denoising_steps", list(d.denoising_steps)),
            density_gcycles=f.number_range("density_gcycles", list(d.density_gcycles)),
            result_mbit=f.number_range("result_mbit", list(d.result_mbit)),
            capacity_ghz=f.integer_range("capacity_ghz", list(d.capacity_ghz), minimum=1),
            rate_mbps=f.integer_range("rate_mbps", list(d.rate_mbps), minimum=1),
            attribute_seed=f.integer("attribute_seed", d.attribute_seed),
            capacity_seed=f.integer("capacity_seed", d.capacity_seed),
            rate_seed=f.integer("rate_seed", d.rate_seed),
            arrival_stream=f.choice("arrival_stream", ARRIVAL_STREAMS, d.arrival_stream),
        )
        f.done()
        for name in seed_fields:
            if getattr(config, name) > _MAX_SEED:
                raise ScenarioError(f"paper.{name}: must be <= {_MAX_SEED}")
        return config


# --------------------------------------------------------------------------------------------
# Fixed per-scenario arrays and arrival streams
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperConstants:
    """The arrays fixed for a configuration (drawn exactly as the published code does)."""

    capacity_N: np.ndarray
    """float [B]: ES capacity ``f_e`` (GHz)."""

    rate_N: np.ndarray
    """float [B]: link rate ``R_e`` (Mbit/s)."""

    steps_K: np.ndarray
    """int [N_max]: denoising steps ``q_n`` of task position ``n``."""

    density_K: np.ndarray
    """float [N_max]: density ``ρ_n`` (Gcycles per step)."""

    workload_K: np.ndarray
    """float [N_max]: workload ``w_n = ρ_n · q_n`` (Gcycles)."""

    result_K: np.ndarray
    """float [N_max]: result size ``r_n`` (Mbit)."""

    @classmethod
    def draw(cls, config: PaperConfig) -> PaperConstants:
        """Draw the fixed arrays with the configured seeds (legacy ``RandomState``)."""
        b, k = config.num_nodes, config.max_tasks
        cap_lo, cap_hi = config.capacity_ghz
        rate_lo, rate_hi = config.rate_mbps
        capacity_N = np.random.RandomState(config.capacity_seed).randint(cap_lo, cap_hi + 1, b)
        rate_N = np.random.RandomState(config.rate_seed).randint(rate_lo, rate_hi + 1, b)
        density_K = np.random.RandomState(config.attribute_seed).uniform(
            *config.density_gcycles, size=k
        )
        steps_lo, steps_hi = config.denoising_steps
        steps_K = np.random.RandomState(config.attribute_seed).randint(steps_lo, steps_hi + 1, k)
        result_K = np.random.RandomState(config.attribute_seed).uniform(*config.result_mbit, size=k)
        return cls(
            capacity_N=_frozen(capacity_N.astype(np.float64)),
            rate_N=_frozen(rate_N.astype(np.float64)),
            steps_K=_frozen(steps_K.astype(np.int64)),
            density_K=_frozen(density_K),
            workload_K=_frozen(density_K * steps_K),
            result_K=_frozen(result_K),
        )


def _frozen(a: np.ndarray) -> np.ndarray:
    """Mark an array read-only and return it."""
    a.setflags(write=False)
    return a


class _SlotDraws:
    """Draws one slot's arrivals (task counts per BS, then the input sizes) from one stream."""

    def __init__(self, rng: np.random.Generator | np.random.RandomState, config: PaperConfig):
        self.rng = rng
        self.num_nodes = config.num_nodes
        self.max_tasks = config.max_tasks
        self.input_lo, self.input_hi = config.input_mbit

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(count_B, input_mbit_flat)``; inputs of BS 0 first, in task order.

        One ``uniform`` call of the total size consumes the stream exactly as the published
        per-BS calls do.
        """
        rng = self.rng
        if isinstance(rng, np.random.RandomState):
            count_B = rng.randint(1, self.max_tasks + 1, size=self.num_nodes)
        else:
            count_B = rng.integers(1, self.max_tasks + 1, size=self.num_nodes)
        d_flat = rng.uniform(self.input_lo, self.input_hi, size=int(count_B.sum()))
        return count_B.astype(np.int64), d_flat

    def skip_episode(self, num_slots: int) -> None:
        """Advance the stream past one whole episode (all ``T`` slots, as published)."""
        for _ in range(num_slots):
            self.draw()


class _PublishedStream:
    """Positions a legacy ``RandomState`` at the start of published episode ``k``."""

    def __init__(self, config: PaperConfig) -> None:
        self.config = config
        rs = np.random.RandomState(config.attribute_seed)
        # The last of the three seed(attribute_seed) draws is results_bit (N_max doubles).
        rs.uniform(*config.result_mbit, size=config.max_tasks)
        if config.arrival_stream == "published-lad":
            shape = (config.num_slots, config.num_nodes, config.max_tasks, config.num_nodes)
            rs.normal(size=shape)
        self._checkpoints: dict[int, dict[str, Any]] = {0: rs.get_state(legacy=False)}

    def episode(self, k: int) -> np.random.RandomState:
        """A fresh ``RandomState`` positioned at the first draw of episode ``k``."""
        start = max(i for i in self._checkpoints if i <= k)
        rs = np.random.RandomState()
        rs.set_state(self._checkpoints[start])
        drawer = _SlotDraws(rs, self.config)
        for i in range(start, k):
            drawer.skip_episode(self.config.num_slots)
            if (i + 1) % _CHECKPOINT_EVERY == 0:
                self._checkpoints[i + 1] = rs.get_state(legacy=False)
        self._checkpoints[k] = rs.get_state(legacy=False)
        return rs


# --------------------------------------------------------------------------------------------
# The vectorised simulator
# --------------------------------------------------------------------------------------------


class PaperSimulator:
    """``E`` DEdgeAI episodes stepped in lockstep, one task decision per environment per step.

    Each environment walks its own decision sequence (slot, BS, task position); environments
    with fewer tasks finish earlier and stay inactive until all have ended. Implements
    :class:`ladts_policy.sim.base.VecSimulator`.

    :class:`DecisionView` fields for this model: ``capacity_EN`` = ``f_e`` (GHz);
    ``queue_len_EN`` = the backlog ``Q_e + Q̃_e`` in **Gcycles** (a fluid queue: the model
    has no task counts); ``expected_delay_EN`` = the exact delay ``D`` the task would get at
    each ES, ``Q̃`` included (what Opt-TS sees); ``requested_fraction_EN`` = 0;
    ``local_node_E`` = the task's BS (-1 when inactive); ``node_mask_EN`` all True. The
    view's arrays are read-only; time-varying ones are fresh each step.
    """

    def __init__(self, config: PaperConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.constants = PaperConstants.draw(config)
        e, b, k = num_envs, config.num_nodes, config.max_tasks
        self._E, self._N, self._K = e, b, k
        self._ar_E = np.arange(e)
        self._row_E = self._ar_E * b
        c = self.constants
        # Per-position, per-ES delay terms, computed exactly as the published code does.
        self._w_over_f_KN = _frozen(c.workload_K[:, None] / c.capacity_N[None, :])
        self._r_over_rate_KN = _frozen(c.result_K[:, None] / c.rate_N[None, :])
        self._drain_N = c.capacity_N * config.slot_s
        self._mask_EN = _frozen(np.ones((e, b), dtype=bool))
        self._capacity_EN = _frozen(np.broadcast_to(c.capacity_N, (e, b)).copy())
        self._zeros_EN = _frozen(np.zeros((e, b)))
        self._published = _PublishedStream(config) if config.arrival_stream != "native" else None
        # Episode state (allocated once; reset overwrites).
        self._q_EN = np.zeros((e, b))
        self._qt_EN = np.zeros((e, b))
        self._slot_E = np.zeros(e, dtype=np.int64)
        self._bs_E = np.zeros(e, dtype=np.int64)
        self._pos_E = np.zeros(e, dtype=np.int64)
        self._cell_E = np.zeros(e, dtype=np.int64)
        """Flat index of (env, current BS) into [E, B] arrays."""
        self._task_E = np.zeros(e, dtype=np.int64)
        """Flat index of (env, current BS, position) into [E, B, N_max] arrays."""
        self._count_EB = np.ones((e, b), dtype=np.int64)
        self._input_EBK = np.zeros((e, b, k))
        self._count_flat = self._count_EB.reshape(-1)
        self._input_flat = self._input_EBK.reshape(-1)
        self._qt_flat = self._qt_EN.reshape(-1)
        self._arange_K = np.arange(k)
        self._active_E = np.zeros(e, dtype=bool)
        self._all_active = False
        self._drawers: list[_SlotDraws] = []
        self._expected_EN: np.ndarray | None = None

    # -- VecSimulator --------------------------------------------------------------------

    @property
    def num_envs(self) -> int:
        """Number of environments stepped together."""
        return self._E

    @property
    def num_nodes(self) -> int:
        """Number of edge servers ``B``."""
        return self._N

    def reset(self, seeds: list[int]) -> DecisionView:
        """Start one episode per seed; see the module docstring for the seed mapping."""
        if len(seeds) != self._E:
            raise ValueError(f"expected {self._E} seeds, got {len(seeds)}")
        self._drawers = [_SlotDraws(self._episode_rng(int(s)), self.config) for s in seeds]
        self._q_EN.fill(0.0)
        self._qt_EN.fill(0.0)
        self._slot_E.fill(0)
        self._bs_E.fill(0)
        self._pos_E.fill(0)
        self._cell_E[:] = self._row_E
        self._task_E[:] = self._row_E * self._K
        self._active_E.fill(True)
        self._all_active = True
        for env in range(self._E):
            self._draw_slot(env)
        return self._make_view()

    def step(self, actions_E: np.ndarray) -> tuple[np.ndarray, DecisionView | None]:
        """Place every active environment's pending task on ``actions_E[e]``.

        Returns:
            The service delay (s) of each placed task (NaN where inactive) and the next
            view, or ``None`` once every episode has ended.

        Raises:
            RuntimeError: called before :meth:`reset` or after every episode ended.
            ValueError: an active environment's action is not a valid ES index.
        """
        expected_EN = self._expected_EN
        if expected_EN is None:
            raise RuntimeError("step() called before reset() or after the episodes ended")
        active_E = self._active_E.copy()
        action_E = self._checked_actions(actions_E, active_E)
        flat_E = self._row_E + action_E
        delay_E = expected_EN.take(flat_E)
        work_E = self.constants.workload_K.take(self._pos_E)
        if not self._all_active:
            delay_E[~active_E] = np.nan
            work_E[~active_E] = 0.0
        self._qt_flat[flat_E] += work_E  # one entry per row: no repeated indices
        self._advance(active_E)
        if not self._all_active and not self._active_E.any():
            self._expected_EN = None
            return delay_E, None
        return delay_E, self._make_view()

    # -- extras for training and tests ----------------------------------------------------

    def paper_state(self) -> np.ndarray:
        """The paper's agent state ``[d_n, w_n, Q_1..Q_B]`` of each pending task.

        ``Q`` is the backlog at the start of the slot (Gcycles, without ``Q̃``, as the
        published state). Rows of inactive environments are zero.

        Returns:
            float32 [E, 2 + B].
        """
        state_EF = np.zeros((self._E, 2 + self._N), dtype=np.float32)
        act_E = self._active_E
        state_EF[:, 0] = self._current_input_E()
        state_EF[:, 1] = self.constants.workload_K[self._pos_E]
        state_EF[:, 2:] = self._q_EN
        state_EF[~act_E] = 0.0
        return state_EF

    def decision_key(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(slot_E, bs_E, position_E)`` of each pending task (the latent-memory key)."""
        return self._slot_E.copy(), self._bs_E.copy(), self._pos_E.copy()

    def slot_arrivals(self) -> tuple[np.ndarray, np.ndarray]:
        """``(count_EB, input_EBK)``: task counts and input sizes (Mbit) of the current slot.

        Positions ``>= count_EB[e, b]`` of ``input_EBK`` are stale; mask them. Copies.
        """
        return self._count_EB.copy(), self._input_EBK.copy()

    def step_slot(self, actions_EBK: np.ndarray) -> tuple[np.ndarray, DecisionView | None]:
        """Place every task of the current slot at once (training fast path).

        Equivalent to calling :meth:`step` once per task in the published order (BS 0..B−1,
        each in task order), bit for bit: ``Q̃`` is the running sum of the work sent earlier
        in the slot, accumulated in the same order (``tests/policy/test_paper_slot.py``).
        Every active environment must be at the start of a slot (true after ``reset`` and
        after every ``step_slot``, since all episodes have the same number of slots).

        Args:
            actions_EBK: int [E, B, N_max], the ES of task ``k`` of BS ``b``; entries past a
                BS's task count are ignored.

        Returns:
            ``delay_EBK`` (seconds, NaN where no task) and the next view, or ``None`` at the
            end of the episodes.

        Raises:
            RuntimeError: not at the start of a slot, or the episodes have ended.
            ValueError: an action is not a valid ES index.
        """
        if self._expected_EN is None:
            raise RuntimeError("step_slot() called before reset() or after the episodes ended")
        if not self._all_active or self._pos_E.any() or self._bs_E.any():
            raise RuntimeError("step_slot() needs every environment at the start of a slot")
        e, b, k = self._E, self._N, self._K
        action_EBK = np.asarray(actions_EBK)
        if action_EBK.shape != (e, b, k) or action_EBK.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers of shape ({e}, {b}, {k})")
        mask_EBK = self._arange_K < self._count_EB[:, :, None]
        action_EBK = np.where(mask_EBK, action_EBK, 0).astype(np.int64)
        if action_EBK.min() < 0 or action_EBK.max() >= self._N:
            raise ValueError(f"actions must be in 0..{self._N - 1}")
        c = self.constants
        work_EM = np.where(mask_EBK, c.workload_K, 0.0).reshape(e, b * k)
        action_EM = action_EBK.reshape(e, b * k)
        # Q̃ seen by each task: exclusive running sum per destination, in decision order.
        sent_EMN = np.zeros((e, b * k, b))
        np.put_along_axis(sent_EMN, action_EM[:, :, None], work_EM[:, :, None], axis=2)
        incl_EMN = np.cumsum(sent_EMN, axis=1)
        excl_EMN = np.concatenate([np.zeros((e, 1, b)), incl_EMN[:, :-1]], axis=1)
        qt_EM = np.take_along_axis(excl_EMN, action_EM[:, :, None], axis=2)[:, :, 0]
        q_EM = np.take_along_axis(self._q_EN, action_EM, axis=1)
        rate_M, cap_M = c.rate_N[action_EM], c.capacity_N[action_EM]
        pos_M = np.tile(self._arange_K, b)
        local_EM = action_EM == np.repeat(np.arange(b), k)[None, :]
        upload_EM = np.where(local_EM, 0.0, self._input_EBK.reshape(e, b * k) / rate_M)
        delay_EM = upload_EM + self._w_over_f_KN[pos_M, action_EM]
        delay_EM += self._r_over_rate_KN[pos_M, action_EM]
        delay_EM += (q_EM + qt_EM) / cap_M
        delay_EM[~mask_EBK.reshape(e, b * k)] = np.nan
        self._qt_EN[:] = incl_EMN[:, -1]
        self._pos_E.fill(0)
        self._bs_E.fill(b)
        self._end_slot(self._ar_E)
        np.multiply(self._cell_E, self._K, out=self._task_E)
        self._task_E += self._pos_E
        delay_EBK = delay_EM.reshape(e, b, k)
        if not self._active_E.any():
            self._expected_EN = None
            return delay_EBK, None
        return delay_EBK, self._make_view()

    @property
    def active_E(self) -> np.ndarray:
        """Whether each environment still has a decision pending (bool [E], a copy)."""
        return self._active_E.copy()

    @property
    def backlog_EN(self) -> np.ndarray:
        """Backlog ``Q_e`` at the start of the current slot (float [E, B], Gcycles, a copy)."""
        return self._q_EN.copy()

    @property
    def in_slot_EN(self) -> np.ndarray:
        """``Q̃_e``: work sent earlier in the current slot (float [E, B], Gcycles, a copy)."""
        return self._qt_EN.copy()

    # -- internals ------------------------------------------------------------------------

    def _episode_rng(self, seed: int) -> np.random.Generator | np.random.RandomState:
        """The arrival stream of the episode with this seed."""
        if seed < 0:
            raise ValueError(f"episode seeds must be >= 0, got {seed}")
        if self._published is not None:
            if seed > MAX_PUBLISHED_EPISODE:
                raise ValueError(
                    f"episode seed {seed} is beyond the {self.config.arrival_stream} stream's "
                    f"limit {MAX_PUBLISHED_EPISODE} (use arrival_stream: native)"
                )
            return self._published.episode(seed)
        return np.random.default_rng(np.random.SeedSequence([seed, ARRIVAL_STREAM_TAG]))

    def _draw_slot(self, env: int) -> None:
        """Draw the arrivals of environment ``env``'s current slot into the slot buffers."""
        count_B, d_flat = self._drawers[env].draw()
        self._count_EB[env] = count_B
        filled_BK = self._arange_K < count_B[:, None]
        self._input_EBK[env][filled_BK] = d_flat

    def _checked_actions(self, actions_E: np.ndarray, active_E: np.ndarray) -> np.ndarray:
        """Validate actions of active environments; return int64 with inactive ones zeroed."""
        action_E = np.asarray(actions_E)
        if action_E.shape != (self._E,) or action_E.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers of shape ({self._E},)")
        if not self._all_active:
            action_E = np.where(active_E, action_E, 0)
        if action_E.min() < 0 or action_E.max() >= self._N:
            env = int(np.flatnonzero((action_E < 0) | (action_E >= self._N))[0])
            raise ValueError(f"env {env}: action {int(action_E[env])} is not in 0..{self._N - 1}")
        return action_E.astype(np.int64, copy=False)

    def _advance(self, moved_E: np.ndarray) -> None:
        """Move the cursor of every environment that just decided to its next task."""
        self._pos_E += moved_E
        self._task_E += moved_E
        bs_done_E = self._pos_E >= self._count_flat.take(self._cell_E)
        if not bs_done_E.any():
            return
        self._bs_E += bs_done_E
        self._cell_E += bs_done_E
        self._pos_E[bs_done_E] = 0
        slot_done_E = self._bs_E >= self._N
        if slot_done_E.any():
            self._end_slot(np.flatnonzero(slot_done_E))
        np.multiply(self._cell_E, self._K, out=self._task_E)
        self._task_E += self._pos_E

    def _end_slot(self, env_I: np.ndarray) -> None:
        """Queue update ``Q ← max(Q + Q̃ − f·Δ, 0)`` and start of the next slot."""
        q_IN = self._q_EN[env_I] + self._qt_EN[env_I] - self._drain_N
        self._q_EN[env_I] = np.maximum(q_IN, 0.0)
        self._qt_EN[env_I] = 0.0
        self._slot_E[env_I] += 1
        self._bs_E[env_I] = 0
        self._cell_E[env_I] = self._row_E[env_I]
        over_I = self._slot_E[env_I] >= self.config.num_slots - 1
        if over_I.any():
            self._active_E[env_I[over_I]] = False
            self._all_active = False
        for env in env_I[~over_I]:
            self._draw_slot(int(env))

    def _current_input_E(self) -> np.ndarray:
        """Input size ``d_n`` (Mbit) of each pending task, float [E]."""
        return self._input_flat.take(self._task_E)

    def _make_view(self) -> DecisionView:
        """Compute the expected delays at every ES and publish the view."""
        rate_N = self.constants.rate_N
        backlog_EN = self._q_EN + self._qt_EN
        # Same operation order as the published code: ((d/R + w/f) + r/R) + (Q + Q̃)/f.
        delay_EN = self._current_input_E()[:, None] / rate_N
        delay_EN.reshape(-1)[self._cell_E] = 0.0  # no upload when local
        delay_EN += self._w_over_f_KN.take(self._pos_E, axis=0)
        delay_EN += self._r_over_rate_KN.take(self._pos_E, axis=0)
        delay_EN += backlog_EN / self.constants.capacity_N
        self._expected_EN = _frozen(delay_EN)
        local_E = (
            self._bs_E.copy() if self._all_active else np.where(self._active_E, self._bs_E, -1)
        )
        return DecisionView(
            active_E=_frozen(self._active_E.copy()),
            node_mask_EN=self._mask_EN,
            capacity_EN=self._capacity_EN,
            queue_len_EN=_frozen(backlog_EN),
            expected_delay_EN=self._expected_EN,
            requested_fraction_EN=self._zeros_EN,
            local_node_E=_frozen(local_E),
            task_size_E=_frozen(np.where(self._active_E,
                                         self.constants.workload_K.take(self._pos_E), 0.0)),
        )


# --------------------------------------------------------------------------------------------
# Gymnasium wrapper
# --------------------------------------------------------------------------------------------
