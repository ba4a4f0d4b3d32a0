"""The app factory: wire store, services and routes into one Starlette application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cityhub.api import contexts as C
from cityhub.api import discovery as D
from cityhub.api import entities as E
from cityhub.api import registrations, subscriptions
from cityhub.api import temporal as T
from cityhub.api.app_state import AppState
from cityhub.api.body_budget import BodyBudget
from cityhub.api.commit import GroupCommitter
from cityhub.api.context_usage import keep_usage, save_usage
from cityhub.api.health import DAMAGED, health, note_damaged
from cityhub.api.http import BASE, plain_json, request_terms
from cityhub.api.plain_read import HubApp
from cityhub.api.read_memo import ReadMemo
from cityhub.api.readers import reader_pool
from cityhub.api.router import IndexedRouter
from cityhub.erasure import HistoryEraser
from cityhub.ingest.agent import agent as iot_agent
from cityhub.ingest.agent import api as iot_api
from cityhub.ngsild.context import CACHED, ContextCache
from cityhub.ngsild.context_guard import AddressGuard, parse_networks
from cityhub.ngsild.errors import (
    BadRequestData,
    ClaimedAttribute,
    InvalidRequest,
    MethodNotAllowed,
    NgsiLdError,
    ResourceNotFound,
    storage_full,
)
from cityhub.ngsild.registration_claims import RegistrationClaims
from cityhub.ngsild.service import EntityService
from cityhub.ngsild.temporal import TemporalService
from cityhub.notify.delivery import Policy
from cityhub.notify.notifier import Notifier
from cityhub.notify.senders import HttpSender
from cityhub.retention import HistoryPruner
from cityhub.settings import Settings
from cityhub.store.base import ClientGone, QueryTimeout, StoreBusy, StoreFull, StoreLost
from cityhub.store.sqlite import SqliteStore
from cityhub.throttled_log import ThrottledLog

log = logging.getLogger("cityhub")


def _both(path: str, endpoint: Callable[..., Any], methods: list[str]) -> list[BaseRoute]:
    """A collection route that answers with and without a trailing slash."""
    return [
        Route(BASE + path, endpoint, methods=methods),
        Route(BASE + path + "/", endpoint, methods=methods),
    ]


def routes() -> list[BaseRoute]:
    """Every NGSI-LD route the hub serves."""
    r: list[BaseRoute] = []
    # The hottest route first: Starlette tries routes in order. Ids may hold '/'; an empty id
    # (GET /entities/) is the collection.
    r.append(Route(BASE + "/entities/{eid:path}", E.get_entity, methods=["GET"]))
    r += _both("/entities", E.create_entity, ["POST"])
    r += _both("/entities", E.query_entities, ["GET"])
    r += _both("/entities", E.purge_entities, ["DELETE"])
    # An empty id or attribute name in the path is a bad request, not an unknown route.
    r += [
        Route(BASE + "/entities/", missing_id, methods=["PUT", "PATCH"]),
        Route(BASE + "/entities//attrs", missing_id, methods=["POST", "PATCH"]),
        Route(BASE + "/entities//attrs/", missing_id, methods=["POST", "PATCH"]),
        Route(BASE + "/entities//attrs/{attr}", missing_id, methods=["PATCH", "PUT", "DELETE"]),
        Route(BASE + "/entities/{eid}/attrs/", missing_id, methods=["PUT"]),
        Route(BASE + "/temporal/entities//attrs", missing_id, methods=["POST"]),
        Route(BASE + "/temporal/entities/{eid}/attrs//{iid}", missing_id, methods=["DELETE"]),
        Route(BASE + "/temporal/entities//attrs/{attr}", missing_id, methods=["DELETE"]),
        Route(
            BASE + "/temporal/entities//attrs/{attr}/{iid}", missing_id, methods=["PATCH", "DELETE"]
        ),
    ]
    r += _both("/entities/{eid}/attrs", E.append_attrs, ["POST"])
    r += _both("/entities/{eid}/attrs", E.update_attrs, ["PATCH"])
    r += [
        Route(BASE + "/entities/{eid}/attrs/{attr}", E.patch_attr, methods=["PATCH"]),
        Route(BASE + "/entities/{eid}/attrs/{attr}", E.replace_attr, methods=["PUT"]),
        Route(BASE + "/entities/{eid}/attrs/{attr}", E.delete_attr, methods=["DELETE"]),
    ]
    # Entity ids may hold '/' (http URLs); these come after the /attrs routes so they win.
    r += [
        Route(BASE + "/entities/{eid:path}", E.replace_entity, methods=["PUT"]),
        Route(BASE + "/entities/{eid:path}", E.merge_entity, methods=["PATCH"]),
        Route(BASE + "/entities/{eid:path}", E.delete_entity, methods=["DELETE"]),
    ]
    for op, fn in (
        ("create", E.batch_create),
        ("upsert", E.batch_upsert),
        ("update", E.batch_update),
        ("delete", E.batch_delete),
        ("merge", E.batch_merge),
        ("query", E.post_query),
    ):
        r += _both(f"/entityOperations/{op}", fn, ["POST"])
    r += _both("/types", D.list_types, ["GET"])
    r.append(Route(BASE + "/types/{type:path}", D.get_type, methods=["GET"]))
    r += _both("/attributes", D.list_attributes, ["GET"])
    r.append(Route(BASE + "/attributes/{attr:path}", D.get_attribute, methods=["GET"]))
    r += _both("/temporal/entities", T.create, ["POST"])
    r += _both("/temporal/entities", T.query, ["GET"])
    r += _both("/temporal/entityOperations/query", T.post_query, ["POST"])
    r += _both("/temporal/entities/{eid}/attrs", T.append, ["POST"])
    r += [
        Route(BASE + "/temporal/entities/{eid}/attrs/{attr}", T.delete_attr, methods=["DELETE"]),
        Route(
            BASE + "/temporal/entities/{eid}/attrs/{attr}/{iid}",
            T.modify_instance,
            methods=["PATCH"],
        ),
        Route(
            BASE + "/temporal/entities/{eid}/attrs/{attr}/{iid}",
            T.delete_instance,
            methods=["DELETE"],
        ),
    ]
    r += [
        Route(BASE + "/temporal/entities/{eid:path}", T.get, methods=["GET"]),
        Route(BASE + "/temporal/entities/{eid:path}", T.delete, methods=["DELETE"]),
    ]
    r += _both("/jsonldContexts", C.list_contexts, ["GET"])
    r += _both("/jsonldContexts", C.add_context, ["POST"])
    r += [
        Route(BASE + "/jsonldContexts/{cid:path}", C.get_context, methods=["GET"]),
        Route(BASE + "/jsonldContexts/{cid:path}", C.delete_context, methods=["DELETE"]),
    ]
    r += subscriptions.routes() + registrations.routes()
    r += iot_api.routes()
    r.append(Route("/health", health, methods=["GET"]))
    return r


async def missing_id(request: Request) -> Response:
    """A path with an empty entity id or attribute name."""
    raise BadRequestData("the path lacks an entity id or attribute name")


async def ngsild_error(request: Request, exc: Exception) -> Response:
    """Every NGSI-LD error becomes a ProblemDetails body."""
    assert isinstance(exc, NgsiLdError)
    if isinstance(exc, ClaimedAttribute):
        exc.in_terms(request_terms(request).compact)
    if exc.retry_after:
        return plain_json(
            exc.problem(), status=exc.status, headers={"Retry-After": exc.retry_after}
        )
    return plain_json(exc.problem(), status=exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in ProblemDetails form."""
    assert isinstance(exc, HTTPException)
    err: NgsiLdError
    if exc.status_code == 404:
        err = ResourceNotFound(f"no resource at {request.url.path}")
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        allowed = _methods_of(request)
        if allowed:
            return plain_json(err.problem(), status=405, headers={"Allow": ", ".join(allowed)})
    else:
        err = InvalidRequest(str(exc.detail))
        err.status = exc.status_code
    return plain_json(err.problem(), status=err.status, headers=dict(exc.headers or {}))


