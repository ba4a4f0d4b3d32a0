"""GET /entities/{id} with no query and no Link is answered before Starlette's middleware and
routing (api/plain_read.py), with the same bytes as the whole path gives; anything else, and
every error, goes the whole way."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from cityhub.api.http import GEOJSON, JSON, JSONLD, BodyResponse
from conftest import CORE


@pytest.mark.parametrize(
    ("media", "link_value"),
    [(JSON, f"<{CORE}>; rel=x"), (JSONLD, None), (GEOJSON, None), (GEOJSON, "<u>")],
)
def test_body_responses_have_starlettes_header_lines(media: str, link_value: str | None) -> None:
    body = b'{"id":"urn:x:1"}'
    mine = BodyResponse(body, media, link_value)
    theirs = Response(
        body, media_type=media, headers={"Link": link_value} if link_value is not None else {}
    )
    assert mine.raw_headers == theirs.raw_headers
    assert (mine.status_code, mine.body, mine.media_type) == (200, body, media)
