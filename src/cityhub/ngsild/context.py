"""@context handling: compile each context once into a term map, expand and compact names."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from cityhub.ngsild.core_context import CORE_CONTEXT, CORE_CONTEXT_URL, CORE_CONTEXT_URLS
from cityhub.ngsild.errors import BadRequestData, InvalidRequest, LdContextNotAvailable

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_absolute_iri(value: str) -> bool:
    """True for anything with a URI scheme (NGSI-LD ids and expanded names)."""
    return bool(_ABSOLUTE.match(value))


@dataclass
class TermMap:
    """A compiled @context: term → IRI, with the inverse for compaction."""

    terms: dict[str, str] = field(default_factory=dict)
    vocab: str | None = None
    spec: Any = None
    _inverse: dict[str, str] = field(default_factory=dict)
    _prefixes: list[tuple[str, str]] = field(default_factory=list)

    def expand(self, term: str) -> str:
        """Expand an attribute name or type to its IRI."""
        iri = self.terms.get(term)
        if iri is not None:
            return iri
        if ":" in term:
            prefix, _, suffix = term.partition(":")
            base = self.terms.get(prefix)
            if base is not None and not suffix.startswith("//"):
                return base + suffix
            if is_absolute_iri(term):
                return term
        return (self.vocab or "") + term

    def compact(self, iri: str) -> str:
        """Compact an IRI to the shortest term this context gives it."""
        term = self._inverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab) and len(iri) > len(self.vocab):
            suffix = iri[len(self.vocab) :]
            if suffix not in self.terms:  # a term of that name means another IRI: no clash
                return suffix
        for base, prefix in self._prefixes:
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base) :]}"
        return iri

    def finish(self) -> TermMap:
        """Build the inverse map; shorter terms win so compaction is stable."""
        inverse: dict[str, str] = {}
        for term, iri in sorted(self.terms.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if term.startswith("@"):
                continue
            inverse.setdefault(iri, term)
        self._inverse = inverse
        prefixes = [(iri, t) for t, iri in self.terms.items() if iri.endswith(("/", "#")) and ":" not in t]
        self._prefixes = sorted(prefixes, key=lambda p: -len(p[0]))
        return self


def _resolve_value(raw: Any, local: dict[str, Any], active: dict[str, str]) -> str | None:
    """The IRI a context entry maps to, resolving compact IRIs against prefixes."""
    if isinstance(raw, dict):
        raw = raw.get("@id")
    if not isinstance(raw, str):
        return None
    if raw.startswith("@"):
        return raw
    if ":" in raw:
        prefix, _, suffix = raw.partition(":")
        if not suffix.startswith("//"):
            base = local.get(prefix)
            if isinstance(base, dict):
                base = base.get("@id")
            if isinstance(base, str) and base != raw:
                return (_resolve_value(base, local, active) or base) + suffix
            if prefix in active:
                return active[prefix] + suffix
        return raw
    return None


class ContextCache:
    """Remote @context documents, fetched once with a short timeout and kept."""

    def __init__(self, timeout: float = 3.0, ttl: float = 3600.0) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self._docs: dict[str, tuple[float, Any]] = {}
        self._hosted: dict[str, Any] = {}
        self._compiled: dict[bytes, TermMap] = {}
        self._lock = threading.Lock()
        self.core = self._compile_spec(None)

    # -- documents ---------------------------------------------------------------------------
    def host(self, url: str, document: Any) -> None:
        """Register a hosted context (from /jsonldContexts) under its URL."""
        with self._lock:
            self._hosted[url] = document
            self._compiled.clear()

    def forget(self, url: str) -> bool:
        """Drop a cached or hosted context; True when it was known."""
        with self._lock:
            known = self._docs.pop(url, None) is not None
            known = self._hosted.pop(url, None) is not None or known
            self._compiled.clear()
            return known

    def cached(self) -> dict[str, Any]:
        """The remote contexts fetched so far, by URL."""
        return {url: doc for url, (_, doc) in self._docs.items()}

    def hosted(self) -> dict[str, Any]:
        """The contexts added through the API, by URL."""
        return dict(self._hosted)

    def document(self, url: str) -> Any | None:
        """A known context document by URL, without fetching."""
        if url in CORE_CONTEXT_URLS:
            return CORE_CONTEXT
        if url in self._hosted:
            return self._hosted[url]
        entry = self._docs.get(url)
        if entry and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        return None

    async def prefetch(self, spec: Any) -> None:
        """Fetch every remote context a spec names (recursively) before compiling it."""
        pending = [u for u in _urls(spec) if self.document(u) is None]
        seen: set[str] = set()
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
            while pending:
                batch = [u for u in dict.fromkeys(pending) if u not in seen]
                seen.update(batch)
                docs = await asyncio.gather(*(self._fetch(client, u) for u in batch))
                pending = []
                for url, doc in zip(batch, docs, strict=True):
                    self._docs[url] = (time.monotonic(), doc)
                    pending += [u for u in _urls(doc.get("@context")) if self.document(u) is None]

    async def _fetch(self, client: httpx.AsyncClient, url: str) -> Any:
        if not url.startswith(("http://", "https://")):
            raise LdContextNotAvailable(f"cannot dereference @context {url!r}")
        try:
            resp = await client.get(
                url, headers={"Accept": "application/ld+json, application/json"}
            )
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(f"@context {url} is not reachable: {exc}") from exc
        if resp.status_code != 200:
            raise LdContextNotAvailable(f"@context {url} answered HTTP {resp.status_code}")
        try:
            doc = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {url} is not JSON") from exc
        if not isinstance(doc, dict) or "@context" not in doc:
            raise LdContextNotAvailable(f"@context {url} holds no @context member")
        return doc

    # -- compilation -------------------------------------------------------------------------
    def compile(self, spec: Any) -> TermMap:
        """The term map for a @context value (None means the core context alone)."""
        key = orjson.dumps(spec)
        tm = self._compiled.get(key)
        if tm is None:
            tm = self._compile_spec(spec)
            self._compiled[key] = tm
        return tm

    def _compile_spec(self, spec: Any) -> TermMap:
        terms: dict[str, str] = {}
        state: dict[str, Any] = {"vocab": None}
        if spec is not None:
            self._apply(spec, terms, state, depth=0)
        user_vocab = state["vocab"]
        self._apply(CORE_CONTEXT["@context"], terms, state, depth=0)
        tm = TermMap(
            terms=terms,
            vocab=user_vocab or state["vocab"],
            spec=spec,
        )
        return tm.finish()

    def _apply(self, spec: Any, terms: dict[str, str], state: dict[str, Any], depth: int) -> None:
        if depth > 16:
            raise BadRequestData("@context nests too deeply")
        if spec is None:
            return
        if isinstance(spec, list):
            for item in spec:
                self._apply(item, terms, state, depth + 1)
            return
        if isinstance(spec, str):
            if spec in CORE_CONTEXT_URLS:
                return  # the core context is always applied last, by _compile_spec
            doc = self.document(spec)
            if doc is None:
                raise LdContextNotAvailable(f"@context {spec} is not available")
            self._apply(doc.get("@context"), terms, state, depth + 1)
            return
        if not isinstance(spec, dict):
            raise BadRequestData("@context must be a URL, an object or a list of them")
        if isinstance(spec.get("@vocab"), str):
            state["vocab"] = spec["@vocab"]
        for term, raw in spec.items():
            if term.startswith("@"):
                continue
            iri = _resolve_value(raw, spec, terms)
            if iri is None and isinstance(raw, dict) and "@id" not in raw:
                iri = (state["vocab"] or "") + term if state["vocab"] else None
            if iri is not None and not iri.startswith("@"):
                terms[term] = iri
            elif iri in ("@id", "@type"):
                terms.setdefault(term, iri)


def _urls(spec: Any) -> Iterable[str]:
    """Every URL a @context value names directly."""
    if isinstance(spec, str):
        yield spec
    elif isinstance(spec, list):
        for item in spec:
            if isinstance(item, str):
                yield item


def parse_link_header(value: str | None) -> str | None:
    """The context URL of a Link header with rel=…jsonld#context, validated."""
    if not value:
        return None
    for part in value.split(","):
        segs = [s.strip() for s in part.split(";")]
        if not segs[0].startswith("<") or not segs[0].endswith(">"):
            raise BadRequestData(f"malformed Link header: {value!r}")
        rel = [s for s in segs[1:] if s.replace(" ", "").startswith("rel=")]
        if rel and ("json-ld#context" in rel[0] or "jsonld#context" in rel[0]):
            url = segs[0][1:-1].strip()
            if not is_absolute_iri(url):
                raise BadRequestData(f"Link header context is not an absolute URL: {url!r}")
            return url
    return None


def core_link() -> str:
    """The Link header naming the core context, for plain JSON responses."""
    return f'<{CORE_CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def link_for(url: str) -> str:
    """A Link header naming a context URL."""
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


__all__ = [
    "ContextCache",
    "InvalidRequest",
    "TermMap",
    "core_link",
    "is_absolute_iri",
    "link_for",
    "parse_link_header",
]
