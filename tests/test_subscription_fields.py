"""/subscriptions and /csourceSubscriptions: a PATCH naming an unreachable jsonldContext, stored
pick/omit read back in the caller's terms, and the endpoint's timeout and cooldown."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import VOCAB, ContextServer, link, problem
from test_subscriptions import CSUBS, SID, SUBS, sub

URI = "http://localhost:1111/notify"  # the endpoint sub() names


async def fetch(
    client: httpx.AsyncClient,
    url: str = SUBS,
    sid: str = SID,
    headers: dict[str, str] | None = None,
    **params: str,
) -> dict[str, Any]:
    resp = await client.get(f"{url}/{sid}", headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def post(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    url: str = SUBS,
    headers: dict[str, str] | None = None,
) -> None:
    resp = await client.post(url, json=body, headers=headers)
    assert resp.status_code == 201, resp.text


# -- an unreachable jsonldContext on PATCH ------------------------------------------------------


@pytest.mark.parametrize("url", [SUBS, CSUBS])
async def test_patch_with_unreachable_jsonld_context_is_503_and_changes_nothing(
    hub: httpx.AsyncClient, closed_url: str, url: str
) -> None:
    await post(hub, sub(), url)
    before = await fetch(hub, url, options="sysAttrs")
    for fragment in (
        {"jsonldContext": closed_url},
        {"jsonldContext": closed_url, "subscriptionName": "renamed", "isActive": False},
    ):
        resp = await hub.patch(f"{url}/{SID}", json=fragment)
        body = problem(resp, 503, "LdContextNotAvailable")
        assert closed_url in body.get("detail", ""), body
        after = await fetch(hub, url, options="sysAttrs")
        assert after == before, "a refused patch changes no member (not even modifiedAt)"
        assert "jsonldContext" not in after and after["status"] == "active"


async def test_patch_of_an_unknown_subscription_is_404_before_any_context_is_fetched(
    hub: httpx.AsyncClient, closed_url: str
) -> None:
    resp = await hub.patch(
        f"{SUBS}/urn:ngsi-ld:Subscription:none", json={"jsonldContext": closed_url}
    )
    problem(resp, 404, "ResourceNotFound")


async def test_patch_with_unroutable_jsonld_context_is_503(hub: httpx.AsyncClient) -> None:
    await post(hub, sub(subscriptionName="kept"))
    resp = await hub.patch(f"{SUBS}/{SID}", json={"jsonldContext": "http://127.0.0.1:9/ctx.jsonld"})
    problem(resp, 503, "LdContextNotAvailable")
    got = await fetch(hub)
    assert got["subscriptionName"] == "kept" and "jsonldContext" not in got, got


async def test_patch_with_reachable_jsonld_context_is_stored(
    hub: httpx.AsyncClient, context_server: ContextServer, closed_url: str
) -> None:
    good = context_server.url("/ctx/patched.jsonld")
    await post(hub, sub())
    resp = await hub.patch(f"{SUBS}/{SID}", json={"jsonldContext": good})
    assert resp.status_code == 204, resp.text
    assert (await fetch(hub))["jsonldContext"] == good
    problem(await hub.patch(f"{SUBS}/{SID}", json={"jsonldContext": closed_url}), 503)
    assert (await fetch(hub))["jsonldContext"] == good, "the reachable one stays"


# -- pick / omit read back ----------------------------------------------------------------------


async def test_pick_is_read_back_as_written(hub: httpx.AsyncClient) -> None:
    pick = ["id", "type", "name", "address{street,city}"]
    await post(hub, sub(notification={"endpoint": {"uri": URI}, "pick": pick}))
    got = await fetch(hub)
    assert got["notification"] == {"endpoint": {"uri": URI}, "pick": pick}, got
    listed = (await hub.get(SUBS)).json()
    assert listed[0]["notification"]["pick"] == pick, listed


async def test_omit_text_is_read_back_as_text(hub: httpx.AsyncClient) -> None:
    await post(hub, sub(notification={"endpoint": {"uri": URI}, "omit": "type,temperature"}))
    got = await fetch(hub)
    assert got["notification"]["omit"] == "type,temperature", got
    assert "pick" not in got["notification"]


async def test_pick_and_omit_expand_with_the_context(
    hub: httpx.AsyncClient, context_server: ContextServer, app: Any
) -> None:
    ctx = {"Link": link(context_server.url("/ctx/pick.jsonld"))}
    body = sub(notification={"endpoint": {"uri": URI}, "pick": ["id", "temperature", "humidity"]})
    await post(hub, body, headers=ctx)
    stored = app.state.store.resource_get("subscription", "", SID)
    assert stored["notification"]["pick"] == ["id", VOCAB + "temperature", VOCAB + "humidity"]
    same = await fetch(hub, headers=ctx)
    assert same["notification"]["pick"] == ["id", "temperature", "humidity"], same
    core = await fetch(hub)
    assert core["notification"]["pick"] == ["id", VOCAB + "temperature", VOCAB + "humidity"]
    # a patch's notification is merged into the stored one: omit beside the stored pick is
    # refused, and replaces it once the patch removes pick
    both = {"endpoint": {"uri": URI}, "omit": "humidity"}
    resp = await hub.patch(f"{SUBS}/{SID}", json={"notification": both}, headers=ctx)
    assert "pick and notification.omit" in problem(resp, 400, "BadRequestData")["detail"]
    resp = await hub.patch(
        f"{SUBS}/{SID}", json={"notification": {**both, "pick": None}}, headers=ctx
    )
    assert resp.status_code == 204, resp.text
    got = (await fetch(hub, headers=ctx))["notification"]
    assert got["omit"] == "humidity" and "pick" not in got, got
    assert (await fetch(hub))["notification"]["omit"] == VOCAB + "humidity"


async def test_bad_pick_is_400_and_nothing_is_stored(hub: httpx.AsyncClient) -> None:
    for bad in ([], [""], "", ["bad name"], 3):
        resp = await hub.post(SUBS, json=sub(notification={"endpoint": {"uri": URI}, "pick": bad}))
        problem(resp, 400, "BadRequestData")
    problem(await hub.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")


# -- endpoint timeout and cooldown --------------------------------------------------------------


@pytest.mark.parametrize("url", [SUBS, CSUBS])
async def test_endpoint_timeout_and_cooldown_round_trip(hub: httpx.AsyncClient, url: str) -> None:
    endpoint = {"uri": URI, "accept": "application/json", "timeout": 1500, "cooldown": 2.5}
    await post(hub, sub(notification={"endpoint": endpoint}), url)
    assert (await fetch(hub, url))["notification"]["endpoint"] == endpoint
    changed = {"uri": URI, "timeout": 0.5, "cooldown": 60}
    resp = await hub.patch(f"{url}/{SID}", json={"notification": {"endpoint": changed}})
    assert resp.status_code == 204, resp.text
    merged = {**endpoint, **changed}  # accept, not named, is kept (decision 047)
    got = await fetch(hub, url)
    assert got["notification"]["endpoint"] == merged, got
    listed = (await hub.get(url)).json()
    assert listed[0]["notification"]["endpoint"] == merged, listed


@pytest.mark.parametrize(
    "extra",
    [
        {"timeout": 0},
        {"timeout": -5},
        {"timeout": "10"},
        {"timeout": True},
        {"cooldown": 0},
        {"cooldown": "PT1S"},
        {"cooldown": None},
    ],
)
async def test_bad_timeout_or_cooldown_is_400(
    hub: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    body = sub(notification={"endpoint": {"uri": URI, **extra}})
    problem(await hub.post(SUBS, json=body), 400, "BadRequestData")
    problem(await hub.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")


async def test_bad_cooldown_in_a_patch_keeps_the_old_endpoint(hub: httpx.AsyncClient) -> None:
    endpoint = {"uri": URI, "timeout": 10, "cooldown": 30}
    await post(hub, sub(notification={"endpoint": endpoint}))
    resp = await hub.patch(
        f"{SUBS}/{SID}", json={"notification": {"endpoint": {"uri": URI, "cooldown": -1}}}
    )
    problem(resp, 400, "BadRequestData")
    assert (await fetch(hub))["notification"]["endpoint"] == endpoint
