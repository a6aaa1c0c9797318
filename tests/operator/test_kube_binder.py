"""``KubeBinder``: the bind answers after the Binding alone; the record follows, counted.

A stand-in for the generated ``CoreV1Api`` (the three calls the binder makes) lets the
decision-annotation patch block, fail or pile up; the real apiserver case (annotation and
Event appear after a real bind) is ``e2e/serve/test_placement.py``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from ladts_operator.extender import BindArgs
from ladts_operator.kube_io import KubeBinder
from ladts_operator.telemetry import Telemetry


class FakeCore:
    def __init__(self, *, fail_patch: bool = False) -> None:
        self.release = threading.Event()
        self.fail_patch = fail_patch
        self.calls: list[tuple[str, str]] = []

    def create_namespaced_binding(self, ns: str, body: Any, **_: Any) -> None:
        self.calls.append(("binding", body.metadata.name))

    def patch_namespaced_pod(self, name: str, ns: str, body: Any, **_: Any) -> None:
        self.release.wait(10)
        if self.fail_patch:
            raise RuntimeError("apiserver said no")
        self.calls.append(("patch", name))

    def create_namespaced_event(self, ns: str, event: Any, **_: Any) -> None:
        self.calls.append(("event", event.involved_object.name))


def binder(core: FakeCore, **kwargs: Any) -> tuple[KubeBinder, Telemetry]:
    telemetry = Telemetry()
    b = KubeBinder(None, telemetry=telemetry, **kwargs)
    b.core = core
    return b, telemetry


def records(t: Telemetry, result: str) -> float:
    value = t.registry.get_sample_value("ladts_decision_records_total", {"result": result})
    return value or 0.0


def args(name: str) -> BindArgs:
    return BindArgs(name, "aigc", f"uid-{name}", "n1")


@pytest.mark.asyncio
async def test_bind_returns_before_the_record_is_written() -> None:
    core = FakeCore()
    b, t = binder(core)
    await asyncio.wait_for(b.bind(args("p"), '{"node":"n1"}'), 5)
    assert core.calls == [("binding", "p")]  # answered while the patch still waits
    assert b.pending == 1
    core.release.set()
    await b.drain(5)
    assert core.calls == [("binding", "p"), ("patch", "p"), ("event", "p")]
    assert (records(t, "ok"), records(t, "error"), b.pending) == (1, 0, 0)


@pytest.mark.asyncio
async def test_a_failed_record_is_logged_and_counted_and_the_bind_stands(
        caplog: pytest.LogCaptureFixture) -> None:
    core = FakeCore(fail_patch=True)
    core.release.set()
    b, t = binder(core)
    with caplog.at_level(logging.WARNING, logger="ladts_operator.kube_io"):
        await b.bind(args("p"), "{}")
        await b.drain(5)
    assert core.calls == [("binding", "p")]
    assert (records(t, "ok"), records(t, "error")) == (0, 1)
    assert "apiserver said no" in caplog.text


@pytest.mark.asyncio
async def test_records_beyond_the_bound_are_dropped_and_counted() -> None:
    core = FakeCore()
    b, t = binder(core, max_pending=2)
    for name in ("a", "b", "c"):
        await b.bind(args(name), "{}")
    assert [c for c in core.calls if c[0] == "binding"] == [
        ("binding", "a"), ("binding", "b"), ("binding", "c")]
    assert records(t, "dropped") == 1
    core.release.set()
    await b.drain(5)
    assert records(t, "ok") == 2


@pytest.mark.asyncio
async def test_no_record_without_write_decision() -> None:
    core = FakeCore()
    b, _ = binder(core, write_decision=False)
    await b.bind(args("p"), "{}")
    await b.drain(5)
    assert core.calls == [("binding", "p")]
    assert b.pending == 0


@pytest.mark.asyncio
async def test_drain_that_times_out_drops_the_records_not_started() -> None:
    core = FakeCore()  # every patch blocks until released
    b, t = binder(core)
    for name in ("a", "b", "c"):
        await b.bind(args(name), "{}")
    await b.drain(0.2)  # two records hold the pool's two threads; "c" never started
    for _ in range(100):
        if records(t, "dropped") == 1:
            break
        await asyncio.sleep(0.01)
    assert records(t, "dropped") == 1
    core.release.set()
    for _ in range(500):
        if records(t, "ok") == 2:
            break
        await asyncio.sleep(0.01)
    assert (records(t, "ok"), records(t, "error"), records(t, "dropped")) == (2, 0, 1)
    assert ("patch", "c") not in core.calls
