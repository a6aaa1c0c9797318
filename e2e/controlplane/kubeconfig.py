"""Write kubeconfig files for the test control plane."""

from __future__ import annotations

from pathlib import Path

import yaml


def kubeconfig_dict(
    server: str, ca_file: Path, token: str, user: str = "admin"
) -> dict[str, object]:
    """Return a kubeconfig (as a dict) for ``server`` with a bearer-token user."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "ladts-e2e",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "ladts-e2e", "context": {"cluster": "ladts-e2e", "user": user}}],
        "current-context": "ladts-e2e",
    }


def write_kubeconfig(
    path: Path, server: str, ca_file: Path, token: str, user: str = "admin"
) -> Path:
    """Write a kubeconfig file (mode 0600) and return its path."""
    path.write_text(yaml.safe_dump(kubeconfig_dict(server, ca_file, token, user)), encoding="utf-8")
    path.chmod(0o600)
    return path
