"""CITYHUB_CONTEXT_PRIVATE_NETWORKS: which addresses a client's @context URL may make the hub
fetch from (decision 030), checked on every address a download connects to."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from cityhub.api.app import create_app
from cityhub.ngsild.context_guard import DEFAULT_PRIVATE_NETWORKS, AddressGuard, parse_networks
from cityhub.settings import Settings
from conftest import BASE, link, problem

DOC = {"@context": {"Lamp": "https://city.example/Lamp"}}
REFUSED = "CITYHUB_CONTEXT_PRIVATE_NETWORKS does not allow it"


@contextmanager
def site(host: str, redirect_to: str | None = None) -> Iterator[tuple[str, Counter[str]]]:
    """An HTTP server on host serving DOC at /ctx (or redirecting there); its base URL and the
    requests it got, by path."""
    hits: Counter[str] = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] += 1
            if redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(DOC).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer((host, 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


@asynccontextmanager
async def hub(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(db=str(tmp_path / "hub.db"), context_timeout=2.0, **settings))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as client:
        yield client
    app.state.store.close()


async def lamp(client: httpx.AsyncClient, url: str) -> httpx.Response:
    body = {"id": "urn:x:1", "type": "Lamp"}
    return await client.post(f"{BASE}/entities", json=body, headers={"Link": link(url)})


@pytest.mark.parametrize(
    ("address", "by_default", "public_only"),
    [
        ("8.8.8.8", True, True),
        ("2001:4860:4860::8888", True, True),
        ("127.0.0.1", True, False),
        ("::1", True, False),
        ("::ffff:127.0.0.1", True, False),
        ("10.1.2.3", True, False),
        ("192.168.1.20", True, False),
        ("fd12::1", True, False),
        ("169.254.169.254", False, False),  # cloud metadata
        ("::ffff:169.254.169.254", False, False),
        ("2002:a9fe:a9fe::1", False, False),  # 6to4 of 169.254.169.254
        ("64:ff9b::a9fe:a9fe", False, False),  # NAT64 of it
        ("fe80::1%eth0", False, False),
        ("0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("192.0.2.1", False, False),  # documentation range: no site's server
    ],
)
def test_which_addresses_are_allowed(address: str, by_default: bool, public_only: bool) -> None:
    assert AddressGuard(parse_networks(DEFAULT_PRIVATE_NETWORKS)).allows(address) is by_default
    assert AddressGuard([]).allows(address) is public_only


async def test_a_refused_address_is_503_and_never_contacted(tmp_path: Path) -> None:
    with site("127.0.0.1") as (base, hits):
        async with hub(tmp_path, context_private_networks=[]) as c:
            resp = await lamp(c, f"{base}/ctx")
            assert REFUSED in problem(resp, 503, "LdContextNotAvailable")["detail"]
            listed = await c.get(f"{BASE}/jsonldContexts", params={"kind": "Cached"})
            assert f"{base}/ctx" not in listed.json()
        assert hits == Counter(), "the check comes before the connection"
        async with hub(tmp_path) as c:  # the default allows loopback (the ETSI suite's server)
            assert (await lamp(c, f"{base}/ctx")).status_code == 201


async def test_a_host_name_is_checked_on_the_addresses_it_resolves_to(tmp_path: Path) -> None:
    with site("127.0.0.1") as (base, hits):
        by_name = base.replace("127.0.0.1", "localhost")
        async with hub(tmp_path, context_private_networks=[]) as c:
            problem(await lamp(c, f"{by_name}/ctx"), 503, "LdContextNotAvailable")
        assert hits == Counter()


async def test_a_redirect_to_a_refused_address_is_refused(tmp_path: Path) -> None:
    with (
        site("127.0.0.1") as (target, target_hits),
        site("127.0.0.2", redirect_to=f"{target}/ctx") as (base, hits),
    ):
        async with hub(tmp_path, context_private_networks=["127.0.0.2"]) as c:
            resp = await lamp(c, f"{base}/ctx")
            assert REFUSED in problem(resp, 503, "LdContextNotAvailable")["detail"]
        assert hits["/ctx"] == 1 and target_hits == Counter()
        async with hub(tmp_path, context_private_networks=["127.0.0.0/8"]) as c:
            assert (await lamp(c, f"{base}/ctx")).status_code == 201


async def test_a_mirror_is_the_operators_choice_and_not_checked(tmp_path: Path) -> None:
    remote = "https://contexts.invalid/city.jsonld"
    with site("127.0.0.1") as (base, hits):
        mirrors = {remote: f"{base}/ctx"}
        async with hub(tmp_path, context_private_networks=[], context_mirrors=mirrors) as c:
            assert (await lamp(c, remote)).status_code == 201
        assert hits["/ctx"] == 1


def test_the_setting_refuses_what_is_no_network() -> None:
    with pytest.raises(ValidationError, match="context_private_networks"):
        Settings(context_private_networks=["10.0.0.0/33"])


@pytest.mark.parametrize("networks", [list(DEFAULT_PRIVATE_NETWORKS), ["0.0.0.0/0", "::/0"]])
def test_a_proxy_the_check_bypasses_is_named_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, networks: list[str]
) -> None:
    """Contexts were fetched through HTTPS_PROXY before the check; now an operator is told."""
    from cityhub.ngsild.context import ContextCache

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.city.example:3128")
    with caplog.at_level("WARNING", logger="cityhub.context"):
        ContextCache(private_networks=networks)
    warned = [r.getMessage() for r in caplog.records if "HTTP(S)_PROXY" in r.getMessage()]
    assert len(warned) == (0 if networks[0] == "0.0.0.0/0" else 1), warned
