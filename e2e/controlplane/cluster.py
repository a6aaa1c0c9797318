"""One bring-up of the emulated cluster's control plane, for the pytest fixtures and the benchmarks.

:func:`start_kwok_aigc` is kwok with the AIGC stages of :mod:`e2e.emulation.kwok_stages`;
:func:`start_cluster` starts kine → kube-apiserver → kube-scheduler → kwok with the same
component starters the session fixtures of ``e2e/conftest.py`` use, and :func:`running_cluster`
wraps it for scripts (own :class:`ProcessManager`, everything stopped and checked on exit).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.controlplane.binaries import Binaries, find_binaries
from e2e.controlplane.components import (
    ApiServer,
    Kwok,
    Prometheus,
    Scheduler,
    start_apiserver,
    start_kine,
    start_kwok,
    start_prometheus,
    start_scheduler,
)
from e2e.controlplane.processes import ProcessManager
from e2e.emulation.kwok_stages import write_aigc_stages

#: Binaries a Kubernetes cluster needs (Prometheus is optional).
CLUSTER_BINARIES = ("kine", "kube-apiserver", "kube-scheduler", "kwok", "stages-fast.yaml")


def start_kwok_aigc(
    pm: ProcessManager, binaries: Binaries, workdir: Path, kubeconfig: Path
) -> Kwok:
    """kwok managing Nodes annotated ``kwok.x-k8s.io/node=fake``, with the AIGC pod stages."""
    workdir.mkdir(parents=True, exist_ok=True)
    stages = write_aigc_stages(binaries.get("stages-fast.yaml"), workdir / "stages-aigc.yaml")
    return start_kwok(pm, binaries.get("kwok"), stages, workdir, kubeconfig)


@dataclass(frozen=True)
class Cluster:
    """Handles of a running control plane."""

    apiserver: ApiServer
    scheduler: Scheduler
    kwok: Kwok
    prometheus: Prometheus | None
    workdir: Path
    processes: ProcessManager
    """Owns every process above; start helpers (e.g. a submitter) with it to stop them too."""

    def api_client(self, pool_maxsize: int = 16) -> Any:
        """A new ``kubernetes.client.ApiClient`` for the admin user (close it when done).

        ``pool_maxsize`` is set before the client exists: its connection pool reads it once,
        at construction (set afterwards it had no effect, and more concurrent requests than
        the default 5 × CPUs would each open and discard a TLS connection).
        """
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.apiserver.kubeconfig), client_configuration=cfg
        )
        cfg.connection_pool_maxsize = pool_maxsize
        return client.ApiClient(cfg)


def start_cluster(
    pm: ProcessManager,
    binaries: Binaries,
    workdir: Path,
    *,
    scheduler_config: Mapping[str, Any] | Path | None = None,
    extenders: Sequence[Mapping[str, Any]] = (),
    prometheus_targets: Mapping[str, Sequence[str]] | None = None,
    scrape_interval: str | None = None,
) -> Cluster:
    """Start kine, kube-apiserver, kube-scheduler, kwok (and Prometheus if ``scrape_interval``).

    Raises:
        FileNotFoundError: A needed binary is not built (run ``e2e/controlplane/build.sh``).
    """
    needed = CLUSTER_BINARIES + (("prometheus",) if scrape_interval else ())
    missing = binaries.missing_of(needed)
    if missing:
        raise FileNotFoundError(f"missing binaries {missing}: run e2e/controlplane/build.sh")
    kine = start_kine(pm, binaries.get("kine"), workdir / "kine")
    server = start_apiserver(
        pm, binaries.get("kube-apiserver"), workdir / "apiserver", kine.etcd_url
    )
    scheduler = start_scheduler(
        pm,
        binaries.get("kube-scheduler"),
        workdir / "scheduler",
        server,
        source_config=scheduler_config,
        extenders=extenders,
    )
    kwok = start_kwok_aigc(pm, binaries, workdir / "kwok", server.kubeconfig)
    prometheus = None
    if scrape_interval:
        prometheus = start_prometheus(
            pm,
            binaries.get("prometheus"),
            workdir / "prometheus",
            prometheus_targets,
            scrape_interval=scrape_interval,
        )
    return Cluster(server, scheduler, kwok, prometheus, workdir, pm)


@contextmanager
def running_cluster(workdir: Path, **kwargs: Any) -> Iterator[Cluster]:
    """:func:`start_cluster` for scripts: stops every process on exit and reports leftovers."""
    pm = ProcessManager()
    try:
        yield start_cluster(pm, find_binaries(), workdir, **kwargs)
    finally:
        pm.stop_all()
        left = pm.leftovers()
        if left:
            print(f"ERROR: processes left behind: {left}", file=sys.stderr)
