"""A remote @context that did not answer in time is not waited for again at once
(decision 084): the next requests naming it are a 503 at once, for a short while."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.ngsild import context_timeouts
from conftest import BASE, link, problem
from test_jsonld_contexts import DOC_A, TIMEOUT, Remote, hub, hub_app, lamp, remote, remote_server

__all__ = ["hub", "hub_app", "remote", "remote_server"]  # the fixtures used below


async def test_a_timed_out_context_is_a_503_at_once_for_a_while(
    hub: httpx.AsyncClient, hub_app: Starlette, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_app.state.contexts.timeout = TIMEOUT
    url, name = remote.serve(DOC_A, delay=TIMEOUT * 4)
    first = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    problem(first, 503, "LdContextNotAvailable")
    started = time.monotonic()
    again = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    body = problem(again, 503, "LdContextNotAvailable")
    assert time.monotonic() - started < TIMEOUT, "the second request waited for the site again"
    assert "not tried again before" in body["detail"], body
    assert remote.hits[name] == 1

    # once the while has passed, the site is asked again (and here it answers in time)
    monkeypatch.setattr(context_timeouts, "REMEMBERED", 0.0)
    remote.delays[name] = 0.0
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    assert remote.hits[name] == 2


async def test_a_refused_connection_is_tried_again_at_once(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    # only a timeout is remembered: a fast failure costs the next request nothing to retry
    url, name = remote.serve(DOC_A)
    remote.down = True
    problem(await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)}), 503)
    remote.down = False
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    assert remote.hits[name] == 2


def test_the_memory_is_bounded() -> None:
    memory = context_timeouts.TimedOut()
    for n in range(context_timeouts.MOST + 10):
        memory.note(f"http://ex.org/{n}", "did not answer")
    assert len(memory) == context_timeouts.MOST
    memory.check("http://ex.org/0")  # the oldest went first: no error
    with pytest.raises(Exception, match="not tried again before"):
        memory.check(f"http://ex.org/{context_timeouts.MOST + 9}")