def _methods_of(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's Allow names only the first
    route's, RFC 9110 15.5.6 asks for all)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


async def store_full(request: Request, exc: Exception) -> Response:
    """The database cannot grow: 503 (an operator must free space), and a log line saying so
    (one per 10 s: a flood of them would fill the disk further)."""
    request.app.state.full_log.error(
        "write refused on %s %s: %s", request.method, request.url.path, exc
    )
    err = storage_full()
    return plain_json(err.problem(), status=503, headers={"Retry-After": "60"})


async def store_busy(request: Request, exc: Exception) -> Response:
    """Another process held the write lock past the wait (`cityhub import --db`): 503 with
    Retry-After, nothing stored; one log line per 10 s."""
    request.app.state.busy_log.warning(
        "write refused on %s %s: %s", request.method, request.url.path, exc
    )
    err = NgsiLdError(str(exc))
    err.status = 503
    return plain_json(err.problem(), status=503, headers={"Retry-After": "1"})


async def store_lost(request: Request, exc: Exception) -> Response:
    """The database file was deleted or replaced while the hub ran: 503, nothing stored or
    read; /health and the log tell the operator what happened and what to do."""
    request.app.state.lost_log.error(
        "refused %s %s: %s", request.method, request.url.path, request.app.state.store.lost()
    )
    err = NgsiLdError(str(exc))
    err.status = 503
    return plain_json(err.problem(), status=503)


async def query_timeout(request: Request, exc: Exception) -> Response:
    """A read stopped at CITYHUB_QUERY_TIMEOUT: 503, saying how to narrow it; or one that
    waited all of it for a reader thread: 503 with Retry-After, since it did no work."""
    assert isinstance(exc, QueryTimeout)
    if exc.never_started:
        err = NgsiLdError(
            f"{exc} (CITYHUB_QUERY_TIMEOUT): every reader thread (CITYHUB_QUERY_THREADS) "
            "was busy with other reads; try again shortly"
        )
        err.status = 503
        return plain_json(err.problem(), status=503, headers={"Retry-After": "5"})
    err = NgsiLdError(
        f"{exc} (CITYHUB_QUERY_TIMEOUT) and was stopped; narrow it with type, q, geoQ or a "
        "time range, or lower limit"
    )
    err.status = 503
    return plain_json(err.problem(), status=503)


async def database_error(request: Request, exc: Exception) -> Response:
    """The store found its file damaged: a 500 that says so and what to do, one log line
    per 10 s, and /health degraded from then on. Any other driver error is unexpected."""
    if not note_damaged(request, exc):
        raise exc  # on to `unexpected`, with its traceback
    return plain_json(NgsiLdError(DAMAGED.format(exc)).problem(), status=500)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that closed its connection mid-body, or while its read waited or ran (the
    read was skipped or stopped), is routine: one debug line, no traceback, no 500 (the
    answer goes nowhere; uvicorn drops it)."""
    if isinstance(exc, ClientGone):
        log.debug("client left during %s %s: its read stopped", request.method, request.url.path)
    else:
        log.debug(
            "client left during %s %s before sending its body", request.method, request.url.path
        )
    return Response(status_code=400)


async def unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log it, answer a ProblemDetails 500 without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return plain_json(NgsiLdError("unexpected server error; see the hub log").problem(), status=500)


def create_app(settings: Settings | None = None, store: Any = None) -> Starlette:
    """Build the hub: settings → store → services → routes."""
    settings = settings or Settings()
    store = store or SqliteStore(
        settings.db,
        sync=settings.sync,
        query_timeout=settings.query_timeout,
        max_entity_bytes=settings.max_entity_bytes,
    )
    cache = ContextCache(
        timeout=settings.context_timeout,
        ttl=settings.context_ttl,
        mirrors=settings.context_mirrors,
        on_fetch=lambda e: store.put_context(e.url, e.document, e.kind, e.created_at),
        on_evict=lambda entry: store.delete_context(entry.url),
        on_keep=lambda e: store.put_context(e.url, e.document, e.kind, e.created_at),
        private_networks=settings.context_private_networks,
        on_recall=lambda url: store.context(url, CACHED),
        max_memory_bytes=settings.context_memory_mb * 2**20,
    )
    cache.load(store.contexts())
    cache.restore_usage(store.context_usage())
    notifier = Notifier(
        store,
        cache,
        Policy(
            timeout=settings.notify_timeout,
            attempts=settings.notify_attempts,
            backoff=settings.notify_backoff,
            queue_max=settings.notify_queue_max,
            memory=settings.notify_memory_mb * 2**20,
            outbox_max=settings.notify_outbox_max,
            outbox_total=settings.notify_outbox_total,
        ),
        base_url=f"http://{settings.host}:{settings.port}",
        http=HttpSender(
            settings.notify_connections,
            AddressGuard(parse_networks(settings.notify_private_networks)),
            settings.notify_host_connections,
        ),
    )
    notifier.load()
    store.sink = notifier
    # what exclusive and redirect registrations claim; entity writes meet it (decision 083)
    claims = RegistrationClaims.guarding(store)
    pruner = HistoryPruner(store, settings.history_days)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notifier.start()
        pruner.start()
        app.state.eraser.start()
        await iot_agent.start(app)
        usage = asyncio.create_task(keep_usage(cache, app.state.committer))
        yield
        usage.cancel()
        await iot_agent.stop(app)
        await pruner.close()
        await app.state.eraser.close()
        await notifier.close()
        app.state.readers.shutdown(wait=True, cancel_futures=True)
        save_usage(cache, store)
        store.close()

    app = HubApp(
        routes=routes(),
        exception_handlers={
            NgsiLdError: ngsild_error,
            StoreFull: store_full,
            StoreBusy: store_busy,
            StoreLost: store_lost,
            QueryTimeout: query_timeout,
            store.driver_error: database_error,
            HTTPException: http_error,
            ClientDisconnect: client_gone,
            ClientGone: client_gone,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.router = IndexedRouter(app.routes, lifespan=lifespan)  # before the first request
    app.state = AppState()  # members read as plain attributes (app_state.py)
    app.state.settings = settings
    app.state.store = store
    app.state.committer = GroupCommitter(store)
    app.state.eraser = HistoryEraser(store, app.state.committer)
    app.state.contexts = cache
    app.state.entities = EntityService(store)
    app.state.read_memo = ReadMemo()
    app.state.bodies = BodyBudget(settings.body_memory_mb * 2**20)
    app.state.readers = reader_pool(settings.query_threads)
    app.state.full_log = ThrottledLog(log)
    app.state.busy_log = ThrottledLog(log)  # writes refused while another process writes
    app.state.lost_log = ThrottledLog(log)  # requests refused: the database file is gone
    app.state.damaged = ""  # what the store said when a request first found its file damaged
    app.state.damaged_log = ThrottledLog(log)
    app.state.temporal = TemporalService(store, settings.temporal_limit)
    app.state.notifier = notifier
    app.state.claims = claims
    app.state.pruner = pruner
    iot_agent.install(app)
    letters = app.state.iot.letters
    committer = app.state.committer

    async def expire_letters(before: float) -> int:
        """Dead letters past retention go as a committer job, as they are written."""
        gone: int = await committer.run(partial(letters.expire, before))
        return gone

    async def expire_notifications(before: float) -> int:
        """Unsent notifications past retention are emptied as a committer job (decision 095)."""
        gone: int = await committer.run(partial(store.outbox_expire, before))
        return gone

    pruner.add("deletedDeadLetters", "dead letters", expire_letters)
    pruner.add("deletedNotifications", "unsent notifications", expire_notifications)
    return app
