"""/temporal: 404s on a temporal entity that does not exist, malformed instance patches, and
the read options lastN with timerel=between, options=concise and lang= on LanguageProperties."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, get_temporal, instance_values, problem

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Meter:m1"
NONE = "urn:ngsi-ld:Meter:none"
IID = "urn:ngsi-ld:attribute:instance:nope"
D1 = "2024-01-01T00:00:00Z"
D1_NOON = "2024-01-01T12:00:00Z"
D2 = "2024-01-02T00:00:00Z"
D2_NOON = "2024-01-02T12:00:00Z"


def reading(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


def meter() -> dict[str, Any]:
    """power at four times, a relationship and a LanguageProperty that changed once."""
    return {
        "id": EID,
        "type": "Meter",
        "power": [
            reading(10, D1, unitCode="KWT"),
            reading(20, D1_NOON, unitCode="KWT"),
            reading(30, D2, unitCode="KWT"),
            reading(40, D2_NOON, unitCode="KWT"),
        ],
        "feeds": [{"type": "Relationship", "object": "urn:ngsi-ld:Home:1", "observedAt": D1}],
        "label": [
            {
                "type": "LanguageProperty",
                "languageMap": {"en": "meter", "fr": "compteur"},
                "observedAt": D1,
            },
            {
                "type": "LanguageProperty",
                "languageMap": {"en": "power meter", "fr": "compteur électrique", "@none": "pm"},
                "observedAt": D2,
            },
        ],
    }


@pytest.fixture
async def history(client: httpx.AsyncClient) -> None:
    resp = await client.post(T, json=meter())
    assert resp.status_code == 201, resp.text


async def temporal(client: httpx.AsyncClient, eid: str = EID, **params: str) -> dict[str, Any]:
    return await get_temporal(client, eid, **params)


values = instance_values


# -- a temporal entity that does not exist -----------------------------------------------------


async def test_delete_attribute_of_unknown_temporal_entity_is_404(
    client: httpx.AsyncClient, history: None
) -> None:
    body = problem(await client.delete(f"{T}/{NONE}/attrs/power"), 404, "ResourceNotFound")
    assert NONE in body.get("detail", ""), body
    for params in ({"deleteAll": "true"}, {"datasetId": "urn:ds:a"}):
        resp = await client.delete(f"{T}/{NONE}/attrs/power", params=params)
        problem(resp, 404, "ResourceNotFound")
    problem(await client.get(f"{T}/{NONE}"), 404, "ResourceNotFound")
    assert len(values(await temporal(client), "power")) == 4, "the other entity is untouched"


async def test_patch_instance_of_unknown_temporal_entity_is_404_and_creates_nothing(
    client: httpx.AsyncClient, history: None
) -> None:
    iid = (await temporal(client))["power"][0]["instanceId"]
    for target in (IID, iid):  # not even an instanceId that exists in another entity
        resp = await client.patch(f"{T}/{NONE}/attrs/power/{target}", json=reading(1, D1))
        problem(resp, 404, "ResourceNotFound")
    problem(await client.get(f"{T}/{NONE}"), 404, "ResourceNotFound")
    assert values(await temporal(client), "power") == [10, 20, 30, 40]


async def test_delete_instance_of_unknown_temporal_entity_is_404(
    client: httpx.AsyncClient, history: None
) -> None:
    iid = (await temporal(client))["power"][0]["instanceId"]
    for target in (IID, iid):
        problem(await client.delete(f"{T}/{NONE}/attrs/power/{target}"), 404, "ResourceNotFound")
    after = await temporal(client)
    assert values(after, "power") == [10, 20, 30, 40], "the instance of m1 was not deleted"
    assert after["power"][0]["instanceId"] == iid


async def test_aggregated_values_of_unknown_temporal_entity_is_404(
    client: httpx.AsyncClient, history: None
) -> None:
    resp = await client.get(
        f"{T}/{NONE}", params={"options": "aggregatedValues", "aggrMethods": "sum"}
    )
    problem(resp, 404, "ResourceNotFound")
    resp = await client.get(
        f"{T}/{NONE}", params={"format": "aggregatedValues", "aggrMethods": "sum,max"}
    )
    problem(resp, 404, "ResourceNotFound")
    # the same request on an entity that exists answers
    got = await temporal(client, options="aggregatedValues", aggrMethods="sum", attrs="power")
    assert got["power"]["sum"][0][0] == 100, got


# -- a malformed instance patch ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([reading(1, D1)], id="array-of-instances"),
        pytest.param([1, 2], id="array-of-numbers"),
        pytest.param(5, id="number"),
        pytest.param("text", id="string"),
        pytest.param(True, id="boolean"),
        pytest.param({}, id="empty-object"),
        pytest.param({"power": {}}, id="empty-instance-under-its-name"),
    ],
)
async def test_patch_instance_with_a_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, history: None, body: Any
) -> None:
    before = await temporal(client)
    iid = before["power"][1]["instanceId"]
    bad_request(await client.patch(f"{T}/{EID}/attrs/power/{iid}", json=body))
    after = await temporal(client)
    assert after["power"] == before["power"], "the instance is unchanged"


# -- lastN with timerel=between -----------------------------------------------------------------


async def test_last_n_within_a_between_window(client: httpx.AsyncClient, history: None) -> None:
    window = {"timerel": "between", "timeAt": "2024-01-01T06:00:00Z", "endTimeAt": D2_NOON}
    body = await temporal(client, lastN="1", **window)
    assert values(body, "power") == [30], "the newest reading inside the window, not 40 at its end"
    body = await temporal(client, lastN="2", **window)
    assert values(body, "power") == [20, 30], body
    body = await temporal(client, lastN="5", **window)
    assert values(body, "power") == [20, 30], "lastN larger than the window keeps it whole"
    tv = await temporal(client, lastN="1", format="temporalValues", attrs="power", **window)
    assert tv["power"]["values"] == [[30, D2]], tv


async def test_last_n_with_a_between_window_that_is_empty(
    client: httpx.AsyncClient, history: None
) -> None:
    body = await temporal(
        client,
        lastN="1",
        timerel="between",
        timeAt="2025-01-01T00:00:00Z",
        endTimeAt="2025-02-01T00:00:00Z",
    )
    assert body["id"] == EID and "power" not in body, body


async def test_last_n_with_between_still_validates_the_window(
    client: httpx.AsyncClient, history: None
) -> None:
    for params in (
        {"lastN": "1", "timerel": "between", "timeAt": D1},
        {"lastN": "1", "timerel": "between", "timeAt": D2, "endTimeAt": D1},
        {"lastN": "0", "timerel": "between", "timeAt": D1, "endTimeAt": D2},
    ):
        bad_request(await client.get(f"{T}/{EID}", params=params))


# -- options=concise ----------------------------------------------------------------------------


async def test_concise_temporal_representation(client: httpx.AsyncClient, history: None) -> None:
    full = await temporal(client)
    body = await temporal(client, options="concise")
    assert body["id"] == EID and body["type"] == "Meter", body
    power = body["power"]
    assert [i["value"] for i in power] == [10, 20, 30, 40], power
    for inst, normal in zip(power, full["power"], strict=True):
        assert "type" not in inst, f"concise instances drop their type: {inst}"
        assert inst["instanceId"] == normal["instanceId"], inst
        assert inst["observedAt"] == normal["observedAt"] and inst["unitCode"] == "KWT", inst
    assert body["feeds"] == [
        {
            "object": "urn:ngsi-ld:Home:1",
            "observedAt": D1,
            "instanceId": full["feeds"][0]["instanceId"],
        }
    ], body["feeds"]
    assert [i["languageMap"]["fr"] for i in body["label"]] == ["compteur", "compteur électrique"]
    assert all("type" not in i for i in body["label"]), body["label"]


async def test_concise_temporal_query_and_sys_attrs(
    client: httpx.AsyncClient, history: None
) -> None:
    resp = await client.get(T, params={"type": "Meter", "options": "concise", "attrs": "power"})
    assert resp.status_code == 200, resp.text
    (entity,) = resp.json()
    assert [i["value"] for i in entity["power"]] == [10, 20, 30, 40], entity
    assert all("type" not in i for i in entity["power"]), entity
    body = await temporal(client, options="concise,sysAttrs", attrs="power")
    assert all("createdAt" in i and "modifiedAt" in i for i in body["power"]), body
    assert all("type" not in i for i in body["power"]), body


async def test_format_normalized_wins_over_options_concise(
    client: httpx.AsyncClient, history: None
) -> None:
    body = await temporal(client, options="concise", format="normalized", attrs="power")
    assert all(i["type"] == "Property" for i in body["power"]), body


# -- lang= on a LanguageProperty ----------------------------------------------------------------


async def test_lang_picks_one_language_in_each_instance(
    client: httpx.AsyncClient, history: None
) -> None:
    body = await temporal(client, lang="fr", attrs="label")
    label = body["label"]
    assert [i["type"] for i in label] == ["Property", "Property"], label
    assert [i["value"] for i in label] == ["compteur", "compteur électrique"], label
    assert [i["lang"] for i in label] == ["fr", "fr"], label
    assert all("languageMap" not in i for i in label), label
    assert [i["observedAt"] for i in label] == [D1, D2]
    assert all(i["instanceId"].startswith("urn:") for i in label), label


async def test_lang_does_not_change_other_attributes(
    client: httpx.AsyncClient, history: None
) -> None:
    plain = await temporal(client, attrs="power")
    body = await temporal(client, lang="fr", attrs="power")
    assert body["power"] == plain["power"], body


async def test_lang_falls_back_when_the_language_is_missing(
    client: httpx.AsyncClient, history: None
) -> None:
    body = await temporal(client, lang="de", attrs="label")
    label = body["label"]
    assert label[1]["value"] == "pm" and label[1]["lang"] == "@none", label
    assert label[0]["value"] in ("meter", "compteur"), label
    assert label[0]["lang"] in ("en", "fr"), label


async def test_lang_with_concise_and_temporal_values(
    client: httpx.AsyncClient, history: None
) -> None:
    body = await temporal(client, lang="en", options="concise", attrs="label")
    assert [(i["value"], i["lang"]) for i in body["label"]] == [
        ("meter", "en"),
        ("power meter", "en"),
    ], body
    assert all("type" not in i for i in body["label"]), body
    tv = await temporal(client, lang="fr", format="temporalValues", attrs="label")
    assert tv["label"] == {
        "type": "Property",
        "values": [["compteur", D1], ["compteur électrique", D2]],
    }, tv
    whole = await temporal(client, format="temporalValues", attrs="label")
    assert whole["label"]["type"] == "LanguageProperty", whole
    assert [v[0]["languageMap"]["en"] for v in whole["label"]["languageMaps"]] == [
        "meter",
        "power meter",
    ], whole


@pytest.mark.parametrize("path", ["create", "append"])
async def test_instances_without_a_type_keep_their_value_and_observed_at(
    client: httpx.AsyncClient, path: str
) -> None:
    untyped = [{"value": 5, "observedAt": D1}, {"value": 6, "observedAt": D2, "unitCode": "KWT"}]
    if path == "create":
        resp = await client.post(T, json={"id": EID, "type": "Meter", "power": untyped})
    else:
        assert (await client.post(T, json={"id": EID, "type": "Meter"})).status_code == 201
        resp = await client.post(f"{T}/{EID}/attrs", json={"power": untyped})
    assert resp.status_code in (201, 204), resp.text
    got = (await temporal(client))["power"]
    assert [(i["type"], i["value"], i["observedAt"]) for i in got] == [
        ("Property", 5, D1),
        ("Property", 6, D2),
    ], got
    assert got[1]["unitCode"] == "KWT"


@pytest.mark.parametrize(
    "params",
    [
        {"aggrPeriodDuration": "garbage"},
        {"aggrPeriodDuration": "PT0.0000000000001S"},  # every period began and ended at once
        {"aggrMethods": "bogus"},
        {"aggrMethods": ""},
    ],
)
async def test_malformed_aggregation_parameters_are_400_in_any_format(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Without options=aggregatedValues they were ignored, malformed or not."""
    assert (await client.post(T, json=meter())).status_code == 201
    problem(await client.get(f"{T}/{EID}", params=params), 400, "BadRequestData")


