"""Language tags: what a languageMap may be keyed by, and which of its strings a lang=
request picks (clause 4.15; RFC 4647 lookup, RFC 9110 12.5.4 weights)."""

from __future__ import annotations

import functools
import re
from typing import Any

from cityhub.ngsild.errors import BadRequestData, shown

# a BCP 47 language tag as lang= ranges and merges take it (RFC 4647 2.1): the tag grammar a
# key must follow to be asked for at all
TAG = r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*"
LANGUAGE_TAG = re.compile(TAG)
NONE = "@none"  # the strings of no language (JSON-LD)
# language ranges one lang= may name: an Accept-Language names a handful, and every
# LanguageProperty rendered walks them (3,000 held a 1,000-entity page for 9.4 s of CPU)
MAX_RANGES = 32
# characters one of them may hold: RFC 5646 4.4.1 asks for 35 at least; its lookup drops one
# subtag at a time, and a tag of 10,000 subtags held a 50-entity page for 6 s of CPU
MAX_RANGE_CHARS = 64


def check_language_map(value: Any) -> dict[str, Any]:
    """A languageMap as written: BCP 47 tags (or @none), no two alike but for case (a merge
    of one replaced both, and lang= served either), each to a string or a non-empty array
    of strings; BadRequestData otherwise."""
    if not isinstance(value, dict):
        raise BadRequestData("languageMap must be a JSON object of language tags to strings")
    if not value:
        raise BadRequestData("languageMap must hold at least one string")
    seen: dict[str, str] = {}
    for tag, text in value.items():
        if tag != NONE and not LANGUAGE_TAG.fullmatch(tag):
            raise BadRequestData(
                f"languageMap key {shown(tag)} is not a BCP 47 language tag (en, de-CH, ...) nor {NONE}"
            )
        if tag.lower() in seen:
            raise BadRequestData(
                f"languageMap keys {shown(seen[tag.lower()])} and {shown(tag)} name one language "
                "(language tags ignore case)"
            )
        seen[tag.lower()] = tag
        strings = isinstance(text, list) and text and all(isinstance(s, str) for s in text)
        if not (isinstance(text, str) or strings):
            raise BadRequestData(
                f"languageMap {shown(tag)}: a language's value is a string or a non-empty array "
                f"of strings, not {str(text)[:60]!r}"
            )
    return value


def pick_language(language_map: dict[str, Any], lang: str) -> Any:
    """The best string for a lang= request (see choose_language; None when it refuses
    every language the map has); a deletion's urn:ngsi-ld:null marker, which is no map, as
    it is."""
    if not isinstance(language_map, dict):
        return language_map
    return language_map.get(choose_language(language_map, lang))


def choose_language(language_map: dict[str, Any], lang: str) -> str:
    """The key a lang= request picks, tags compared without case (RFC 5646 2.1.1): by q
    weight (equal weights in the order written), each tag by RFC 4647 3.4 lookup (en-US,
    then en), then any key with its primary subtag (en-GB for en-US); then @none, then any
    key. A key the request weighs q=0 (the most specific range that matches it does, RFC
    9110 12.5.4) is never picked; @none when nothing is left."""
    if lang == "*":
        return next(iter(language_map), NONE)
    weights = _weights(lang)
    refused = [tag for tag, weight in weights if weight == 0]
    ok = {key.lower(): key for key in reversed(language_map)}  # the first spelling wins
    if refused:
        ok = {low: key for low, key in ok.items() if key == NONE or _quality(low, weights)}
    for tag in ranked_languages(lang):
        if tag == "*":
            return next((k for k in language_map if k.lower() in ok), NONE)
        tag = tag.lower()
        wanted = tag
        while wanted:  # the tag, then each shorter prefix (a singleton goes with its subtag)
            if wanted in ok:
                return ok[wanted]
            wanted = wanted.rpartition("-")[0]
            if wanted[-2:-1] == "-":
                wanted = wanted[:-2]
        primary = tag.split("-")[0]
        for key in language_map:
            if key.split("-")[0].lower() == primary and key.lower() in ok:
                return key
    if NONE in language_map:
        return NONE
    return next((k for k in language_map if k.lower() in ok), NONE)


@functools.lru_cache(maxsize=256)
def ranked_languages(lang: str) -> tuple[str, ...]:
    """The tags of a lang= value a client accepts, highest q first (q=0: not wanted); read
    once per value, not once per LanguageProperty rendered."""
    ranked = sorted(
        (-weight, i, tag) for i, (tag, weight) in enumerate(_weights(lang)) if weight > 0
    )
    return tuple(tag for _, _, tag in ranked)


@functools.lru_cache(maxsize=256)
def _weights(lang: str) -> tuple[tuple[str, float], ...]:
    """(tag, q) of each item of a lang= value, in the order written."""
    out: list[tuple[str, float]] = []
    for part in lang.split(","):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag.strip():
            out.append((tag.strip(), weight))
    return tuple(out)


def _quality(key: str, weights: tuple[tuple[str, float], ...]) -> float:
    """The weight of a (lower-case) stored tag: that of the longest range naming it or a
    prefix of it, else that of *, else 1 (a tag the request does not mention)."""
    best, length = None, -1
    for tag, weight in weights:
        low = tag.lower()
        if (key == low or key.startswith(low + "-")) and len(low) > length:
            best, length = weight, len(low)
    if best is None:
        best = next((weight for tag, weight in weights if tag == "*"), 1.0)
    return best
