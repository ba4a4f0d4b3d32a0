"""The bare baseline: Starlette with no NGSI-LD logic, served exactly like the hub.

GET answers with the JSON body (and Link header) the hub gave for one entity; POST and
PATCH parse the JSON body with the same parser as the hub (orjson) and answer 201 / 204.
The body to echo comes from the file named by BENCH_GET_BODY.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LINK = (
    "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def create() -> Starlette:
    """The bare app (a uvicorn --factory)."""
    path = os.environ.get("BENCH_GET_BODY")
    doc: Any = orjson.loads(Path(path).read_bytes()) if path else {"id": "urn:x", "type": "T"}

    async def get_entity(request: Request) -> Response:
        return Response(orjson.dumps(doc), media_type="application/json", headers={"Link": LINK})

    async def post_entity(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{body['id']}"})

    async def patch_attrs(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/ngsi-ld/v1/entities", post_entity, methods=["POST"]),
            Route("/ngsi-ld/v1/entities/{eid}", get_entity, methods=["GET"]),
            Route("/ngsi-ld/v1/entities/{eid}/attrs", patch_attrs, methods=["PATCH"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