async def test_the_temporal_api_keeps_one_attribute_type_per_attribute(
    client: httpx.AsyncClient,
) -> None:
    """A Relationship appended among Properties was listed under "Property", its object as a
    value; a PATCH could turn one instance into another type the same way."""
    assert (await client.post(T, json=meter())).status_code == 201
    rel = {
        "power": [
            {"type": "Relationship", "object": "urn:x:a", "observedAt": "2024-02-01T00:00:00Z"}
        ]
    }
    problem(await client.post(f"{T}/{EID}/attrs", json=rel), 400, "BadRequestData")
    again = meter() | rel
    problem(await client.post(T, json=again), 400, "BadRequestData")
    stored = await get_temporal(client, EID)
    iid = stored["power"][0]["instanceId"]
    resp = await client.patch(
        f"{T}/{EID}/attrs/power/{iid}", json={"type": "Relationship", "object": "urn:x:b"}
    )
    problem(resp, 400, "BadRequestData")
    assert await get_temporal(client, EID) == stored


@pytest.mark.parametrize("path", [f"{T}/{EID}", f"{T}?type=Meter"])
async def test_an_unknown_option_lists_only_the_temporal_ones(
    client: httpx.AsyncClient, path: str
) -> None:
    """The list named deleteAll, noOverwrite, replace and update, which no temporal read
    takes."""
    assert (await client.post(T, json=meter())).status_code == 201
    sep = "&" if "?" in path else "?"
    err = problem(await client.get(f"{path}{sep}options=bogus"), 400, "InvalidRequest")
    known = err["detail"].split("known: ", 1)[1].split(", ")
    assert "temporalValues" in known and "aggregatedValues" in known, err
    assert not {"deleteAll", "noOverwrite", "replace", "update"} & set(known), err


# -- a malformed endTimeAt where the window does not use it ------------------------------------


@pytest.mark.parametrize("timerel", ["after", "before"])
async def test_a_malformed_end_time_at_is_refused_whatever_the_timerel(
    client: httpx.AsyncClient, history: None, timerel: str
) -> None:
    """endTimeAt means nothing with after or before and is ignored there, but a value that is
    no DateTime is a client's mistake: answered 200, the client never learnt of it."""
    window = {"timerel": timerel, "timeAt": D2, "endTimeAt": "garbage"}
    body = bad_request(await client.get(f"{T}/{EID}", params=window))
    assert "endTimeAt" in body.get("detail", ""), body
    resp = await client.get(T, params={"type": "Meter", **window})
    assert "endTimeAt" in bad_request(resp).get("detail", "")
    query = {"type": "Query", "entities": [{"type": "Meter"}], "temporalQ": window}
    resp = await client.post(f"{BASE}/temporal/entityOperations/query", json=query)
    assert "endTimeAt" in bad_request(resp).get("detail", "")
    # a well-formed one is still ignored there, as before
    window["endTimeAt"] = D1
    got = await temporal(client, **window)
    assert values(got, "power") == ([30, 40] if timerel == "after" else [10, 20]), got
