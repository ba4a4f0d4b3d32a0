"""Tenant names a prober found read three ways (2026-12-07): the header is UTF-8 everywhere
(API, notifications, the command line); a name is bounded and holds no comma; a subscription
cannot relabel its notifications with another tenant."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cityhub.cli import main
from conftest import BASE, bad_request, create, free_port, get_entity
from receivers import Receiver, wait_for
from test_serve import serving

SEOUL = "서울"
RAW = {"NGSILD-Tenant": SEOUL.encode()}  # as curl sends it: the UTF-8 bytes
EID = "urn:ngsi-ld:Station:s1"


def _subscription(uri: str, **endpoint: object) -> dict[str, object]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Station"}],
        "notification": {"endpoint": {"uri": uri, **endpoint}},
    }


async def test_a_utf8_tenant_reaches_its_notifications_unchanged(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create(hub, {"id": EID, "type": "Station"}, headers=RAW)  # type: ignore[arg-type]
    resp = await hub.post(f"{BASE}/subscriptions", json=_subscription(receiver.url()), headers=RAW)  # type: ignore[arg-type]
    assert resp.status_code == 201, resp.text
    resp = await hub.patch(f"{BASE}/entities/{EID}/attrs", json={"n": 1}, headers=RAW)  # type: ignore[arg-type]
    assert resp.status_code == 204, resp.text
    got = await wait_for(receiver.received, what="a notification")
    assert got[0].headers["NGSILD-Tenant"] == SEOUL


def test_the_importer_and_the_api_name_a_utf8_tenant_alike(tmp_path: Path) -> None:
    csv = tmp_path / "stations.csv"
    csv.write_text("id,name\ns1,Jongno\n")
    argv = ["import", "csv", str(csv), "--type", "Station", "--tenant", SEOUL, "--no-progress"]
    db = tmp_path / "hub.db"
    assert main([*argv, "--db", str(db)]) == 0
    csv.write_text("id,name\ns2,Jung\n")
    with serving(db, free_port()) as url:
        assert main([*argv, "--url", url]) == 0  # was a UnicodeEncodeError traceback
        resp = httpx.get(f"{url}{BASE}/entities", params={"type": "Station"}, headers=RAW)  # type: ignore[arg-type]
    assert resp.status_code == 200, resp.text
    assert sorted(e["name"]["value"] for e in resp.json()) == ["Jongno", "Jung"]


@pytest.mark.parametrize(
    "raw",
    [b"a" * 101, b"city-a, city-b", b"caf\xe9", b"tab\there"],
    ids=["too-long", "comma", "not-utf8", "control"],
)
async def test_a_bad_tenant_name_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    headers = {"NGSILD-Tenant": raw}
    resp = await client.post(
        f"{BASE}/entities", json={"id": EID, "type": "Station"}, headers=headers
    )  # type: ignore[arg-type]
    bad_request(resp)
    assert len(resp.json()["detail"]) < 300  # the name is not echoed whole
    assert (await client.get(f"{BASE}/entities", params={"type": "Station"})).json() == []


async def test_a_hundred_character_tenant_name_works(client: httpx.AsyncClient) -> None:
    headers = {"NGSILD-Tenant": "t" * 100}
    await create(client, {"id": EID, "type": "Station"}, headers=headers)
    assert (await get_entity(client, EID, headers=headers))["id"] == EID


def test_the_command_line_refuses_a_bad_tenant_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("id\ns1\n")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "import",
                "csv",
                str(csv),
                "--type",
                "S",
                "--tenant",
                "a,b",
                "--db",
                str(tmp_path / "hub.db"),
            ]
        )
    assert exc.value.code == 2
    assert "comma" in capsys.readouterr().err
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize("key", ["NGSILD-Tenant", "ngsild-tenant", "Content-Type", "Link"])
async def test_receiver_info_cannot_set_the_headers_the_hub_sets(
    client: httpx.AsyncClient, key: str
) -> None:
    endpoint = {"receiverInfo": [{"key": key, "value": "city-a"}]}
    resp = await client.post(
        f"{BASE}/subscriptions", json=_subscription("http://127.0.0.1:9/n", **endpoint)
    )
    bad_request(resp)
    assert (await client.get(f"{BASE}/subscriptions")).json() == []


async def test_a_tenant_name_is_one_tenant_in_either_unicode_form(
    client: httpx.AsyncClient,
) -> None:
    import unicodedata

    nfc, nfd = (unicodedata.normalize(f, "서울시") for f in ("NFC", "NFD"))
    assert nfc != nfd
    await create(client, {"id": EID, "type": "Station"}, headers={"NGSILD-Tenant": nfc.encode()})  # type: ignore[dict-item]
    found = await client.get(f"{BASE}/entities/{EID}", headers={"NGSILD-Tenant": nfd.encode()})  # type: ignore[dict-item]
    assert found.status_code == 200, found.text


@pytest.mark.parametrize("char", ["\u0085", "\u2028", "\u202e"], ids=["nel", "line-sep", "bidi"])
async def test_unicode_controls_are_refused_in_a_tenant_name(
    client: httpx.AsyncClient, char: str
) -> None:
    headers = {"NGSILD-Tenant": f"city{char}a".encode()}
    bad_request(await client.get(f"{BASE}/entities", params={"type": "T"}, headers=headers))  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["Transfer-Encoding", "Host", "Connection"])
async def test_receiver_info_cannot_set_http_framing(client: httpx.AsyncClient, key: str) -> None:
    endpoint = {"receiverInfo": [{"key": key, "value": "chunked"}]}
    resp = await client.post(
        f"{BASE}/subscriptions", json=_subscription("http://127.0.0.1:9/n", **endpoint)
    )
    bad_request(resp)


@pytest.mark.parametrize(
    "name",
    ["alpha\u200b", "al\u200dpha", "\ufeffalpha", "al\u00adpha", "alpha\ufe0f", "\u2060alpha"],
    ids=["zero-width-space", "zero-width-joiner", "bom", "soft-hyphen", "variation", "word-joiner"],
)
async def test_an_invisible_character_is_refused_in_a_tenant_name(
    client: httpx.AsyncClient, name: str
) -> None:
    """It would print as `alpha` in logs, notifications and device records (probe 3)."""
    await create(client, {"id": EID, "type": "Station"}, headers={"NGSILD-Tenant": "alpha"})
    headers = {"NGSILD-Tenant": name.encode()}
    resp = await client.get(f"{BASE}/entities/{EID}", headers=headers)  # type: ignore[arg-type]
    assert "invisible character" in bad_request(resp)["detail"]


@pytest.mark.parametrize(
    "name",
    ["\uff41\uff4c\uff50\uff48\uff41", "al\u00a0pha", "\ufb01re"],
    ids=["full-width", "nbsp", "ligature"],
)
async def test_a_compatibility_form_is_refused_with_the_plain_spelling(
    client: httpx.AsyncClient, name: str
) -> None:
    """Refused, not folded: folding would give a tenant created under that spelling
    another tenant's data (decision 042)."""
    import unicodedata

    resp = await client.get(
        f"{BASE}/entities", params={"type": "T"}, headers={"NGSILD-Tenant": name.encode()}
    )  # type: ignore[dict-item]
    assert repr(unicodedata.normalize("NFKC", name)) in bad_request(resp)["detail"]


