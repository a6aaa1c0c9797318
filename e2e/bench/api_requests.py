"""What the apiserver did per pod: requests by verb and resource, watch events sent.

Read from kube-apiserver's own ``/metrics`` (``apiserver_request_total`` and
``apiserver_watch_events_total``) before and after a run; the difference divided by the pods
created says where the control plane's CPU goes (every write is stored by kine and fanned
out to every watcher of its kind).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

_SAMPLE = re.compile(r"^(apiserver_request_total|apiserver_watch_events_total)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def request_counts(metrics_text: str) -> dict[str, float]:
    """Counters keyed ``"VERB resource[/subresource]"`` and ``"watch-events Kind"``."""
    out: dict[str, float] = defaultdict(float)
    for line in metrics_text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        if m.group(1) == "apiserver_watch_events_total":
            key = f"watch-events {labels.get('kind') or labels.get('resource', '?')}"
        else:
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = f"{labels.get('verb', '?')} {resource}"
        out[key] += float(m.group(3))
    return dict(out)


def per_pod(before: dict[str, float], after: dict[str, float], pods: int,
            min_per_pod: float = 0.05) -> dict[str, float]:
    """``(after - before) / pods`` per key, largest first; keys below ``min_per_pod`` left out."""
    if pods <= 0:
        return {}
    diff = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / pods for k in after}
    return {k: round(v, 2) for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
            if v >= min_per_pod}


def apiserver_metrics(api_client: Any) -> str:
    """The apiserver's ``/metrics`` text through an admin ``kubernetes`` ApiClient."""
    cfg = api_client.configuration
    headers = {auth["key"]: auth["value"] for auth in cfg.auth_settings().values()
               if auth.get("in") == "header" and auth.get("value")}
    resp = api_client.call_api("GET", f"{cfg.host}/metrics", header_params=headers)
    data = resp.read() if hasattr(resp, "read") else resp.data
    return data.decode() if isinstance(data, bytes) else str(data)
