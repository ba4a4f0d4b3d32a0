"""Mapping transforms and payload decoding, without a hub: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from cityhub.ingest.agent.mapping import check_effective, check_mapping, compile_mapping, merge
from cityhub.ingest.agent.payload import decode
from cityhub.ingest.agent.reasons import Rejected
from cityhub.ngsild.errors import BadRequestData
from iot_support import MAPPING


def mapped(payload: dict[str, Any], mapping: dict[str, Any] = MAPPING, textual: bool = False):
    return compile_mapping(check_mapping(mapping)).apply(payload, textual)


def test_scale_offset_unit_and_observed_at() -> None:
    attrs = mapped({"t": 215, "f": 20, "ts": 1_700_000_000})
    assert attrs["temperature"] == {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": "2023-11-14T22:13:20.000000Z",
    }
    assert attrs["fahrenheit"]["value"] == 68.0  # 20 * 1.8 + 32
    assert "unitCode" not in attrs["fahrenheit"]


def test_observed_at_forms() -> None:
    iso = mapped({"t": 1, "ts": "2024-05-01T12:00:00+02:00"})["temperature"]["observedAt"]
    millis = mapped({"t": 1, "ts": 1_714_557_600_000})["temperature"]["observedAt"]
    assert iso == millis == "2024-05-01T10:00:00.000000Z"
    assert "observedAt" not in mapped({"t": 1})["temperature"]  # no timestamp: none invented


def test_point_relationship_boolean_string() -> None:
    attrs = mapped({"la": "48.1", "lo": 11.5, "room": "B12", "on": "true", "st": 7})
    assert attrs["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [11.5, 48.1]},
    }
    assert attrs["isIn"] == {"type": "Relationship", "object": "urn:ngsi-ld:Room:B12"}
    assert attrs["heating"]["value"] is True
    assert attrs["status"]["value"] == "7"


def test_static_attributes_are_not_written_per_message() -> None:
    assert "name" not in mapped({"t": 1})
    assert compile_mapping(check_mapping(MAPPING)).static == MAPPING["static"]


def test_compact_text_goes_through_the_same_mapping() -> None:
    measures, textual = decode(b"t|215|on|0|st|ok|la|48.1|lo|11.5\n")
    assert textual
    attrs = mapped(measures[0], textual=textual)
    assert attrs["temperature"]["value"] == 21.5
    assert attrs["heating"]["value"] is False
    assert attrs["status"]["value"] == "ok"
    assert attrs["location"]["value"]["coordinates"] == [11.5, 48.1]


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        ({"t": "warm"}, "bad_value", "'t': expected a number"),
        ({"t": float("inf")}, "bad_value", "finite"),
        ({"on": "maybe"}, "bad_value", "'on': expected a boolean"),
        ({"la": 48.1}, "bad_value", "'lo' is missing"),
        ({"la": 95, "lo": 1}, "bad_value", "latitude"),
        ({"room": "has space"}, "bad_value", "absolute URI"),
        ({"t": 1, "ts": "yesterday"}, "bad_value", "ISO 8601"),
        ({"other": 1}, "no_data", "no field"),
        ({"t": "9" * 400}, "bad_value", "-2^63 to 2^63-1"),  # an integer past every double
        ({"t": "1_000"}, "bad_value", "'t': expected a number"),  # Python's int() took it
        ({"t": "\u0663"}, "bad_value", "'t': expected a number"),  # an Arabic-Indic 3
    ],
)
def test_values_that_do_not_convert_are_refused(
    payload: dict[str, Any], reason: str, words: str
) -> None:
    with pytest.raises(Rejected) as caught:
        mapped(payload)
    assert caught.value.reason == reason
    assert words in caught.value.detail


def test_without_rules_fields_are_kept_as_properties() -> None:
    attrs = mapped({"t": 21.5, "label": "x", "n": "3"}, mapping={})
    assert attrs == {
        "t": {"type": "Property", "value": 21.5},
        "label": {"type": "Property", "value": "x"},
        "n": {"type": "Property", "value": "3"},  # JSON strings stay strings
    }
    text = mapped({"n": "3", "s": "abc"}, mapping={}, textual=True)
    assert text["n"]["value"] == 3 and text["s"]["value"] == "abc"
    with pytest.raises(Rejected, match="'id' cannot become an attribute"):
        mapped({"id": "urn:x:y"}, mapping={})


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ([], "must be a JSON object"),
        ({"atributes": {}}, "unknown member(s) ['atributes']"),
        ({"attributes": {"t": {"type": "float"}}}, "mapping.attributes.t.type must be one of"),
        ({"attributes": {"t": {"scale": "10"}}}, "mapping.attributes.t.scale must be a finite"),
        ({"attributes": {"t": {"type": "string", "unitCode": "CEL"}}}, "number attributes only"),
        ({"attributes": {"t": {"name": "id"}}}, "cannot be the entity member"),
        ({"attributes": {"t": {"name": "a b"}}}, "invalid attribute name"),
        ({"attributes": {"t": {"nmae": "x"}}}, "unknown member(s) ['nmae']"),
        ({"points": {"location": {"lat": "la"}}}, "mapping.points.location must be"),
        ({"observedAt": 5}, "mapping.observedAt has a bad payload field name"),
        ({"unmapped": "drop"}, "mapping.unmapped must be one of"),
        ({"static": {"type": {"value": 1}}}, "cannot set the entity member"),
    ],
)
def test_bad_mappings_name_the_member(mapping: Any, words: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        check_mapping(mapping)
    assert words in caught.value.detail


def test_one_attribute_one_rule() -> None:
    doc = check_mapping(
        {
            "attributes": {"la": {"name": "location"}},
            "points": {"location": {"lat": "a", "lon": "b"}},
        }
    )
    with pytest.raises(BadRequestData, match="writes attribute 'location' twice"):
        check_effective(doc)


def test_device_mapping_over_source_mapping() -> None:
    source = check_mapping({"attributes": {"t": {"name": "temperature"}}, "observedAt": "ts"})
    device = check_mapping({"attributes": {"h": {"name": "humidity"}}, "static": {"x": 1}})
    merged = merge(source, device)
    assert set(merged["attributes"]) == {"t", "h"}
    assert merged["observedAt"] == "ts"
    assert merged["static"] == {"x": 1}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"[]", "malformed"),
        (b"t|1|h", "malformed"),
        (b"|1", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"t|" + b"9" * 300_000, "too_large"),
        (b'{"t": ' + b'{"a": ' * 60 + b"1" + b"}" * 61, "malformed"),  # nested too deep to store
    ],
)
def test_payloads_that_are_not_measurements(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        decode(payload)
    assert caught.value.reason == reason


def test_json_arrays_carry_several_measurements() -> None:
    measures, textual = decode(b'[{"t": 1, "ts": 1}, {"t": 2, "ts": 2}]')
    assert [m["t"] for m in measures] == [1, 2] and not textual


def test_integers_past_64_bits_are_never_rounded() -> None:
    """A compact-text integer of more than 64 bits reached the store as a Python int that
    orjson cannot write (a 500 over HTTP); then it was rounded to a double, as orjson read
    one in JSON: a 20-digit ICCID lost its last digits. Kept as a field's text it stays the
    string it was; declared a number, it is refused (decision 053)."""
    iccid = "89314404000123456789"
    measures, textual = decode(b"n|%s\n" % iccid.encode())
    assert mapped(measures[0], mapping={}, textual=textual)["n"]["value"] == iccid
    rules = {"attributes": {"n": {"name": "n", "type": "number"}}}
    for text in (iccid, "9223372036854775808", "-9223372036854775809"):
        with pytest.raises(Rejected) as caught:
            mapped({"n": text}, mapping=rules, textual=True)
        assert caught.value.reason == "bad_value" and "-2^63 to 2^63-1" in caught.value.detail
    edge = mapped({"n": "9223372036854775807"}, mapping=rules, textual=True)
    assert edge["n"]["value"] == 2**63 - 1
    assert mapped({"n": "1e23"}, mapping={}, textual=True)["n"]["value"] == 1e23


def test_a_scale_that_overflows_is_refused() -> None:
    """1e300 scaled by 1e300 was stored as null."""
    rules = {"attributes": {"v": {"name": "v", "type": "number", "scale": 1e300}}}
    with pytest.raises(Rejected) as caught:
        mapped({"v": 1e300}, mapping=rules)
    assert caught.value.reason == "bad_value" and "finite when scaled" in caught.value.detail
