"""`import --url`: the plan written through a running hub's API, so its subscribers hear of it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from cityhub.ingest.headers import hub_url, tenant_headers
from cityhub.ingest.importers.prune import Links
from cityhub.ingest.importers.records import Entity, ImportFailed
from cityhub.ingest.importers.refresh import History, Planner, Span, given
from cityhub.ingest.importers.writer import READ_SLICE, ChunkResult, Rejects, Writer, objects
from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import ENTITY_KEYS, expand_attribute, expand_entity, expand_name
from cityhub.ngsild.errors import NgsiLdError
from cityhub.ngsild.timeutil import format_ts, next_instant, parse_ts
from cityhub.store.base import Doc

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
MERGE_PATH = "/ngsi-ld/v1/entityOperations/merge"
QUERY_PATH = "/ngsi-ld/v1/entityOperations/query"
DELETE_PATH = "/ngsi-ld/v1/entityOperations/delete"
ENTITIES_PATH = "/ngsi-ld/v1/entities"
TEMPORAL_QUERY_PATH = "/ngsi-ld/v1/temporal/entityOperations/query"
TEMPORAL_PATH = "/ngsi-ld/v1/temporal/entities"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
# Bytes per batch body at most, below CITYHUB_MAX_BODY as the importer's settings have it (a
# hub configured otherwise answers 413, which halves it): both ends hold a body parsed whole,
# and the hub writes it in slices of 1 MiB anyway (api/commit.py).
BODY_CAP = 8 * 1024 * 1024
MIN_BODY = 1024  # the least CITYHUB_MAX_BODY may be


def _locate(ids: Sequence[str], rejected: Sequence[str]) -> list[int]:
    """Positions of rejected ids in the chunk: a hub's 207 lists errors in item order, by id
    only, so of an id repeated in one chunk the first unplaced one is taken."""
    out: list[int] = []
    j = 0
    for eid in rejected:
        k = j
        while k < len(ids) and ids[k] != eid:
            k += 1
        if k == len(ids):  # not found in order (should not happen): take the first match
            k = ids.index(eid) if eid in ids else 0
        out.append(k)
        j = k + 1
    return out


class HttpSink(Writer):
    """POSTs chunks to a hub's entityOperations/upsert?options=update, so it notifies.

    Entities are checked locally first with the hub's own validation, and the stored ones
    read by id (entityOperations/query?local=true) to send only what changed. A chunk the hub then accepts
    whole answers 201 (the created ids) or 204, which gives exact created/updated counts. A
    207 lists only successes, so those count as updated.
    """

    def __init__(
        self,
        url: str,
        tenant: str,
        tm: TermMap,
        context: str | None,
        timeout: float = 120.0,
        replace: bool = False,
        max_body: int = BODY_CAP,
    ) -> None:
        self.budget = min(max_body, BODY_CAP)  # bytes per batch body; a 413 halves it
        try:
            self.base = hub_url(url).removesuffix("/ngsi-ld/v1")
        except ValueError as exc:
            raise ImportFailed(f"bad --url {url!r}: {exc}") from None
        self.endpoint = self.base + UPSERT_PATH
        self.tm = tm
        self.planner = Planner(tm, replace)
        headers = tenant_headers(tenant)
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        if context is not None:
            headers["Link"] = f"<{context}>; {LINK_REL}"
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def send(self, entities: list[Entity]) -> ChunkResult:
        """Validate locally, then write what the valid ones change."""
        result = ChunkResult()
        good: list[int] = []
        for i, entity in enumerate(entities):
            try:
                expand_entity(given(entity), self.tm)
            except NgsiLdError as err:
                result.errors.append((i, err.title, err.detail))
            else:
                good.append(i)
        if good:
            part = ChunkResult()
            self._write([entities[i] for i in good], part)
            result.created, result.updated = part.created, part.updated
            result.errors += [(good[k], t, d) for k, t, d in part.errors]
            result.unchanged = [good[k] for k in part.unchanged]
        result.errors.sort()
        return result

    def _post(self, path: str, entities: Any, params: dict[str, str] | None = None) -> Any:
        """POST JSON to the hub; ImportFailed when it cannot be reached."""
        return self._send(path, orjson.dumps(entities), params)

    def _send(self, path: str, body: bytes, params: dict[str, str] | None) -> httpx.Response:
        """POST a JSON body to the hub; ImportFailed when it cannot be reached."""
        try:
            return self.client.post(self.base + path, params=params, content=body)
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the hub at {self.base + path}: {exc}") from exc

    def _stored(self, ids: list[str]) -> dict[str, Doc]:
        """By id alone, so an entity stored under other types is compared too: with local=true
        a query needs no type or attrs (and asks no context source)."""
        selectors = [{"id": eid} for eid in ids]
        params = {"limit": str(READ_SLICE), "local": "true"}
        resp = self._post(QUERY_PATH, {"type": "Query", "entities": selectors}, params)
        if resp.status_code == 404:  # a tenant the hub does not have yet: nothing stored
            return {}
        if resp.status_code != 200:
            raise _refused("to read the stored entities", resp)
        out: dict[str, Doc] = {}
        for entity in _json(resp):
            try:
                doc = expand_entity({k: v for k, v in entity.items() if k != "@context"}, self.tm)
            except (NgsiLdError, AttributeError):
                continue  # not comparable: the file's entity is then sent whole
            out[doc["id"]] = doc
        return out

    def _history(self, spans: list[Span]) -> History:
        """POST temporal/entityOperations/query per span, paged on past each cut (206)."""
        out: History = {}
        for span in spans:
            start, end = span.start, next_instant(span.end)
            while start < end:
                body = {
                    "type": "Query",
                    "entities": [{"id": eid} for eid in span.ids],
                    "attrs": list(span.attrs),
                    "temporalQ": {
                        "timerel": "between",
                        "timeAt": format_ts(_utc(start)),
                        "endTimeAt": format_ts(_utc(end)),
                    },
                }
                resp = self._post(TEMPORAL_QUERY_PATH, body, {"limit": str(len(span.ids))})
                if resp.status_code not in (200, 206):
                    raise _refused("to read the stored history", resp)
                last = self._read_history(_json(resp), out)
                if resp.status_code == 200 or last is None or last < start:
                    break
                start = next_instant(last)  # the page holds every instance up to its cut
        return out

    def _read_history(self, entities: Any, out: History) -> float | None:
        """Add a page of temporal entities to out; the latest observedAt it holds."""
        last: float | None = None
        for entity in entities if isinstance(entities, list) else []:
            if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
                continue
            attrs = out.setdefault(entity["id"], {})
            for name, items in entity.items():
                if name in ENTITY_KEYS or not isinstance(items, list):
                    continue
                iri = expand_name(name, self.tm)
                for item in items:
                    if not isinstance(item, dict) or "deletedAt" in item:
                        continue  # a deletion's record holds no reading
                    try:
                        attrs.setdefault(iri, []).extend(
                            expand_attribute(iri, item, self.tm, history=True)
                        )
                        at = parse_ts(item["observedAt"]).timestamp()
                    except (NgsiLdError, KeyError):
                        continue  # not comparable: the file's row is then written
                    last = at if last is None else max(last, at)
        return last

    def _upsert(self, entities: list[Entity]) -> tuple[list[str], Rejects]:
        return self._batch(UPSERT_PATH, entities, {"options": "update"}, "batch")

    def _batch(
        self, path: str, entities: list[Entity], params: dict[str, str] | None, what: str
    ) -> tuple[list[str], Rejects]:
        """POST a batch operation in bodies of at most `budget` bytes: the ids created (a 207
        does not say which are new), and the rejections. A 413 halves the budget and sends
        the body again in smaller ones; an entity the hub refuses on its own as too large is
        rejected, and the others go on."""
        blobs = [orjson.dumps(e) for e in entities]
        created: list[str] = []
        rejects: Rejects = []
        start = 0
        while start < len(blobs):
            end, size = start + 1, len(blobs[start]) + 2
            while end < len(blobs) and size + len(blobs[end]) + 1 <= self.budget:
                size += len(blobs[end]) + 1
                end += 1
            body = b"[" + b",".join(blobs[start:end]) + b"]"
            resp = self._send(path, body, params)
            if resp.status_code == 413 and end - start > 1:
                self.budget = max(MIN_BODY, len(body) // 2)
                continue
            if resp.status_code == 413:
                rejects.append((start, "Request body too large", _too_large(len(body), resp)))
            elif resp.status_code == 201:
                created += [str(eid) for eid in _json(resp)]
            elif resp.status_code != 204:
                found = self._rejects(resp, entities[start:end], what)
                rejects += [(start + k, t, d) for k, t, d in found]
            start = end
        return created, rejects

    def _append(self, eid: str, body: Entity) -> tuple[str, str] | None:
        """POST temporal/entities/{id}/attrs; a refusal of this entity rejects its rows."""
        resp = self._post(f"{TEMPORAL_PATH}/{quote(eid, safe=':')}/attrs", body)
        if resp.status_code == 204:
            return None
        if resp.status_code in (400, 404, 409, 422):
            problem = _json(resp) if resp.content else {}
            if isinstance(problem, dict):
                return str(problem.get("title", "")), str(problem.get("detail", ""))
        raise _refused(f"the history of {eid}", resp)

    def _merge(self, entities: list[Entity]) -> Rejects:
        return self._batch(MERGE_PATH, entities, None, "deletions")[1]

    @staticmethod
    def _rejects(resp: httpx.Response, entities: list[Entity], what: str) -> Rejects:
        """The items a 207 rejected; any other answer stops the import."""
        if resp.status_code != 207:
            raise _refused(f"the {what}", resp)
        report = _json(resp)
        rejected = [e for e in report.get("errors", []) if isinstance(e, dict)]
        ids = [str(e.get("id", "")) for e in entities]
        places = _locate(ids, [str(e.get("entityId", "")) for e in rejected])
        out: Rejects = []
        for k, item in zip(places, rejected, strict=True):
            problem = item.get("error") or {}
            out.append((k, str(problem.get("title", "")), str(problem.get("detail", ""))))
        return out

    def _get(self, etype: str, params: dict[str, str]) -> httpx.Response | None:
        """GET /entities of a type (local only); None when the hub has no such tenant."""
        try:
            resp = self.client.get(
                self.base + ENTITIES_PATH, params={"type": etype, "local": "true", **params}
            )
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the hub at {self.base}: {exc}") from exc
        if resp.status_code == 404:  # a tenant the hub does not have: nothing stored
            return None
        if resp.status_code != 200:
            raise _refused(f"to list the stored {etype} entities", resp)
        return resp

    def count(self, etype: str, pattern: str | None) -> int:
        """NGSILD-Results-Count of an empty page."""
        params = {"count": "true", "limit": "0", **({"idPattern": pattern} if pattern else {})}
        resp = self._get(etype, params)
        return 0 if resp is None else int(resp.headers.get("NGSILD-Results-Count", "0"))

    def listing(self, etype: str, links: tuple[str, ...]) -> Iterator[tuple[str, Links]]:
        """GET /entities?type=...&pick=id,<links>, a page of READ_SLICE at a time."""
        names = {expand_name(name, self.tm): name for name in links}
        offset = 0
        while True:
            page = {"pick": ",".join(("id", *links)), "limit": str(READ_SLICE)}
            resp = self._get(etype, {**page, "offset": str(offset)})
            if resp is None:
                return
            entities = [e for e in _json(resp) if isinstance(e, dict)]
            for entity in entities:
                attrs = {
                    expand_name(k, self.tm): v if isinstance(v, list) else [v]
                    for k, v in entity.items()
                    if k not in ENTITY_KEYS
                }
                yield str(entity.get("id")), objects(attrs, names)
            if len(entities) < READ_SLICE:
                return
            offset += READ_SLICE

    def delete(self, ids: list[str]) -> Rejects:
        rejects: Rejects = []
        for start in range(0, len(ids), READ_SLICE):
            part = ids[start : start + READ_SLICE]
            resp = self._post(DELETE_PATH, part)
            if resp.status_code != 204:
                found = self._rejects(resp, [{"id": eid} for eid in part], "deletions")
                rejects += [(start + k, t, d) for k, t, d in found]
        return rejects

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _refused(what: str, resp: httpx.Response) -> ImportFailed:
    """The hub refused a request: the same import run again gets past a hub that was busy or
    failing (5xx), not one that refuses what the file sends (4xx)."""
    advice = ""
    if resp.status_code == 413:
        advice = " (over the hub's CITYHUB_MAX_BODY: a smaller --chunk-size sends less at once)"
    return ImportFailed(
        f"the hub refused {what}: HTTP {resp.status_code} {_problem(resp)}{advice}",
        again=resp.status_code >= 500,
    )


def _too_large(size: int, resp: httpx.Response) -> str:
    """Why one entity was rejected for its size alone."""
    return (
        f"the entity's JSON has {size - 2:,} bytes, more than the hub takes in one request "
        f"({_problem(resp)}); the hub's CITYHUB_MAX_BODY would have to be raised"
    )


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise ImportFailed(
            f"the hub answered HTTP {resp.status_code} with a non-JSON body"
        ) from exc


def _problem(resp: httpx.Response) -> str:
    """The title and detail of a ProblemDetails answer, or the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return f"{body.get('title', '')}: {body.get('detail', '')}".strip(": ")
    return str(body)[:200]
