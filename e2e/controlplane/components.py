"""Start each control-plane component as a loopback-only process and wait until it is ready."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from e2e.controlplane.kubeconfig import write_kubeconfig
from e2e.controlplane.pki import Pki, make_pki
from e2e.controlplane.processes import ManagedProcess, ProcessManager
from e2e.controlplane.readiness import (
    LOOPBACK,
    NotReadyError,
    free_port,
    http_get,
    http_ok,
    tcp_open,
    wait_until,
)
from e2e.controlplane.scheduler_config import (
    adapt_scheduler_config,
    default_scheduler_config,
    load_scheduler_config,
    write_scheduler_config,
)

#: Annotation that marks a Node as emulated by the kwok fixture.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE = "fake"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
KINE_SQLITE_PARAMS = (
    "_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&cache=shared"
)
#: Scheduler client rate limits when its configuration sets none (kwok's DefaultUnlimitedQPS).
UNLIMITED_QPS = 5000.0
UNLIMITED_BURST = 10000
#: Starts tried when a component exits because its port was taken meanwhile (free_port race).
PORT_ATTEMPTS = 4
_PORT_CLASH = ("address already in use", "bind: address")
T = TypeVar("T")


def on_free_port(start: Callable[[int], T], attempts: int = PORT_ATTEMPTS) -> T:
    """Call ``start(port)`` with a free loopback port; retry with another when it was taken.

    ``free_port`` only says the port was free a moment ago: another developer's process may
    bind it before ours does. A start that fails with "address already in use" in the
    component's log is retried on a fresh port; any other failure is raised at once.
    """
    for attempt in range(attempts):
        try:
            return start(free_port())
        except NotReadyError as err:
            clash = any(marker in str(err).lower() for marker in _PORT_CLASH)
            if not clash or attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# kine


@dataclass(frozen=True)
class Kine:
    """A running kine (etcd API over sqlite)."""

    process: ManagedProcess
    port: int

    @property
    def etcd_url(self) -> str:
        """Value for the apiserver's ``--etcd-servers``."""
        return f"http://{LOOPBACK}:{self.port}"


def start_kine(pm: ProcessManager, binary: Path, workdir: Path, timeout_s: float = 60) -> Kine:
    """Start kine on a free loopback port with a fresh sqlite database in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)

    def attempt(port: int) -> Kine:
        argv: list[str | Path] = [
            binary,
            f"--listen-address={LOOPBACK}:{port}",
            f"--endpoint=sqlite://{workdir / 'state.db'}?{KINE_SQLITE_PARAMS}",
            "--metrics-bind-address=0",
        ]
        proc = pm.start("kine", argv, workdir)
        wait_until(tcp_open(port), "kine to accept connections", timeout_s, proc)
        return Kine(process=proc, port=port)

    return on_free_port(attempt)


# --------------------------------------------------------------------------------------------
# kube-apiserver


@dataclass(frozen=True)
class ApiServer:
    """A running kube-apiserver with its PKI and an admin kubeconfig."""

    process: ManagedProcess
    port: int
    pki: Pki
    kubeconfig: Path
    workdir: Path

    @property
    def url(self) -> str:
        """Base URL (https, loopback)."""
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def admin_token(self) -> str:
        """Bearer token of the ``admin`` user (group ``system:masters``)."""
        return self.pki.tokens["admin"]

    def kubeconfig_for(self, user: str) -> Path:
        """Write (once) and return a kubeconfig for another user of the token file."""
        path = self.workdir / f"kubeconfig-{user.replace(':', '-')}.yaml"
        if not path.exists():
            write_kubeconfig(path, self.url, self.pki.ca_cert, self.pki.tokens[user], user)
        return path


def apiserver_args(pki: Pki, etcd_url: str, port: int, workdir: Path) -> list[str]:
    """Return the kube-apiserver flags for a loopback-only, controller-less test cluster."""
    return [
        f"--etcd-servers={etcd_url}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'certs'}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--token-auth-file={pki.token_file}",
        "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--endpoint-reconciler-type=none",
        # No controller creates the default ServiceAccount, and no node lifecycle controller
        # removes the not-ready taint that TaintNodesByCondition puts on every new Node.
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight=0",
        "--profiling=false",
        "--v=1",
    ]


def start_apiserver(
    pm: ProcessManager,
    binary: Path,
    workdir: Path,
    etcd_url: str,
    extra_args: Sequence[str] = (),
    timeout_s: float = 180,
) -> ApiServer:
    """Generate PKI + tokens, start kube-apiserver and wait for an authenticated ``/readyz``."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")

    def attempt(port: int) -> ApiServer:
        args = apiserver_args(pki, etcd_url, port, workdir)
        proc = pm.start("kube-apiserver", [binary, *args, *extra_args], workdir)
        url = f"https://{LOOPBACK}:{port}"
        check = http_ok(f"{url}/readyz", token=pki.tokens["admin"], ca_file=pki.ca_cert)
        wait_until(check, "kube-apiserver /readyz", timeout_s, proc)
        kubeconfig = write_kubeconfig(
            workdir / "kubeconfig.yaml", url, pki.ca_cert, pki.tokens["admin"]
        )
        return ApiServer(process=proc, port=port, pki=pki, kubeconfig=kubeconfig, workdir=workdir)

    return on_free_port(attempt)


