"""Language tags of LanguageProperties (a probe's findings 2.3-2.5, 2026-12-07): lang=en-US
served en-GB before en and served a language the client weighted q=0; `q` on `name[en-gb]`
missed en-GB while lang=, merges and DELETE ?lang= ignore case; and languageMap keys were
not checked, so "", "not a tag!" and "@language" were stored and served as `lang`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityhub.ngsild.languages import choose_language
from cityhub.ngsild.query import evaluate
from cityhub.ngsild.query.qlang import parse_q
from conftest import BASE, bad_request, create, get_entity

EID = "urn:ngsi-ld:Sign:s1"
COLOURS = {"en-GB": "colour", "en": "color", "fr": "couleur"}


def lp(languages: dict[str, Any]) -> dict[str, Any]:
    return {"type": "LanguageProperty", "languageMap": languages}


async def named(client: httpx.AsyncClient, lang: str, fmt: str = "keyValues") -> Any:
    got = await get_entity(client, EID, {"lang": lang, "format": fmt})
    return got["name"]


@pytest.mark.parametrize(
    ("lang", "chosen"),
    [
        ("en-US", "color"),  # RFC 4647 lookup: en-US, then en (map order gave en-GB)
        ("EN-us", "color"),
        ("en-GB", "colour"),
        ("en-GB;q=0", "color"),  # refused: the fallback skips it (it took the first key)
        ("en-GB;q=0,fr;q=0", "color"),
        ("de,en-GB;q=0", "color"),
        ("fr;q=0.5,en-US", "color"),
        ("en;q=0,fr;q=0.1", "couleur"),  # en refuses en-GB too: its most specific range
        ("en;q=0,en-GB", "colour"),
        ("*", "colour"),
        ("en;q=0,*", "couleur"),
    ],
)
async def test_lang_looks_up_by_rfc_4647_and_never_serves_a_refused_language(
    client: httpx.AsyncClient, lang: str, chosen: str
) -> None:
    await create(client, {"id": EID, "type": "Sign", "name": lp(COLOURS)})
    assert await named(client, lang) == chosen


async def test_lang_names_the_chosen_tag_and_nothing_when_every_one_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await create(client, {"id": EID, "type": "Sign", "name": lp(COLOURS)})
    shown = await named(client, "en-US", "normalized")
    assert shown == {"type": "Property", "value": "color", "lang": "en"}
    # every language refused and no @none: no string is served rather than a refused one
    assert await named(client, "en;q=0,fr;q=0") is None


async def test_lang_falls_back_to_none_before_other_languages(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Sign", "name": lp({"fr": "Pont", "@none": "Brug"})})
    assert await named(client, "de") == "Brug"
    assert await named(client, "fr;q=0") == "Brug"


def test_lookup_drops_a_singleton_with_its_subtag() -> None:
    """RFC 4647 3.4: zh-Hant-CN-x-private1 is tried as zh-Hant-CN-x-private1, zh-Hant-CN
    (the singleton x goes with private1), zh-Hant, zh."""
    found = {"zh": "a", "zh-Hant-CN": "b"}
    assert choose_language(found, "zh-Hant-CN-x-private1") == "zh-Hant-CN"
    assert choose_language({"zh": "a", "zh-Hant": "b"}, "zh-Hant-CN-x-private1") == "zh-Hant"


@pytest.mark.parametrize("tag", ["en-gb", "EN-GB", "en-GB"])
async def test_q_on_a_language_ignores_the_tag_s_case(client: httpx.AsyncClient, tag: str) -> None:
    await create(client, {"id": EID, "type": "Sign", "name": lp({"en-GB": "Colour", "FR": "C"})})
    for q in (f'name[{tag}]=="Colour"', 'name[fr]=="C"'):
        r = await client.get(f"{BASE}/entities", params={"type": "Sign", "q": q})
        assert [e["id"] for e in r.json()] == [EID], q
        stored = {"attrs": {"name": [lp({"en-GB": "Colour", "FR": "C"})]}}
        assert evaluate.matches_q(parse_q(q), stored), q  # subscriptions, temporal q
    r = await client.get(f"{BASE}/entities", params={"type": "Sign", "q": 'name[en]=="Colour"'})
    assert r.json() == []  # a language is not its region's


@pytest.mark.parametrize(
    ("languages", "words"),
    [
        ({"": "x"}, "key '' is not a BCP 47 language tag"),
        ({"not a tag!": "x"}, "key 'not a tag!' is not a BCP 47"),
        ({"@value": "x"}, "key '@value' is not a BCP 47"),
        ({"@language": "en"}, "key '@language'"),
        ({"en_GB": "x"}, "key 'en_GB'"),
        ({"EN": "a", "en": "b"}, "keys 'EN' and 'en' name one language"),
        ({"en": []}, "'en': a language's value is a string or a non-empty array of strings"),
        ({"en": ["a", 1]}, "'en': a language's value"),
        ({"en": None}, "'en': a language's value"),
        ({}, "at least one string"),
    ],
)
async def test_a_language_map_is_checked(
    client: httpx.AsyncClient, languages: dict[str, Any], words: str
) -> None:
    body = {"id": EID, "type": "Sign", "name": lp(languages)}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert detail.startswith("attribute 'name': ") and words in detail, detail
    await create(client, {"id": EID, "type": "Sign", "name": lp({"en": "a"})})
    merge = await client.patch(f"{BASE}/entities/{EID}", json={"name": lp(languages)})
    assert words in bad_request(merge)["detail"]


async def test_tags_bcp_47_allows_are_kept(client: httpx.AsyncClient) -> None:
    languages = {"en": "a", "de-CH-1996": ["b", "c"], "x-klingon": "d", "@none": "e", "sr-Latn": ""}
    await create(client, {"id": EID, "type": "Sign", "name": lp(languages)})
    assert (await get_entity(client, EID))["name"] == lp(languages)