async def test_a_look_alike_from_another_script_is_another_tenant(
    client: httpx.AsyncClient,
) -> None:
    """Out of scope (decision 042): Cyrillic U+0430 is a letter, and many cities' names need it."""
    await create(client, {"id": EID, "type": "Station"}, headers={"NGSILD-Tenant": "alpha"})
    cyrillic = {"NGSILD-Tenant": "alph\u0430".encode()}
    resp = await client.get(f"{BASE}/entities/{EID}", headers=cyrillic)  # type: ignore[arg-type]
    assert resp.status_code == 404


def test_the_command_line_refuses_an_invisible_tenant_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("id\ns1\n")
    argv = ["import", "csv", str(csv), "--type", "S", "--tenant", "alpha\u200b"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--db", str(tmp_path / "hub.db")])
    assert exc.value.code == 2
    assert "U+200B" in capsys.readouterr().err
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize("name", [" alpha", "alpha ", " "])
def test_the_command_line_refuses_a_name_http_would_trim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """HTTP drops the blanks around a header value, so `--tenant ' alpha' --db` stored rows
    no request could name (NGSILD-Tenant: ' alpha' reads 'alpha'), and with `--url` the
    command stopped with "cannot reach the hub ... Illegal header value"."""
    csv = tmp_path / "s.csv"
    csv.write_text("id\ns1\n")
    argv = ["import", "csv", str(csv), "--type", "S", "--tenant", name]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--db", str(tmp_path / "hub.db")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "space" in err and "start or end" in err, err
    assert not (tmp_path / "hub.db").exists()
    with pytest.raises(SystemExit) as exc:
        main(["iot", "devices", "list", "--tenant", name, "--url", "http://127.0.0.1:9"])
    assert exc.value.code == 2
    assert "start or end" in capsys.readouterr().err


async def test_a_header_with_blanks_around_the_name_names_the_trimmed_tenant(
    client: httpx.AsyncClient,
) -> None:
    """What the refusal above keeps consistent: the API reads ' alpha ' as 'alpha'."""
    await create(client, {"id": EID, "type": "Station"}, headers={"NGSILD-Tenant": "alpha"})
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"NGSILD-Tenant": "  alpha  "})
    assert resp.status_code == 200, resp.text
