"""``ladts train --from-traces``: the scenario a cluster policy trains on, from extender traces.

The trace log of ``ladts serve --trace`` is calibrated into a readable ``k8s-edge`` scenario
by :func:`ladts_policy.calibrate.calibrate` (what ``ladts calibrate`` runs), written next to
the run as ``DIR/scenario.yaml`` (re-read through the ordinary validation), and the cluster
trainer then trains on that file. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SCENARIO_FILE = "scenario.yaml"
"""Name of the calibrated scenario inside the run folder."""


def calibrated_scenario(traces: Sequence[Path], out_dir: Path, *, base: str = "k8s-edge",
                        window_s: float = 30.0) -> Path:
    """Calibrate ``traces`` (rotated backups included) against ``base``; return the YAML path.

    Raises:
        ladts_policy.calibrate.CalibrationError: the trace cannot be calibrated.
        ladts_policy.sim.config.errors.ScenarioError: ``base`` or the written file is not valid.
    """
    from ladts_policy.calibrate import CalibrationConfig, calibrate, read_trace, trace_paths
    from ladts_policy.sim.config.scenario import load_scenario

    missing = [str(t) for t in traces if not t.is_file()]
    if missing:
        raise FileNotFoundError(f"no such trace file: {', '.join(missing)}")
    base_scenario = load_scenario(base)
    if base_scenario.kind != "k8s-edge":
        raise ValueError(f"--from-traces needs a k8s-edge base scenario, {base!r} is of kind "
                         f"{base_scenario.kind!r}")
    paths = [p for t in traces for p in trace_paths(t)]
    cal = calibrate(read_trace(paths), base_scenario, name=f"{out_dir.name}-calibrated",
                    config=CalibrationConfig(window_s=window_s))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SCENARIO_FILE
    path.write_text(cal.to_yaml())
    load_scenario(str(path))  # what was written loads back
    return path
