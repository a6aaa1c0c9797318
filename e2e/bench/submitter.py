"""Create the benchmark's pods at their arrival times, in a process of its own.

Run by the benchmarks (``python -m e2e.bench.submitter``) so that its CPU use never delays the
emulation controller or the measuring process. It reads the shared cluster clock from its
ConfigMap, creates each pod when cluster time reaches the request's arrival (stamping
``emulation.ladts.io/created-s``), and writes what it did to ``--out`` (JSON): the names created,
the largest lag behind an arrival (cluster seconds) and whether it stopped at ``--deadline``.
A small thread pool sends the creations, so one slow request does not hold back the next.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from e2e.bench.workload import NAMESPACE, Request, request_pod
from e2e.emulation.clock import read_clock


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--requests", type=Path, required=True, help="JSON written by the bench")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--deadline", type=float, required=True, help="wall epoch to stop at")
    p.add_argument("--threads", type=int, default=4)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Submit every request; return 0 (also when stopped at the deadline: see ``--out``)."""
    from kubernetes import client, config

    args = parse_args(argv)
    spec: dict[str, Any] = json.loads(args.requests.read_text("utf-8"))
    requests = [Request(**r) for r in spec["requests"]]
    profiles: dict[str, list[str]] = spec["profiles"]
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(args.kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = args.threads + 2  # read once, when the pool is built
    api = client.ApiClient(cfg)
    core = client.CoreV1Api(api)
    clock = read_clock(core, NAMESPACE)
    created: list[str] = []
    failed: list[str] = []
    max_lag_s, stopped = 0.0, False

    def create(body: dict[str, Any]) -> None:
        core.create_namespaced_pod(NAMESPACE, body, _preload_content=False)  # type: ignore[arg-type]

    futures: list[tuple[str, Future[None]]] = []
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for req in requests:
            wait = clock.epoch_of(req.arrival_s) - time.time()
            if wait > 0:
                time.sleep(wait)
            if time.time() > args.deadline:
                stopped = True
                break
            now = clock.now()
            max_lag_s = max(max_lag_s, now - req.arrival_s)
            body = request_pod(
                req,
                profiles[req.model],
                now,
                scheduler_name=spec["scheduler_name"],
                exclusive=spec["exclusive"],
            )
            futures.append((body["metadata"]["name"], pool.submit(create, body)))
        for name, future in futures:
            try:
                future.result()
                created.append(name)
            except Exception as err:  # reported, and the bench counts it as lost
                failed.append(f"{name}: {type(err).__name__}: {err}"[:300])
    api.close()  # type: ignore[no-untyped-call]
    result = {
        "created": created,
        "failed": failed,
        "max_lag_cluster_s": max_lag_s,
        "stopped_at_deadline": stopped,
        "requests": len(requests),
        "cpu_s": time.process_time(),
    }
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
