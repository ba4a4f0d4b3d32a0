"""/iot/v1: provisioning (sources, devices), the HTTP southbound, dead letters and stats.

Handlers stay thin: the tenant comes from NGSILD-Tenant, errors are cityhub.ngsild.errors
classes (the app renders them as ProblemDetails), device refusals go through reasons.as_error.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cityhub.api.http import header, plain_json, read_body, read_limited, tenant_of
from cityhub.ingest.agent.deadletters import view
from cityhub.ingest.agent.payload import JSON, MAX_BYTES, TEXT, Raw
from cityhub.ingest.agent.reasons import BAD_REQUEST, TOO_LARGE, UNSUPPORTED, Rejected, as_error
from cityhub.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    RequestTooLarge,
    ResourceNotFound,
)
from cityhub.ngsild.params import integer

PREFIX = "/iot/v1"
MAX_LIMIT = 1000


def _agent(request: Request) -> Any:
    return request.app.state.iot


def _tenant(request: Request) -> str:
    return tenant_of(request, must_exist=False)


def _page(request: Request, *extra: str) -> tuple[int, int]:
    """limit (1-1000, default 100) and offset; any other parameter (but `extra`) is a 400."""
    params = request.query_params
    allowed = ("limit", "offset", *extra)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}; allowed: {', '.join(allowed)}")
    try:  # digits only: int() also read "+2", " 2" and "2_0" (as 20)
        return integer(params, "limit", 100, 1, MAX_LIMIT), integer(params, "offset", 0, 0, 2**31)
    except BadRequestData as exc:  # this API has always called it an InvalidRequest
        raise InvalidRequest(exc.detail) from None


def _listing(docs: list[Any], total: int) -> Response:
    return plain_json(docs, headers={"X-Total-Count": str(total)})


def _created(kind: str, view: dict[str, Any], key: str | None) -> Response:
    body = {**view, "apikey": key} if key is not None else view
    location = f"{PREFIX}/{kind}/{quote(view['id'], safe=':')}"
    return plain_json(body, status=201, headers={"Location": location})


# -- sources ----------------------------------------------------------------------------------
async def list_sources(request: Request) -> Response:
    """GET /iot/v1/sources."""
    limit, offset = _page(request)
    return _listing(*_agent(request).provisioning.list_sources(_tenant(request), limit, offset))


async def create_source(request: Request) -> Response:
    """POST /iot/v1/sources: 201; a generated API key is in this answer only."""
    body, _ = await read_body(request)
    view, key = await _agent(request).provisioning.create_source(_tenant(request), body)
    return _created("sources", view, key)


async def get_source(request: Request) -> Response:
    """GET /iot/v1/sources/{sid}."""
    prov = _agent(request).provisioning
    return plain_json(prov.get_source(_tenant(request), request.path_params["sid"]))


async def update_source(request: Request) -> Response:
    """PATCH /iot/v1/sources/{sid}: the members given replace the stored ones."""
    body, _ = await read_body(request)
    prov = _agent(request).provisioning
    return plain_json(await prov.update_source(_tenant(request), request.path_params["sid"], body))


async def delete_source(request: Request) -> Response:
    """DELETE /iot/v1/sources/{sid}: 409 while devices use it."""
    await _agent(request).provisioning.delete_source(_tenant(request), request.path_params["sid"])
    return Response(status_code=204)


# -- devices ----------------------------------------------------------------------------------
async def list_devices(request: Request) -> Response:
    """GET /iot/v1/devices."""
    limit, offset = _page(request)
    return _listing(*_agent(request).provisioning.list_devices(_tenant(request), limit, offset))


async def create_device(request: Request) -> Response:
    """POST /iot/v1/devices: 201 and the device's entity; a generated key is shown once."""
    body, _ = await read_body(request)
    view, key = await _agent(request).provisioning.create_device(_tenant(request), body)
    return _created("devices", view, key)


async def get_device(request: Request) -> Response:
    """GET /iot/v1/devices/{did}."""
    prov = _agent(request).provisioning
    return plain_json(prov.get_device(_tenant(request), request.path_params["did"]))


async def update_device(request: Request) -> Response:
    """PATCH /iot/v1/devices/{did}."""
    body, _ = await read_body(request)
    prov = _agent(request).provisioning
    return plain_json(await prov.update_device(_tenant(request), request.path_params["did"], body))


async def delete_device(request: Request) -> Response:
    """DELETE /iot/v1/devices/{did} (the entity stays)."""
    await _agent(request).provisioning.delete_device(_tenant(request), request.path_params["did"])
    return Response(status_code=204)


# -- the HTTP southbound ----------------------------------------------------------------------
_FORMS = {"application/json": JSON, "text/plain": TEXT}


