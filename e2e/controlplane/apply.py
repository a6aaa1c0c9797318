"""Server-side apply of rendered objects and clients acting as a ServiceAccount (e2e)."""

from __future__ import annotations

from typing import Any

from kubernetes import client, dynamic

from e2e.controlplane.components import ApiServer

FIELD_MANAGER = "ladts-e2e"


def server_side_apply(
    dyn: dynamic.DynamicClient, obj: dict[str, Any], dry_run: bool = False
) -> dict[str, Any]:
    """Apply one object with server-side apply (strict field validation); return the result."""
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    result = dyn.server_side_apply(  # type: ignore[no-untyped-call]
        resource, body=obj, field_manager=FIELD_MANAGER, force_conflicts=True,
        dry_run="All" if dry_run else None, query_params=[("fieldValidation", "Strict")],
    )  # fmt: skip
    return dict(result.to_dict())


def apply_all(dyn: dynamic.DynamicClient, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply objects in order (the rendered order is helm's install order)."""
    return [server_side_apply(dyn, obj) for obj in objects]


def token_for(core_v1: client.CoreV1Api, account: str, namespace: str) -> str:
    """A short-lived token for a ServiceAccount, from the TokenRequest API."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    response = core_v1.create_namespaced_service_account_token(account, namespace, request)
    assert response.status is not None, f"no token in the TokenRequest for {account}"
    return str(response.status.token)


def client_for(apiserver: ApiServer, token: str) -> client.ApiClient:
    """An ApiClient that authenticates with ``token``."""
    configuration = client.Configuration()
    configuration.host = apiserver.url
    configuration.ssl_ca_cert = str(apiserver.pki.ca_cert)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)