# --------------------------------------------------------------------------------------------
# kube-scheduler


@dataclass(frozen=True)
class Scheduler:
    """A running kube-scheduler and the configuration file it was started from."""

    process: ManagedProcess
    port: int
    config_path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """HTTPS base URL of its health/metrics endpoints (self-signed certificate)."""
        return f"https://{LOOPBACK}:{self.port}"

    def metrics(self) -> str:
        """Return the scheduler's Prometheus text metrics."""
        return http_get(f"{self.url}/metrics")[1]


def start_scheduler(
    pm: ProcessManager,
    binary: Path,
    workdir: Path,
    apiserver: ApiServer,
    source_config: Mapping[str, Any] | Path | None = None,
    extenders: Sequence[Mapping[str, Any]] = (),
    name: str = "kube-scheduler",
    timeout_s: float = 120,
) -> Scheduler:
    """Start kube-scheduler from ``source_config`` (default: two profiles) and wait for /readyz.

    ``source_config`` is any ``kubescheduler.config.k8s.io/v1`` configuration (a dict, or a YAML
    file path), e.g. the one in the chart's ConfigMap; its kubeconfig and leader election are
    replaced. ``extenders`` are
    appended. The scheduler authenticates as ``system:kube-scheduler``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = apiserver.kubeconfig_for("system:kube-scheduler")
    if source_config is None:
        base: Mapping[str, Any] = default_scheduler_config()
    elif isinstance(source_config, Path):
        base = load_scheduler_config(source_config)
    else:
        base = source_config
    config = adapt_scheduler_config(base, kubeconfig, extenders)
    # Lift client-side rate limits the configuration leaves at their defaults (50 QPS), as
    # kwokctl's disableQPSLimits does: time-scaled arrivals would otherwise be throttled at
    # bind time, a delay no real cluster at scale 1 sees.
    connection = config.setdefault("clientConnection", {})
    connection.setdefault("qps", UNLIMITED_QPS)
    connection.setdefault("burst", UNLIMITED_BURST)
    config_path = write_scheduler_config(workdir / f"{name}-config.yaml", config)

    def attempt(port: int) -> Scheduler:
        argv: list[str | Path] = [
            binary,
            f"--config={config_path}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={port}",
            f"--cert-dir={workdir / (name + '-certs')}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            "--v=2",
        ]
        proc = pm.start(name, argv, workdir)
        ready = http_ok(f"https://{LOOPBACK}:{port}/readyz")
        wait_until(ready, f"{name} /readyz", timeout_s, proc)
        return Scheduler(process=proc, port=port, config_path=config_path, config=config)

    return on_free_port(attempt)


# --------------------------------------------------------------------------------------------
# kwok


@dataclass(frozen=True)
class Kwok:
    """A running out-of-cluster kwok controller."""

    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        """HTTP base URL of its server (healthz, metrics)."""
        return f"http://{LOOPBACK}:{self.port}"


def start_kwok(
    pm: ProcessManager,
    binary: Path,
    stages: Path,
    workdir: Path,
    kubeconfig: Path,
    timeout_s: float = 60,
) -> Kwok:
    """Start kwok managing Nodes annotated ``kwok.x-k8s.io/node=fake``; wait for /healthz.

    ``stages`` is the stage file written by build.sh (kwok's "fast" node and pod stages).
    ``HOME`` points at ``workdir`` so a user's ``~/.kwok/kwok.yaml`` is never read.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(workdir)}
    selector = f"{KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}"

    def attempt(port: int) -> Kwok:
        argv: list[str | Path] = [
            binary,
            f"--kubeconfig={kubeconfig}",
            f"--config={stages}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={selector}",
            f"--server-address={LOOPBACK}:{port}",
            "--node-ip=10.0.1.1",
        ]
        proc = pm.start("kwok", argv, workdir, env=env)
        ready = http_ok(f"http://{LOOPBACK}:{port}/healthz")
        wait_until(ready, "kwok /healthz", timeout_s, proc)
        return Kwok(process=proc, port=port)

    return on_free_port(attempt)


# --------------------------------------------------------------------------------------------
# Prometheus


def prometheus_config(
    targets: Mapping[str, Sequence[str]], self_port: int, scrape_interval: str = "1s"
) -> dict[str, Any]:
    """Return a Prometheus config: a self-scrape job plus one static job per ``targets`` key."""
    jobs: dict[str, Sequence[str]] = {"prometheus": [f"{LOOPBACK}:{self_port}"], **targets}
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
            for job, addrs in jobs.items()
        ],
    }


