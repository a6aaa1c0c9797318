"""pytest fixtures for the e2e tier: a real, loopback-only control plane per test session.

Binaries come from ``e2e/controlplane/build.sh``. When they are missing the tests that need
them are skipped, unless ``LADTS_E2E_REQUIRED=1``, in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from e2e.controlplane.binaries import BUILD_SCRIPT, Binaries, find_binaries
from e2e.controlplane.cluster import start_kwok_aigc
from e2e.controlplane.components import (
    ApiServer,
    Kine,
    Kwok,
    Prometheus,
    Scheduler,
    start_apiserver,
    start_kine,
    start_prometheus,
    start_scheduler,
)
from e2e.controlplane.objects import fake_gpu_node
from e2e.controlplane.pki import openssl_available
from e2e.controlplane.processes import ProcessManager

E2E_DIR = Path(__file__).parent
#: Minimum per-test timeout (seconds) when pytest-timeout is installed and a test sets none;
#: it also covers the session fixtures' start-up, which happens inside the first test.
DEFAULT_TIMEOUT_S = int(os.environ.get("LADTS_E2E_TIMEOUT", "300"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the e2e marker."""
    config.addinivalue_line(
        "markers", "e2e: runs against the local control plane (binaries from build.sh)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under e2e/ with ``e2e``; raise a too-short global timeout for them."""
    raise_timeout = config.pluginmanager.hasplugin("timeout") and _ini_timeout(config) < float(
        DEFAULT_TIMEOUT_S
    )
    for item in items:
        if E2E_DIR not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if raise_timeout and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S))


def _ini_timeout(config: pytest.Config) -> float:
    """Return pytest-timeout's configured timeout (0 = none = infinite)."""
    try:
        value = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    except (ValueError, TypeError):
        return 0.0
    return value if value > 0 else float("inf")


def e2e_required() -> bool:
    """True when missing binaries must fail the e2e tests instead of skipping them."""
    return os.environ.get("LADTS_E2E_REQUIRED", "") == "1"