async def southbound(request: Request) -> Response:
    """POST /iot/v1/json?k=APIKEY&i=DEVICE: 204 once stored, a ProblemDetails 4xx if refused,
    and the API's 503 when the store cannot write (the device should send it again)."""
    ingestor = _agent(request).ingestor
    key, device = request.query_params.get("k", ""), request.query_params.get("i", "")
    media = header(request, b"content-type").split(";")[0].strip().lower()
    raw = Raw("http", key, device, b"", _FORMS.get(media))
    try:
        raw.payload = await read_limited(request, MAX_BYTES)
    except RequestTooLarge:  # declared or streamed: a device message has its own, smaller cap
        raise as_error(
            ingestor.refuse(raw, Rejected(TOO_LARGE, f"at most {MAX_BYTES:,} bytes"))
        ) from None
    if not key or not device:
        rej = Rejected(BAD_REQUEST, "the query needs k (the API key) and i (the device id)")
        raise as_error(ingestor.refuse(raw, rej))
    if raw.form is None:
        detail = f"Content-Type {media or '(none)'} is not application/json or text/plain"
        raise as_error(ingestor.refuse(raw, Rejected(UNSUPPORTED, detail)))
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ingestor.submit(raw, done)
    try:
        await done
    except Rejected as rej:
        raise as_error(rej) from None
    return Response(status_code=204)


# -- operations -------------------------------------------------------------------------------
async def list_deadletters(request: Request) -> Response:
    """GET /iot/v1/deadletters: the tenant's refused messages, oldest first (?unrouted=true:
    those no device took, hub-wide)."""
    limit, offset = _page(request, "unrouted")
    return _listing(*_agent(request).letters.page(_letters_of(request), limit, offset))


def _letters_of(request: Request) -> str | None:
    """The tenant whose letters a request names, or None for the unrouted ones."""
    unrouted = request.query_params.get("unrouted", "false")
    if unrouted not in ("true", "false"):
        raise InvalidRequest(f"unrouted must be true or false, got {unrouted!r}")
    return None if unrouted == "true" else _tenant(request)


def _one_letter(request: Request) -> tuple[str | None, str]:
    """(tenant or None for unrouted, letter id) of a request on one letter; any parameter
    but `unrouted` is a 400."""
    unknown = sorted(set(request.query_params) - {"unrouted"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}; allowed: unrouted")
    return _letters_of(request), request.path_params["lid"]


async def get_deadletter(request: Request) -> Response:
    """GET /iot/v1/deadletters/{lid}: one refused message."""
    tenant, lid = _one_letter(request)
    doc = _agent(request).letters.get(tenant, lid)
    if doc is None:
        raise ResourceNotFound(f"no dead letter {lid!r} here")
    return plain_json(view(doc))


async def delete_deadletter(request: Request) -> Response:
    """DELETE /iot/v1/deadletters/{lid}: forget one refused message (its payload scrubbed)."""
    tenant, lid = _one_letter(request)
    letters = _agent(request).letters
    if not await request.app.state.committer.run(lambda: letters.remove(tenant, lid)):
        raise ResourceNotFound(f"no dead letter {lid!r} here")
    return Response(status_code=204)


async def retry_deadletter(request: Request) -> Response:
    """POST /iot/v1/deadletters/{lid}/retry: 204 once stored (the letter is gone), else the
    device's refusal, and the letter stays."""
    tenant, lid = _one_letter(request)
    await _agent(request).retries.retry(tenant, lid)
    return Response(status_code=204)


async def clear_deadletters(request: Request) -> Response:
    """DELETE /iot/v1/deadletters: forget the tenant's refused messages (?unrouted=true: those
    no device took; ?device=: one device's only). Any other parameter is a 400: one that was
    ignored (a typo, or `device` before it was read) erased every letter of the tenant."""
    unknown = sorted(set(request.query_params) - {"unrouted", "device"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s) {unknown}; allowed: unrouted, device")
    agent = _agent(request)
    tenant = _letters_of(request)
    device = request.query_params.get("device")
    gone = await request.app.state.committer.run(lambda: agent.letters.clear(tenant, device))
    return plain_json({"deleted": gone})


async def stats(request: Request) -> Response:
    """GET /iot/v1/stats: counters since start, dead letters held, MQTT connection state."""
    return plain_json(_agent(request).snapshot())


def routes() -> list[BaseRoute]:
    """Every /iot/v1 route."""
    return [
        Route(PREFIX + "/json", southbound, methods=["POST"]),
        Route(PREFIX + "/sources", list_sources, methods=["GET"]),
        Route(PREFIX + "/sources", create_source, methods=["POST"]),
        Route(PREFIX + "/sources/{sid}", get_source, methods=["GET"]),
        Route(PREFIX + "/sources/{sid}", update_source, methods=["PATCH"]),
        Route(PREFIX + "/sources/{sid}", delete_source, methods=["DELETE"]),
        Route(PREFIX + "/devices", list_devices, methods=["GET"]),
        Route(PREFIX + "/devices", create_device, methods=["POST"]),
        Route(PREFIX + "/devices/{did}", get_device, methods=["GET"]),
        Route(PREFIX + "/devices/{did}", update_device, methods=["PATCH"]),
        Route(PREFIX + "/devices/{did}", delete_device, methods=["DELETE"]),
        Route(PREFIX + "/deadletters", list_deadletters, methods=["GET"]),
        Route(PREFIX + "/deadletters", clear_deadletters, methods=["DELETE"]),
        Route(PREFIX + "/deadletters/{lid}", get_deadletter, methods=["GET"]),
        Route(PREFIX + "/deadletters/{lid}", delete_deadletter, methods=["DELETE"]),
        Route(PREFIX + "/deadletters/{lid}/retry", retry_deadletter, methods=["POST"]),
        Route(PREFIX + "/stats", stats, methods=["GET"]),
    ]
