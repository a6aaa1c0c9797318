"""Training of the paper's distributed agents (LAD-TS, D2SAC-TS, SAC-TS, DQN-TS) with torch.

Role modules, so a later policy (the cluster denoiser over ``ClusterSnapshot`` features) can
reuse the parts: :mod:`.config` (typed settings, torch-free), :mod:`.networks` (batched
per-agent layers, the diffusion and MLP actors, twin critics), :mod:`.policies` (what acts:
the trained networks), :mod:`.algorithms` (what learns: discrete SAC and DQN updates),
:mod:`.buffer` (per-agent replay with the latent action), :mod:`.paper_rollout` (the ``paper``
simulator as slot-batched agent data), :mod:`.trainer` (the loop, logs, progress) and
:mod:`.checkpoint` (files). Only :mod:`.config` and :mod:`.paper_features` import without
torch.
"""