def scaled_scrape_interval(
    cluster_interval_s: float, time_scale: float, floor_ms: int = 100
) -> str:
    """Wall scrape interval that samples every ``cluster_interval_s`` of cluster time.

    Modelled GPU work runs ``time_scale`` times faster than wall time, so a scrape every 15 s
    of a real cluster (dcgm-exporter's ServiceMonitor default) is every ``15 / time_scale`` wall
    seconds here; never below ``floor_ms``.
    """
    if cluster_interval_s <= 0 or time_scale <= 0:
        raise ValueError("interval and time scale must be > 0")
    return f"{max(floor_ms, round(1000.0 * cluster_interval_s / time_scale))}ms"


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus (Debian binary) with a fixture-owned configuration file."""

    process: ManagedProcess
    port: int
    config_path: Path
    scrape_interval: str = "1s"

    @property
    def url(self) -> str:
        """HTTP base URL, e.g. for the operator's Prometheus metrics source."""
        return f"http://{LOOPBACK}:{self.port}"

    def query_response(self, promql: str) -> dict[str, Any]:
        """Run an instant query and return the whole JSON response (raises on an API error)."""
        qs = urllib.parse.urlencode({"query": promql})
        status, body = http_get(f"{self.url}/api/v1/query?{qs}")
        payload: dict[str, Any] = json.loads(body) if body else {}
        if status != 200 or payload.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: HTTP {status} {body[:500]}")
        return payload

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query and return ``data.result`` (raises on an API error)."""
        return list(self.query_response(promql)["data"]["result"])

    def set_targets(self, targets: Mapping[str, Sequence[str]], timeout_s: float = 30) -> None:
        """Replace the scrape jobs (job name -> ``host:port`` list) and reload Prometheus."""
        config = prometheus_config(targets, self.port, self.scrape_interval)
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as resp:
            if resp.status != 200:
                raise RuntimeError(f"Prometheus reload failed: HTTP {resp.status}")
        wanted = set(targets) | {"prometheus"}

        def jobs_active() -> bool:
            status, body = http_get(f"{self.url}/api/v1/targets")
            if status != 200:
                return False
            active = json.loads(body)["data"]["activeTargets"]
            return {t["labels"]["job"] for t in active} == wanted

        wait_until(jobs_active, "Prometheus to load the new targets", timeout_s, self.process)


def start_prometheus(
    pm: ProcessManager,
    binary: Path,
    workdir: Path,
    targets: Mapping[str, Sequence[str]] | None = None,
    timeout_s: float = 60,
    scrape_interval: str = "1s",
) -> Prometheus:
    """Start Prometheus on loopback with tmp storage and the given scrape targets; wait /-/ready.

    ``scrape_interval`` is a Prometheus duration; see :func:`scaled_scrape_interval` for runs
    at a time scale other than 1.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"

    def attempt(port: int) -> Prometheus:
        config = prometheus_config(targets or {}, port, scrape_interval)
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        argv: list[str | Path] = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1h",
        ]
        proc = pm.start("prometheus", argv, workdir)
        ready = http_ok(f"http://{LOOPBACK}:{port}/-/ready")
        wait_until(ready, "Prometheus /-/ready", timeout_s, proc)
        return Prometheus(proc, port, config_path, scrape_interval)

    return on_free_port(attempt)