def require_binaries(binaries: Binaries, *names: str) -> None:
    """Skip (or fail, with LADTS_E2E_REQUIRED=1) unless all named binaries are built."""
    missing = binaries.missing_of(names)
    if not missing and (openssl_available() or "kube-apiserver" not in names):
        return
    details = "; ".join(f"{n}: {binaries.missing.get(n, 'missing')}" for n in missing)
    if "kube-apiserver" in names and not openssl_available():
        details += "; openssl: not on PATH (needed for the test PKI)"
    script = BUILD_SCRIPT.relative_to(E2E_DIR.parent)
    message = f"e2e binaries not available ({details}). Build them with {script}"
    if e2e_required():
        pytest.fail(f"LADTS_E2E_REQUIRED=1 and {message}", pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------------------------
# process bookkeeping


@pytest.fixture(scope="session", autouse=True)
def e2e_processes() -> Iterator[ProcessManager]:
    """Own every process the fixtures start; at session end stop them and prove none is left."""
    manager = ProcessManager()
    yield manager
    manager.stop_all()
    leftovers = manager.leftovers()
    if leftovers:
        pytest.fail("e2e processes left behind: " + ", ".join(leftovers), pytrace=False)


@pytest.fixture(scope="session")
def e2e_binaries() -> Binaries:
    """The binaries found in the build cache (see ``require_binaries`` for skipping)."""
    return find_binaries()


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session folder holding every component's config, data and ``<name>.log``."""
    return tmp_path_factory.mktemp("controlplane")


# --------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="session")
def kine(
    e2e_processes: ProcessManager, e2e_binaries: Binaries, e2e_workdir: Path
) -> Iterator[Kine]:
    """kine over a fresh sqlite database; ``.etcd_url`` feeds the apiserver."""
    require_binaries(e2e_binaries, "kine", "kube-apiserver")
    kine = start_kine(e2e_processes, e2e_binaries.get("kine"), e2e_workdir / "kine")
    yield kine
    e2e_processes.stop(kine.process)


@pytest.fixture(scope="session")
def kube_apiserver(
    e2e_processes: ProcessManager, e2e_binaries: Binaries, e2e_workdir: Path, kine: Kine
) -> Iterator[ApiServer]:
    """A ready kube-apiserver (RBAC, token auth); ``.kubeconfig`` is an admin kubeconfig."""
    require_binaries(e2e_binaries, "kube-apiserver")
    server = start_apiserver(
        e2e_processes, e2e_binaries.get("kube-apiserver"), e2e_workdir / "apiserver", kine.etcd_url
    )
    yield server
    e2e_processes.stop(server.process)


@pytest.fixture(scope="session")
def kubeconfig_path(kube_apiserver: ApiServer) -> Path:
    """Path of the admin kubeconfig (user ``admin``, group ``system:masters``)."""
    return kube_apiserver.kubeconfig


@pytest.fixture(scope="session")
def api_client(kubeconfig_path: Path) -> Iterator[client.ApiClient]:
    """A ``kubernetes.client.ApiClient`` for the admin kubeconfig."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig_path)
    )
    with api:  # closes the connection pool at session end
        yield api


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    """``CoreV1Api`` on the admin client."""
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def kube_scheduler_source_config() -> dict[str, Any] | Path | None:
    """Override to start the scheduler from another configuration (dict or YAML file path).

    None means two profiles, ``default-scheduler`` and ``ladts-scheduler``, and no extender.
    """
    return None


@pytest.fixture(scope="session")
def kube_scheduler_extenders() -> list[dict[str, Any]]:
    """Override to add extender entries (``urlPrefix``, ``filterVerb``, ...) to the config."""
    return []


@pytest.fixture(scope="session")
def kube_scheduler(
    e2e_processes: ProcessManager,
    e2e_binaries: Binaries,
    e2e_workdir: Path,
    kube_apiserver: ApiServer,
    kube_scheduler_source_config: dict[str, Any] | Path | None,
    kube_scheduler_extenders: list[dict[str, Any]],
) -> Iterator[Scheduler]:
    """A ready kube-scheduler (``/readyz``) built from the two fixtures above."""
    require_binaries(e2e_binaries, "kube-scheduler")
    scheduler = start_scheduler(
        e2e_processes,
        e2e_binaries.get("kube-scheduler"),
        e2e_workdir / "scheduler",
        kube_apiserver,
        source_config=kube_scheduler_source_config,
        extenders=kube_scheduler_extenders,
    )
    yield scheduler
    e2e_processes.stop(scheduler.process)


@pytest.fixture(scope="session")
def kwok(
    e2e_processes: ProcessManager,
    e2e_binaries: Binaries,
    e2e_workdir: Path,
    kube_apiserver: ApiServer,
) -> Iterator[Kwok]:
    """kwok (out of cluster) managing Nodes annotated ``kwok.x-k8s.io/node=fake``.

    With the AIGC stages (``e2e/emulation/kwok_stages.py``): AIGC pods turn Running at bind
    and Succeeded at the finish the emulation controller annotates, as in the benchmarks
    (same helper, ``e2e.controlplane.cluster.start_kwok_aigc``).
    """
    require_binaries(e2e_binaries, "kwok", "stages-fast.yaml")
    controller = start_kwok_aigc(
        e2e_processes, e2e_binaries, e2e_workdir / "kwok", kube_apiserver.kubeconfig
    )
    yield controller
    e2e_processes.stop(controller.process)


@pytest.fixture(scope="session")
def control_plane(
    kube_apiserver: ApiServer, kube_scheduler: Scheduler, kwok: Kwok
) -> dict[str, Any]:
    """Everything at once: ``{"apiserver", "scheduler", "kwok"}`` handles."""
    return {"apiserver": kube_apiserver, "scheduler": kube_scheduler, "kwok": kwok}


@pytest.fixture
def fake_node_factory(
    core_v1: client.CoreV1Api, kwok: Kwok
) -> Iterator[Callable[..., client.V1Node]]:
    """Create kwok-managed GPU Nodes (``fake_gpu_node`` kwargs); pods on them and the nodes
    are deleted after the test."""
    created: list[str] = []

    def create(name: str | None = None, **kwargs: Any) -> client.V1Node:
        node_name = name or f"kwok-gpu-{uuid.uuid4().hex[:8]}"
        node = core_v1.create_node(fake_gpu_node(node_name, **kwargs))  # type: ignore[arg-type]
        created.append(node_name)
        return node

    yield create
    for node_name in created:
        pods = core_v1.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node_name}")
        for pod in pods.items:
            meta = pod.to_dict()["metadata"]
            core_v1.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)
        core_v1.delete_node(node_name)


# --------------------------------------------------------------------------------------------
# Prometheus


@pytest.fixture(scope="session")
def prometheus_targets() -> dict[str, list[str]]:
    """Override to give Prometheus scrape jobs at start (job -> ``host:port`` list).

    Targets known only later can be set with ``prometheus.set_targets(...)``.
    """
    return {}


@pytest.fixture(scope="session")
def prometheus(
    e2e_processes: ProcessManager,
    e2e_binaries: Binaries,
    e2e_workdir: Path,
    prometheus_targets: dict[str, list[str]],
) -> Iterator[Prometheus]:
    """A ready Prometheus (``/-/ready``), scrape interval 1s, also scraping itself."""
    require_binaries(e2e_binaries, "prometheus")
    server = start_prometheus(
        e2e_processes,
        e2e_binaries.get("prometheus"),
        e2e_workdir / "prometheus",
        prometheus_targets,
    )
    yield server
    e2e_processes.stop(server.process)
