"""Which addresses remote @contexts may be fetched from (decision 030).

Any client may name any URL as its @context, so without a check the hub would reach, on a
client's behalf, what only the hub can reach: its own host's services (loopback), the cloud
metadata service (link-local) and the site's internal network. The check is made on every
address the download connects to (each resolved address of each host, redirects included),
in the network backend itself, so a name that resolves differently on a second lookup (DNS
rebinding) cannot slip past it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The default of CITYHUB_CONTEXT_PRIVATE_NETWORKS: loopback, RFC 1918, shared address space
# (carrier NAT, overlay VPNs) and IPv6 unique-local, where a site's own context server may
# be. Link-local (169.254.0.0/16, fe80::/10: cloud metadata services) and the other special
# ranges serve no context and stay refused.
DEFAULT_PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)
_EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """Networks as written in the setting ("10.1.0.0/16", or one address); ValueError if not."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


class AddressRefused(Exception):
    """A download would connect to an address the hub may not fetch @contexts from."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}")
        self.host = host
        self.address = address


class AddressGuard:
    """Public addresses, and the non-public ones of the allowed networks: nothing else."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self.allowed = list(allowed)

    @property
    def open(self) -> bool:
        """Whether every address is allowed (then there is nothing to check)."""
        return all(any(net == n for n in self.allowed) for net in _EVERYWHERE)

    def allows(self, address: str) -> bool:
        """Whether an address (as getaddrinfo gives it) may be connected to."""
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # no IPv6 scope id
        targets: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
                targets = [ip.ipv4_mapped]
            elif ip.sixtofour is not None:  # 6to4 (2002::/16) leads to the IPv4 within
                targets.append(ip.sixtofour)
            elif ip in _NAT64:  # so does the well-known NAT64 prefix
                targets.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(self._allows(t) for t in targets)

    def _allows(self, ip: IPAddress) -> bool:
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return True
        return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving each host itself and connecting only to
    addresses the guard allows (every one the name resolves to must be allowed)."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve host, refuse it if any of its addresses is refused, else connect to the
        first of them that answers."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:  # no such name: a connection error like any other
            raise httpcore.ConnectError(str(exc)) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            if not self.guard.allows(address):
                raise AddressRefused(host, address)
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never used for @contexts (no URL names a socket file)."""
        raise AddressRefused(path, "a unix socket")

    async def sleep(self, seconds: float) -> None:
        """As the default backend does."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, opening its connections through a GuardedBackend.

    httpx takes no network backend, so the connection pool it made is replaced by one that
    has this backend (httpcore's documented way of choosing how connections are opened). An
    explicit transport also means HTTP(S)_PROXY variables are not used: through a proxy the
    check would see only the proxy's address.
    """

    def __init__(self, guard: AddressGuard, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls, network_backend=GuardedBackend(guard)
        )


__all__ = [
    "DEFAULT_PRIVATE_NETWORKS",
    "AddressGuard",
    "AddressRefused",
    "GuardedTransport",
    "parse_networks",
]
