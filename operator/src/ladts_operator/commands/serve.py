"""``ladts serve``: the scheduler extender with its kopf state keeper and Prometheus poller.

One asyncio loop runs the aiohttp extender, kopf (node and AIGC-pod watches), the Prometheus
poller and the policy-file watcher. ``--offline SCENARIO`` serves the same extender over a
simulated cluster of that scenario instead (no kubeconfig, no Prometheus).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from ladts_operator.settings import ServeSettings, load_settings
from ladts_operator.settings import add_arguments as add_settings

log = logging.getLogger("ladts.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every setting of :class:`~ladts_operator.settings.ServeSettings` as a flag."""
    parser.epilog = ("Precedence: flag > LADTS_* environment > --config file > default. "
                     "Endpoints: POST /filter /prioritize /bind; GET /healthz /readyz "
                     "/metrics /debug/state (docs/serving.md).")
    add_settings(parser)


def run(args: argparse.Namespace) -> int:
    """Load the settings and serve until interrupted."""
    settings = load_settings(args)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handled event at INFO; keep its warnings and errors only.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        asyncio.run(serve_offline(settings) if settings.offline else serve_cluster(settings))
    except KeyboardInterrupt:
        pass
    return 0


async def _start_http(app: Any, host: str, port: int) -> Any:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("extender listening on http://%s:%d", host, port)
    return runner


async def serve_offline(settings: ServeSettings) -> None:
    """Serve over a simulated cluster of ``settings.offline``."""
    from ladts_operator.offline import OfflineCluster, populate
    from ladts_operator.runtime import OfflineBinder, build_runtime
    from ladts_operator.server import build_app
    from ladts_policy.sim.config.scenario import load_scenario

    config = load_scenario(settings.offline or "").cluster
    rt = build_runtime(settings, profiles=config.gpu_profiles)
    nodes = populate(rt.state, config, seed=settings.offline_seed)
    log.info("offline cluster %s: %d nodes", settings.offline, len(nodes))
    cluster = OfflineCluster(rt.state, config, seed=settings.offline_seed)
    rt.synced()
    runner = await _start_http(build_app(rt.extender, OfflineBinder(rt.state), rt.ready),
                               settings.host, settings.port)
    clock = asyncio.create_task(cluster.run())
    refreeze = asyncio.create_task(rt.gc.run())
    try:
        await rt.policy.run()
    finally:
        clock.cancel()
        refreeze.cancel()
        await runner.cleanup()


def _api_client(settings: ServeSettings) -> Any:
    from kubernetes import client, config

    if settings.kubeconfig:
        return config.new_client_from_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def connection_info(api_client: Any) -> Any:
    """Credentials for kopf from a configured ``kubernetes.client.ApiClient``."""
    import kopf

    cfg = api_client.configuration
    auth = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    scheme = token = None
    if auth:
        parts = str(auth).split(" ", 1)
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (
            cfg.api_key_prefix.get("authorization", "Bearer"), parts[0])
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        username=cfg.username or None, password=cfg.password or None, scheme=scheme,
        token=token, certificate_path=cfg.cert_file, private_key_path=cfg.key_file,
    )


async def serve_cluster(settings: ServeSettings) -> None:
    """Serve a real cluster: initial list, then kopf watches, poller and policy watcher."""
    import kopf

    from ladts_operator.kopf_handlers import build_registry, initial_sync
    from ladts_operator.kube_io import KubeBinder, KubeEvents
    from ladts_operator.prom_poller import PrometheusPoller
    from ladts_operator.runtime import build_runtime
    from ladts_operator.server import build_app
    from ladts_operator.telemetry import Telemetry

    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig  # kopf's login reads it
    api_client = _api_client(settings)
    poller_box: list[PrometheusPoller] = []
    rt = build_runtime(settings, events=KubeEvents(api_client))
    if settings.prometheus_url:
        def nodes() -> tuple[set[str], dict[str, str]]:
            entries = list(rt.state.nodes.values())
            return ({e.obs.name for e in entries},
                    {e.obs.internal_ip: e.obs.name for e in entries if e.obs.internal_ip})

        poller = PrometheusPoller(settings, rt.extender.telemetry, nodes,
                                  residency_sink=rt.state.set_metric_residency)
        rt.extender.metrics = poller
        poller_box.append(poller)
    assert isinstance(rt.extender.telemetry, Telemetry)
    binder = KubeBinder(api_client, write_decision=settings.write_decision,
                        telemetry=rt.extender.telemetry)
    runner = await _start_http(build_app(rt.extender, binder, rt.ready),
                               settings.host, settings.port)
    registry = build_registry(rt.state)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        if settings.kubeconfig:
            # The client library read KUBECONFIG at import; use the client we built.
            return connection_info(api_client)
        return kopf.login_via_client(**kwargs)

    tasks = [asyncio.create_task(rt.policy.run())]
    try:
        while True:
            try:
                await asyncio.to_thread(initial_sync, rt.state, api_client, settings.namespace)
                rt.synced()
                break
            except Exception as exc:  # API not reachable yet: keep serving, retry
                log.warning("initial sync failed, retrying: %s", exc)
                await asyncio.sleep(2.0)
        tasks += [asyncio.create_task(p.run()) for p in poller_box]
        tasks.append(asyncio.create_task(rt.gc.run()))
        namespaces = [settings.namespace] if settings.namespace else []
        await kopf.operator(registry=registry, standalone=True,
                            clusterwide=not namespaces, namespaces=namespaces)
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        await binder.drain()  # decision records of the last binds
        if rt.trace is not None:
            rt.trace.close()
