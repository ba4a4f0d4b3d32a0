"""Which addresses notifications may be sent to (decision 033).

Any client may name any URL as a subscription's endpoint, and its delivery status tells
whether something answered there: without a check the hub POSTs, on a client's behalf, to
what only it can reach (its host's services, the cloud metadata service, the site's network).
The check reuses the @context downloads' AddressGuard (decision 030) with its own setting,
CITYHUB_NOTIFY_PRIVATE_NETWORKS: names are checked as aiohttp resolves them (the addresses
it connects to, so a name that resolves differently a second time cannot slip past), and
addresses written in the URL before each request, every redirect hop included.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from cityhub.ngsild.context_guard import (
    DEFAULT_PRIVATE_NETWORKS,
    AddressGuard,
    AddressRefused,
    parse_networks,
)

SETTING = "CITYHUB_NOTIFY_PRIVATE_NETWORKS"


def default_guard() -> AddressGuard:
    """The guard of the setting's default: public, loopback and LAN addresses."""
    return AddressGuard(parse_networks(DEFAULT_PRIVATE_NETWORKS))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name when any address it resolves to is refused."""

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self.guard = guard
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The name's addresses, all of them allowed, or AddressRefused."""
        found = await self._inner.resolve(host, port, family)
        for result in found:
            if not self.guard.allows(result["host"]):
                raise AddressRefused(host, result["host"])
        return found

    async def close(self) -> None:
        """Close the resolver it wraps."""
        await self._inner.close()


def check_literal(guard: AddressGuard, url: URL) -> None:
    """Refuse a URL whose host is an address the guard refuses (names are the resolver's)."""
    host = url.raw_host or ""
    if _is_address(host) and not guard.allows(host):
        raise AddressRefused(host, host)


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host.split("%")[0])
    except OSError:
        return False
    return True


def connector_options(guard: AddressGuard) -> dict[str, Any]:
    """The connector's resolver for this guard (none needed when everything is allowed)."""
    return {} if guard.open else {"resolver": GuardedResolver(guard)}


__all__ = ["SETTING", "GuardedResolver", "check_literal", "connector_options", "default_guard"]
