"""Placement annotations, kwok stages, records and quantities (no cluster)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest
from e2e.emulation import annotations as ann
from e2e.emulation.clock import ClusterClock
from e2e.emulation.kwok_stages import AIGC_EXCLUSION, with_aigc_stages
from e2e.emulation.pods import aigc_pod_manifest, memory_request_bytes, parse_work
from e2e.emulation.records import PodRecord, RecordLog, read_records


def test_placement_note_round_trips_exactly() -> None:
    note = ann.PlacementNote(7, "n1", 0.1, 1 / 3, 2 / 3 + 10.0, True,
                             (("sd15", (0.2, 3)), ("x", (1 / 7, 4))), (("x", 10.0 + 1 / 3),))
    clock = ClusterClock(10.0, origin=1_700_000_000.0)
    written = note.annotations(clock.epoch_of(note.start_s), clock.epoch_of(note.finish_s))
    assert all(k.startswith("emulation.ladts.io/") for k in written)
    assert ann.parse_note(written) == note
    finish = datetime.fromisoformat(written[ann.FINISH_TIME].replace("Z", "+00:00"))
    assert finish.timestamp() == pytest.approx(clock.epoch_of(note.finish_s), abs=1e-6)


def test_malformed_notes_are_ignored() -> None:
    assert ann.parse_note(None) is None
    assert ann.parse_note({ann.SEQ: "1"}) is None
    assert ann.parse_note({ann.SEQ: "x", ann.NODE: "n"}) is None


def test_nothing_the_scheduler_reads_carries_modelled_times() -> None:
    """The extender reads ``ladts.io/*``; the emulation writes only ``emulation.ladts.io/*``."""
    body = aigc_pod_manifest("p", "sd15", 20, created_s=1.5)
    keys = set(body["metadata"]["annotations"])
    assert keys == {"ladts.io/model", "ladts.io/steps", ann.CREATED_S}
    assert parse_work(body["metadata"]["annotations"]).created_s == 1.5  # type: ignore[union-attr]


def test_exclusive_pods_request_one_gpu() -> None:
    body = aigc_pod_manifest("p", "sd15", 20, exclusive=True)
    assert body["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in str(aigc_pod_manifest("p", "sd15", 20))


def test_memory_requests_parse_with_kubernetes_quantities() -> None:
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"memory": "1.5Gi"}}},
        {"resources": {"requests": {"memory": "500M"}}},
        {"resources": {"requests": {"memory": "1e3"}}},
        {"resources": {}},
    ]}}  # fmt: skip
    assert memory_request_bytes(pod) == int(1.5 * 2**30) + 500_000_000 + 1000
    with pytest.raises(ValueError):
        memory_request_bytes(
            {"spec": {"containers": [{"resources": {"requests": {"memory": "lots"}}}]}}
        )


def test_stages_complete_aigc_pods_from_the_finish_annotation_only() -> None:
    kinds = {
        "pod-ready": "Pod",
        "pod-complete": "Pod",
        "pod-delete": "Pod",
        "node-initialize": "Node",
    }
    stock = [
        {
            "kind": "Stage",
            "metadata": {"name": n},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": k}},
        }
        for n, k in kinds.items()
    ]
    out = {d["metadata"]["name"]: d for d in with_aigc_stages(stock)}
    assert out["pod-complete"]["spec"]["selector"]["matchExpressions"] == [AIGC_EXCLUSION]
    for untouched in ("pod-ready", "pod-delete", "node-initialize"):
        assert "selector" not in out[untouched]["spec"]
    complete = out["aigc-pod-complete"]["spec"]
    jq = complete["delay"]["durationFrom"]["jq"]["expression"]
    assert jq == f'.metadata.annotations["{ann.FINISH_TIME}"]'
    assert "phase: Succeeded" in complete["next"]["statusTemplate"]
    reject = out["aigc-pod-reject"]["spec"]
    assert "phase: Failed" in reject["next"]["statusTemplate"]


def test_record_log_writes_each_pod_once_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "pods.jsonl"
    rec = PodRecord("default", "p", "u1", "n", "sd15", 20, 1, 0.0, 0.5, 1.0, 3.0, False, 12.5)
    log = RecordLog(path)
    log.append(rec)
    log.append(rec)
    again = RecordLog(path)
    assert "u1" in again
    again.append(rec)
    (back,) = read_records(path)
    assert back.service_delay_s == 2.5 and math.isnan(back.observed_finish_s)


def test_clock_maps_between_wall_and_cluster_time() -> None:
    wall = [1000.0]
    clock = ClusterClock(20.0, origin=990.0, wall=lambda: wall[0])
    assert clock.now() == 200.0
    assert clock.epoch_of(400.0) == 1010.0 and clock.cluster_of(1010.0) == 400.0
    assert clock.wall_until(400.0) == 10.0
    with pytest.raises(ValueError):
        ClusterClock(0.0)


def test_render_metrics_switches_host_label_casing() -> None:
    """Both dcgm-exporter generations: ``Hostname`` (default) and ``hostname``."""
    from e2e.emulation.exporter import render_metrics
    from e2e.emulation.state import EmulationState, NodeHardware

    hw = NodeHardware("n1", "NVIDIA-L4", gpu_count=1, vram_mib=23552, memory_bytes=2**34)
    state = EmulationState([hw])
    state.start("n1", "p", gpu_gib=8.0)
    upper = render_metrics(state.snapshot())
    lower = render_metrics(state.snapshot(), host_label="hostname")
    assert 'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-' in upper
    assert 'Hostname="n1"} 8192' in upper and "hostname=" not in upper
    assert 'hostname="n1"} 8192' in lower and "Hostname=" not in lower
    with pytest.raises(ValueError):
        render_metrics(state.snapshot(), host_label="HOSTNAME")


def test_stage_file_raises_kwok_pod_workers_with_every_option_set(tmp_path: Path) -> None:
    """kwok does not default a KwokConfiguration read from --config: all options are given."""
    import yaml
    from e2e.emulation.kwok_stages import POD_PLAY_STAGE_PARALLELISM, write_aigc_stages

    base = tmp_path / "stages-fast.yaml"
    base.write_text("kind: Stage\nmetadata: {name: pod-ready}\nspec: {resourceRef: {kind: Pod}}\n")
    docs = list(yaml.safe_load_all(write_aigc_stages(base, tmp_path / "out.yaml").read_text()))
    (conf,) = [d for d in docs if d["kind"] == "KwokConfiguration"]
    options = conf["options"]
    assert options["podPlayStageParallelism"] == POD_PLAY_STAGE_PARALLELISM
    for key in ("nodePlayStageParallelism", "nodeLeaseParallelism", "podsOnNodeSyncParallelism"):
        assert options[key] > 0
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Stage"} == {
        "pod-ready",
        "aigc-pod-complete",
        "aigc-pod-reject",
    }
