"""Deterministic, realistic NGSI-LD payloads shared by the load generator and the runner."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TYPES = (
    "AirQualityObserved",
    "WeatherObserved",
    "ParkingSpot",
    "StreetLight",
    "TrafficFlowObserved",
)
STATUS = ("ok",) * 90 + ("warn",) * 9 + ("alarm",)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TEMPORAL_DAYS = 100
TEMPORAL_ID = "urn:ngsi-ld:WeatherObserved:bench-history"
TEMPORAL_TYPE = "WeatherObserved"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def city_entity(i: int, prefix: str = "city") -> dict[str, Any]:
    """Entity number i of the city data set (type i % 5): a few numeric Properties, a status,
    a location Point and a Relationship. Temperature is uniform on [0, 40), status is 'ok'
    90 % of the time, 'warn' 9 %, 'alarm' 1 %."""
    rnd = random.Random(i)
    typ = TYPES[i % len(TYPES)]
    observed = _iso(T0 + timedelta(seconds=i * 7))
    return {
        "id": f"urn:ngsi-ld:{typ}:{prefix}-{i}",
        "type": typ,
        "temperature": {
            "type": "Property",
            "value": round(rnd.uniform(0, 40), 2),
            "unitCode": "CEL",
            "observedAt": observed,
        },
        "humidity": {"type": "Property", "value": round(rnd.uniform(10, 100), 1), "unitCode": "P1"},
        "battery": {"type": "Property", "value": rnd.randint(0, 100)},
        "status": {"type": "Property", "value": STATUS[rnd.randrange(len(STATUS))]},
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "Point",
                "coordinates": [
                    round(2.25 + rnd.random() * 0.2, 6),
                    round(48.8 + rnd.random() * 0.1, 6),
                ],
            },
        },
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:dev-{i % 997}"},
    }


def city_batch(start: int, size: int, prefix: str = "city") -> bytes:
    """A JSON array of `size` city entities starting at number `start`."""
    return orjson.dumps([city_entity(i, prefix) for i in range(start, start + size)])


def history_chunk(start: int, size: int, total: int) -> bytes:
    """A temporal attrs body: `size` temperature instances, observedAt spread over ~100 days."""
    step = TEMPORAL_DAYS * 86400 / max(total, 1)
    insts = [
        {
            "type": "Property",
            "value": round(15 + 10 * ((k * 7919) % 1000) / 1000, 2),
            "observedAt": _iso(T0 + timedelta(seconds=int(k * step))),
        }
        for k in range(start, start + size)
    ]
    return orjson.dumps({"temperature": insts})


def temporal_window() -> tuple[str, str]:
    """timeAt / endTimeAt covering the whole history."""
    return _iso(T0 - timedelta(days=1)), _iso(T0 + timedelta(days=TEMPORAL_DAYS + 1))
