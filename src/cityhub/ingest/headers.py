"""Request headers the command-line tools send to a hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


def tenant_headers(tenant: str) -> httpx.Headers:
    """Headers carrying NGSILD-Tenant in UTF-8, as the hub reads it (httpx sends str headers
    as ASCII only: a Korean tenant name was a traceback); none for the default tenant."""
    import httpx  # the CLI imports it only when it talks to a hub

    headers = httpx.Headers(encoding="utf-8")
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    return headers
