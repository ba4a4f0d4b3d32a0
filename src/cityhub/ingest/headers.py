"""What the command-line tools send a hub: its URL, checked, and the request headers."""

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


def hub_url(url: str) -> str:
    """url without a trailing '/'; ValueError saying what is wrong when it cannot name a hub.
    httpx refuses such a URL only once a request is sent, with an InvalidURL that is no
    HTTPError: a port of 'abc' was a traceback from deep inside the command."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("it must start with http:// or https://")
    if not parsed.host:
        raise ValueError("it names no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is beyond 65535")
    return url.rstrip("/")
