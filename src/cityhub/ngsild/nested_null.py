"""Where the NGSI-LD Null may sit inside an attribute's content (5.2.1, 5.5.4, 5.5.12).

As a whole attribute, instance, member or language it deletes in a merge or an update; inside
a content member only a merge takes it, as a key of a Property's JSON object value that the
merge removes (RFC 7396). Anywhere else it would be stored and served as data.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cityhub.ngsild.errors import BadRequestData

NULL_URI = "urn:ngsi-ld:null"

# content the marker may sit in without being read as data: a languageMap's entries are merged
# or left out by language (merge.merge_languages), a JsonProperty's JSON is opaque, and a
# geometry holds no text (check_geometry refuses one)
_OWN_RULES = frozenset({"LanguageProperty", "JsonProperty", "GeoProperty"})


def holds_null(value: Any) -> bool:
    """Whether a value is the null marker or holds it at any depth of its objects and arrays."""
    if isinstance(value, str):
        return value == NULL_URI
    if isinstance(value, dict):
        return any(holds_null(v) for v in value.values())
    return isinstance(value, list) and any(holds_null(v) for v in value)


def _in_array(value: Any, listed: bool = False) -> bool:
    """Whether the marker sits in an array at any depth: RFC 7396 replaces arrays whole."""
    if isinstance(value, str):
        return listed and value == NULL_URI
    if isinstance(value, dict):
        return any(_in_array(v, listed) for v in value.values())
    return isinstance(value, list) and any(_in_array(v, True) for v in value)


def check_nested(typ: str, content: Any, what: str, *, merge: bool) -> None:
    """The marker inside the content of an instance a merge or an update writes: a merge
    removes with it a key of a Property's JSON object value; anywhere else it is a 400
    (stored, every reader was served the Null as if it were a value)."""
    if typ in _OWN_RULES:
        return
    if merge and typ == "Property":
        if _in_array(content):
            _refuse(
                f"{what} holds {NULL_URI} inside an array: a merge removes the keys of a JSON "
                "object value given it, and replaces an array whole"
            )
        return
    if not holds_null(content):
        return
    if merge:
        _refuse(
            f"{what} holds {NULL_URI}: a merge removes with it an attribute, an instance, a "
            "member, a language or a key of a Property's JSON object value, nothing inside "
            "other content"
        )
    _refuse(
        f"{what} holds {NULL_URI} inside it: a partial update or an update deletes with the "
        "NGSI-LD Null only a whole attribute, instance, sub-attribute or member (observedAt, "
        "unitCode, ...); to remove a key of a JSON object value, merge (PATCH /entities/{id})"
    )


def refuse_first_level(what: str) -> NoReturn:
    """Temporal input keeps the marker only as an instance's content, a deletion's record
    (4.5.7); as a first-level member's value it is a 400 (5.5.4), where it was stored as a
    deletion of an attribute of that name."""
    _refuse(
        f"{what} cannot be {NULL_URI} in temporal input: there the NGSI-LD Null records a "
        f'deletion only as an instance\'s content ({{"type": "Property", "value": "{NULL_URI}"'
        ', "observedAt": ...}); it removes a member only in a merge or an update'
    )


def _refuse(detail: str) -> NoReturn:
    raise BadRequestData(detail)
