"""CITYHUB_INGEST_TIMEZONE: devices that keep local time without an offset (common east of
Greenwich, e.g. KST) had every reading refused as hours ahead of the hub's clock (decision
080); with the setting their zone-less times are read in that zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import get_entity
from test_iot_late_readings import EID, history, meter, send

SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture
def app(db_path: Path) -> Starlette:
    """conftest's hub, with its devices' zone-less times read in Seoul's time."""
    return create_app(Settings(db=str(db_path), ingest_timezone="Asia/Seoul"))


async def test_a_local_time_without_an_offset_is_read_in_the_zone(
    client: httpx.AsyncClient,
) -> None:
    key = await meter(client)
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(SEOUL).replace(tzinfo=None).isoformat()  # 9 h ahead of UTC as text
    assert (await send(client, key, {"v": 1, "ts": local})).status_code == 204
    stored = now.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert (await get_entity(client, EID))["reading"]["observedAt"] == stored
    # a time that names its zone keeps it
    later = now.replace(year=now.year - 1).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await send(client, key, {"v": 0, "ts": later})).status_code == 204
    assert (0, later.replace("Z", ".000000Z")) in await history(client)


def test_a_zone_that_does_not_exist_stops_the_settings() -> None:
    with pytest.raises(ValidationError, match="no IANA time zone"):
        Settings(ingest_timezone="Asia/Seul")
