"""Helpers that run a real, loopback-only Kubernetes control plane for e2e tests.

kine (sqlite) → kube-apiserver → kube-scheduler, kwok for emulated nodes and pods, and a real
Prometheus. Binaries come from ``e2e/controlplane/build.sh`` (a cache outside the repository).
"""
