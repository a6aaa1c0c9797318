"""The apiserver restarted under a running extender: the operator's watches recover.

A private kine + kube-apiserver (the session's apiserver is shared by every other test, so it
is never restarted), a kube-scheduler with the ``ladts-scheduler`` profile and the extender,
and ``ladts serve`` watching one namespace. The apiserver is SIGKILLed and started again with
the same flags (same port, PKI and kine database); objects created after that must reach the
extender's state through its watches, and the next pod must be decided by ladts again
(by the heuristic scorer, named with ``--policy none``: this tests the watches, not the
policy).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.components import (
    ApiServer,
    start_apiserver,
    start_kine,
    start_scheduler,
)
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import free_port, http_ok, wait_until

from .conftest import Serve
from .kit import (
    SCHEDULER,
    create_ready_node,
    debug_state,
    gpu_node,
    meta,
    node_of,
    pod,
    scheduler_config,
    wait_bound,
    wait_decision,
)

LABEL = {"e2e": "apiserver-restart"}


@pytest.fixture
def private_apiserver(e2e_processes: ProcessManager, e2e_binaries: Binaries,
                      e2e_workdir: Path) -> Iterator[ApiServer]:
    require_binaries(e2e_binaries, "kine", "kube-apiserver", "kube-scheduler")
    root = e2e_workdir / f"restart-{uuid.uuid4().hex[:6]}"
    kine = start_kine(e2e_processes, e2e_binaries.get("kine"), root / "kine")
    server = start_apiserver(e2e_processes, e2e_binaries.get("kube-apiserver"),
                             root / "apiserver", kine.etcd_url)
    yield server
    for proc in reversed(e2e_processes.processes):  # the restarted apiserver included
        if proc.log_path.is_relative_to(root) and proc.running():
            e2e_processes.stop(proc)


def until(predicate: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    """Poll ``predicate`` (API errors while the apiserver is down count as not yet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (client.ApiException, OSError, ValueError):
            value = None
        except Exception as exc:  # urllib3's connection errors while it restarts
            if "urllib3" not in type(exc).__module__:
                raise
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not reached within {timeout_s} s: {what}")


def test_apiserver_restart_watches_recover(private_apiserver: ApiServer,
                                           e2e_processes: ProcessManager,
                                           e2e_binaries: Binaries, e2e_workdir: Path) -> None:
    apiserver = private_apiserver
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(apiserver.kubeconfig))
    core_v1 = client.CoreV1Api(api)
    ns = "restart"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for name, profile in (("r-orin", "agx-orin-64"), ("r-nx", "orin-nx-16")):
        create_ready_node(core_v1, gpu_node(name, profile, "sd15", LABEL))
    serve = Serve(e2e_processes, apiserver.kubeconfig, apiserver.workdir.parent,
                  "--namespace", ns, "--policy", "none", port=free_port())
    try:
        serve.wait_ready()
        scheduler = start_scheduler(e2e_processes, e2e_binaries.get("kube-scheduler"),
                        apiserver.workdir.parent / "scheduler", apiserver,
                        source_config=scheduler_config(SCHEDULER, serve.url),
                        name="ladts-kube-scheduler")
        core_v1.create_namespaced_pod(ns, pod("before", "sd15", 30, LABEL))
        wait_bound(core_v1, ns, "before")
        assert wait_decision(core_v1, ns, "before")["scorer"]

        # SIGKILL, then the same command again (same port, PKI and kine database).
        argv = apiserver.process.popen.args
        assert isinstance(argv, list)
        os.killpg(apiserver.process.pid, signal.SIGKILL)
        apiserver.process.popen.wait(timeout=30)
        again = e2e_processes.start("kube-apiserver-again", [str(a) for a in argv],
                                    apiserver.workdir)
        wait_until(http_ok(f"{apiserver.url}/readyz", token=apiserver.admin_token,
                           ca_file=apiserver.pki.ca_cert),
                   "kube-apiserver /readyz after the restart", 120, again)

        # Objects created after the restart reach the extender through its watches: a
        # pod bound by someone else joins a queue, a new node appears.
        core_v1.create_namespaced_pod(ns, pod("bound-elsewhere", "sd15", 30, LABEL,
                                              node="r-nx"))
        uid = meta(core_v1.read_namespaced_pod("bound-elsewhere", ns)).uid
        until(lambda: uid in debug_state(serve)["nodes"]["r-nx"]["queue"],
              "the pod created after the restart in the extender's queue of r-nx")
        # An idle RTX 4090 with sd15 warm (0.1 + 30 x 0.024 = 0.82 s) beats the AGX Orin
        # (0.4 + 30 x 0.09 = 3.1 s, after "before") and the Orin NX (behind its queue):
        # ladts picks it only if the node watch delivered it.
        create_ready_node(core_v1, gpu_node("r-4090", "rtx-4090", "sd15", LABEL))
        until(lambda: debug_state(serve)["nodes"].get("r-4090", {}).get("ready"),
              "the node created after the restart in the extender's state")
        # The extender's answer on the restarted apiserver's objects: the new node first.
        probe = core_v1.create_namespaced_pod(ns, pod("probe", "sd15", 30, LABEL,
                                                      scheduler="nobody"))
        body = api.sanitize_for_serialization(probe)  # type: ignore[no-untyped-call]
        status, reply = serve.post("/prioritize", json.dumps(
            {"Pod": body, "NodeNames": ["r-orin", "r-nx", "r-4090"]}).encode())
        assert status == 200, reply
        assert {h["Host"]: h["Score"] for h in json.loads(reply)}["r-4090"] == 10, reply

        # Through kube-scheduler: its own watches recover on client-go's backoff; wait until
        # its cache holds the node too, so the pod below tests ladts, not that backoff.
        def cache_nodes() -> str:
            return " ".join(line for line in scheduler.metrics().splitlines()
                            if line.startswith('scheduler_cache_size{type="nodes"}'))

        until(lambda: cache_nodes().endswith(" 3"), "kube-scheduler's cache holding 3 nodes",
              timeout_s=120)
        core_v1.create_namespaced_pod(ns, pod("after", "sd15", 30, LABEL))
        landed = wait_bound(core_v1, ns, "after", timeout_s=90.0)
        decision = wait_decision(core_v1, ns, "after")
        assert decision["scorer"] and not decision.get("fallback"), decision
        assert node_of(landed) == "r-4090" and decision["scores"]["r-4090"] == 10, decision
        assert serve.process.running()
    finally:
        serve.stop()
        api.close()  # type: ignore[no-untyped-call]
