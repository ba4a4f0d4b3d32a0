"""@context handling: compile each context once into a term map, expand and compact names."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from cityhub.jsonbytes import dumps_kept
from cityhub.masked_url import masked_url, masked_urls
from cityhub.ngsild.context_guard import (
    AddressGuard,
    AddressRefused,
    GuardedTransport,
    parse_networks,
)
from cityhub.ngsild.context_timeouts import TimedOut
from cityhub.ngsild.core_context import CORE_CONTEXT, CORE_CONTEXT_URL, CORE_CONTEXT_URLS
from cityhub.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    NgsiLdError,
    OperationNotSupported,
    shown,
)
from cityhub.ngsild.timeutil import now_iso
from cityhub.throttled_log import ThrottledLog

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A term is a prefix only when its IRI ends in one of RFC 3986's gen-delims (JSON-LD 1.1,
# "create term definition"): "location:x" must not become ".../locationx".
GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")


# Characters RFC 3987 allows nowhere in an IRI: whitespace, controls, <>"{}|\^`. A term that
# maps to an IRI holding one is refused: the stored name would not be an IRI, and the SQLite
# store splices names into JSON paths, where a '"' ends the step (a query then matched nothing).
_NOT_IN_IRI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f-\x9f]")


def check_term_iri(term: str, iri: str) -> str:
    """Refuse (400) a term definition whose IRI holds a character no IRI may hold."""
    bad = _NOT_IN_IRI.search(iri)
    if bad:
        raise BadRequestData(
            f"term {shown(term)} of the @context maps to {shown(iri)}, which is not an IRI: it holds "
            f"{bad.group()!r} (IRIs cannot hold whitespace, control characters or "
            '<>"{}|\\^`)'
        )
    return iri


def is_prefix_iri(iri: str) -> bool:
    """True for an IRI a term may lend to compact IRIs as their prefix."""
    return iri.endswith(GEN_DELIMS)


def is_absolute_iri(value: str) -> bool:
    """True for anything with a URI scheme (NGSI-LD ids and expanded names)."""
    return bool(_ABSOLUTE.match(value))


@dataclass
class TermMap:
    """A compiled @context: term → IRI, with the inverse for compaction."""

    terms: dict[str, str] = field(default_factory=dict)
    vocab: str | None = None
    spec: Any = None
    nulled: frozenset[str] = frozenset()  # terms the context maps to null: undefined
    # terms whose definition makes them prefixes (JSON-LD 1.1's prefix flag); None: every
    # term whose IRI ends in a gen-delim (a TermMap built by hand)
    prefix_terms: frozenset[str] | None = None
    # local ids of the contexts (fetched or hub-served) this map was compiled from: it goes
    # from the memo when one of them changes or goes
    sources: frozenset[str] = frozenset()
    checked: dict[str, str] = field(default_factory=dict)  # names validated and expanded
    compacted: dict[str, str] = field(default_factory=dict)  # IRI -> term, as compact() found
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
            if base is not None and self._is_prefix(prefix, base) and not suffix.startswith("//"):
                return base + suffix
            if is_absolute_iri(term):
                return term
        if term in self.nulled:
            raise BadRequestData(f"{shown(term)} is undefined: the @context maps it to null")
        return (self.vocab or "") + term

    def compact(self, iri: str) -> str:
        """Compact an IRI to the shortest term this context gives it (memoised)."""
        term = self.compacted.get(iri)
        if term is None:
            term = self._compact(iri)
            if len(self.compacted) < 10_000:
                self.compacted[iri] = term
        return term

    def _compact(self, iri: str) -> str:
        term = self._inverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab) and len(iri) > len(self.vocab):
            suffix = iri[len(self.vocab) :]
            if suffix not in self.terms:  # a term of that name means another IRI: no clash
                return suffix
        found = [
            f"{prefix}:{iri[len(base) :]}"
            for base, prefix in self._prefixes
            if iri.startswith(base) and len(iri) > len(base)
        ]  # JSON-LD's choice: the shortest compact IRI, then the first in order
        return min(found, key=lambda c: (len(c), c)) if found else iri

    def _is_prefix(self, term: str, iri: str) -> bool:
        if self.prefix_terms is not None:
            return term in self.prefix_terms
        return is_prefix_iri(iri) and ":" not in term

    def finish(self) -> TermMap:
        """Build the inverse map; shorter terms win so compaction is stable."""
        inverse: dict[str, str] = {}
        for term, iri in sorted(self.terms.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if term.startswith("@"):
                continue
            inverse.setdefault(iri, term)
        self._inverse = inverse
        prefixes = [(iri, t) for t, iri in self.terms.items() if self._is_prefix(t, iri)]
        self._prefixes = sorted(prefixes, key=lambda p: -len(p[0]))
        return self


def _resolve_value(
    raw: Any, local: dict[str, Any], active: dict[str, str], vocab: str | None, depth: int = 0
) -> str | None:
    """The IRI a context entry maps to (JSON-LD 1.1, create term definition): compact IRIs
    through prefixes, another term's IRI, or a name relative to @vocab."""
    if isinstance(raw, dict):
        raw = raw.get("@id")
    if not isinstance(raw, str) or depth > 16:  # deeper: terms defined through each other
        return None
    if raw.startswith("@"):
        return raw
    if ":" not in raw:  # a term ("velocity": "speed"), else relative to @vocab
        if raw in local and local[raw] is not None:
            return _resolve_value(local[raw], local, active, vocab, depth + 1)
        if raw in active:
            return active[raw]
        return vocab + raw if vocab else None
    prefix, _, suffix = raw.partition(":")
    if not suffix.startswith("//"):
        base = local.get(prefix)
        if isinstance(base, dict):
            base = base.get("@id")
        if isinstance(base, str) and base != raw:
            base = _resolve_value(base, local, active, vocab, depth + 1) or base
            return base + suffix if is_prefix_iri(base) else raw
        base = active.get(prefix)
        if base is not None and is_prefix_iri(base):
            return base + suffix
    return raw


# -- the @contexts the hub knows (5.13) ---------------------------------------------------------

HOSTED = "Hosted"
CACHED = "Cached"
IMPLICIT = "ImplicitlyCreated"
KINDS = (HOSTED, CACHED, IMPLICIT)
# A deleted Hosted or ImplicitlyCreated context that a stored subscription still names: gone
# from the API, kept (and stored) only so that subscription compiles after a restart.
RETIRED = "Retired"
# Where hosted and implicitly created contexts are served; their URL is this path on the hub.
CONTEXTS_PATH = "/ngsi-ld/v1/jsonldContexts/"
CORE_LOCAL_ID = "ngsi-ld-core-context"
MAX_CONTEXT_BYTES = 4 * 1024 * 1024
_COMPILED_MAX = 4096  # distinct compiled @contexts kept before the memo starts over
_COMPILED_MAX_TERMS = 1_000_000  # terms held by the memo before it starts over (its memory)
MAX_CONTEXT_DOCUMENTS = 200  # documents one @context may apply, counting repeats (compile time)
MAX_CONTEXT_URLS = 100  # distinct remote URLs one @context may name, directly or not
MAX_CACHED = 1000  # fetched @contexts kept in memory; beyond, one goes (its stored copy stays)
# Stored copies of fetched @contexts, which stand in while their site is down (decision 002,
# addendum on others' fetched contexts): at most this many and this many bytes. Beyond, copies
# not used for IN_USE seconds go, those used by one request first, then the least recently
# used; one used within IN_USE is never dropped for another (the newcomer is not stored).
MAX_COPIES = 10_000
MAX_COPY_BYTES = 64 * 1024 * 1024
IN_USE = 7 * 86_400.0
# ImplicitlyCreated @contexts that no stored subscription names, kept for the Link of answers
# to inline @contexts; beyond that the least recently used goes (a named one never does)
MAX_IMPLICIT = 1000
# Hosted @contexts (POST /jsonldContexts) live in memory and on disk until deleted: at most
# this many, and this many bytes of their JSON, before a new one is refused (422). Unbounded,
# one 40 MB context held every request for 18 s and grew the hub by 400 MB for good.
MAX_HOSTED = 10_000
MAX_HOSTED_BYTES = 32 * 1024 * 1024  # as MAX_MEMORY_BYTES; parsed and compiled, ~7x in RSS
# JSON bytes of those, and apart of the fetched ones held in memory, at most: beyond, the
# least recently used go as above (the one just made or fetched stays, whatever its size).
# A count alone let 120 inline @contexts of 1.5 MB grow the hub by 600 MB; parsed and
# compiled, a document takes some three times its JSON.
MAX_MEMORY_BYTES = 32 * 1024 * 1024

log = logging.getLogger("cityhub.context")
_UNDELETED = "could not delete the stored copy of @context %s"


@dataclass(slots=True)
class ContextEntry:
    """One @context the hub knows: its origin, its document and how often requests used it."""

    url: str  # the remote URL (Cached), or the URL it is stored under (Hosted, Implicit)
    local_id: str
    kind: str
    document: Any
    created_at: str
    fetched: float = 0.0  # time.monotonic() of the download (Cached only)
    hits: int = 0
    last_usage: str | None = None
    used: float = 0.0  # time.monotonic() of the last use or download (picks what to evict)
    stored: bool = False  # in the store's contexts table (an answer's implicit one is not)
    uses: int = 0  # requests and hub tasks that used it (hits count clients' requests only)
    size: int = 0  # bytes of its stored copy (a fetched one)
    held: int = 0  # bytes of its document's JSON in memory (a fetched or implicit one)
    saved_hits: int = 0  # hits as last saved to the store (api/context_usage.py)

    @property
    def local(self) -> bool:
        """True when the hub itself is the source (Hosted or ImplicitlyCreated)."""
        return self.kind != CACHED

    @property
    def url_path(self) -> str:
        """The hub path this context is served at (by its local id)."""
        return local_path(self.local_id)

    def touch(self) -> None:
        """Count one use by a request."""
        self.hits += 1
        self.last_usage = now_iso()
        self.used = time.monotonic()

    def use(self, now: float) -> None:
        """Count one use by anything (a request, a device message, a subscription)."""
        self.uses += 1
        self.used = now

    def details(self, url: str) -> dict[str, Any]:
        """The metadata the API shows for details=true, under the given absolute URL."""
        out: dict[str, Any] = {
            "URL": url,
            "localId": self.local_id,
            "kind": self.kind,
            "createdAt": self.created_at,
            "numberOfHits": self.hits,
        }
        if self.last_usage is not None:
            out["lastUsage"] = self.last_usage
        return out


def _keep_order(entry: ContextEntry) -> tuple[bool, float]:
    """Which fetched context goes first: used by one request only, then least recently used
    (a flood of new URLs, each used once, passes the ones in steady use by)."""
    return (entry.uses > 1, entry.used)


def _cached_id(url: str) -> str:
    """The local id of a fetched context: derived from its URL, so stable across restarts."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, url))


def _key(url: str) -> str:
    """The URL a remote context is fetched and cached by: without its fragment, which HTTP
    never sends (JSON-LD dereferences the document), so #a and #b are one context."""
    return url.split("#", 1)[0]


def _prefix_flag(term: str, raw: Any, iri: str) -> bool:
    """JSON-LD 1.1's prefix flag: a simple definition (a string) of a term without ':' or '/'
    whose IRI ends in a gen-delim, or an expanded one that says "@prefix": true."""
    if isinstance(raw, dict):
        return raw.get("@prefix") is True and ":" not in term
    return is_prefix_iri(iri) and ":" not in term and "/" not in term


def context_only(document: Any) -> dict[str, Any]:
    """What the hub keeps of a fetched context document: its @context member, nothing else."""
    return {"@context": document.get("@context") if isinstance(document, dict) else None}


def _local_id(url: str) -> str:
    """The local id a hub-served context's URL ends in."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or url


def local_path(local_id: str) -> str:
    """The hub path a hosted or implicitly created @context is served at."""
    return CONTEXTS_PATH + local_id


def check_context(value: Any, depth: int = 0) -> None:
    """Raise BadRequestData unless value is a JSON-LD @context: an IRI, an object or a list."""
    if depth > 16:
        raise BadRequestData("@context nests too deeply")
    if isinstance(value, str):
        if not is_absolute_iri(value):
            raise BadRequestData(f"@context reference {shown(value)} is not an absolute IRI")
        return
    if isinstance(value, list):
        for item in value:
            if item is None:
                continue
            if not isinstance(item, str | dict):
                raise BadRequestData("a @context array may hold only IRIs and objects")
            check_context(item, depth + 1)
        return
    if not isinstance(value, dict):
        raise BadRequestData("@context must be an IRI, an object or an array of them")
    for term, definition in value.items():
        if term.startswith("@"):
            if term == "@vocab" and not (
                definition is None or (isinstance(definition, str) and is_absolute_iri(definition))
            ):  # relative to the document's base, which an NGSI-LD payload does not have
                raise BadRequestData(f"@vocab must be an absolute IRI, not {shown(definition)}")
            continue
        if definition is None or isinstance(definition, str):
            continue
        if not isinstance(definition, dict):
            raise BadRequestData(f"term {shown(term)} must map to an IRI, an object or null")
        iri = definition.get("@id")
        if iri is not None and not isinstance(iri, str):
            raise BadRequestData(f"the @id of term {shown(term)} must be a string")
        if "@context" in definition:
            check_context(definition["@context"], depth + 1)


class ContextCache:
    """Every @context the hub knows: the bundled core, hosted, implicitly created and cached.

    Remote documents are fetched once (concurrent requests share one download), with a short
    timeout and a size cap, and kept for ``ttl`` seconds; a failed refresh keeps serving the
    stale copy. Each @context counts the requests that used it.
    """

    def __init__(
        self,
        timeout: float = 3.0,
        ttl: float = 3600.0,
        max_bytes: int = MAX_CONTEXT_BYTES,
        mirrors: dict[str, str] | None = None,
        on_fetch: Callable[[ContextEntry], None] | None = None,
        on_evict: Callable[[ContextEntry], None] | None = None,
        max_cached: int = MAX_CACHED,
        on_keep: Callable[[ContextEntry], None] | None = None,
        max_implicit: int = MAX_IMPLICIT,
        private_networks: Iterable[str] | None = None,
        on_recall: Callable[[str], Any] | None = None,
        max_copies: int = MAX_COPIES,
        max_copy_bytes: int = MAX_COPY_BYTES,
        max_memory_bytes: int = MAX_MEMORY_BYTES,
    ) -> None:
        self.timeout = timeout
        # None: any address may be fetched from (the command line's own fetches); else only
        # public ones and those of these networks (the hub, for its clients: decision 030)
        self.guard = (
            None if private_networks is None else AddressGuard(parse_networks(private_networks))
        )
        if self.guard is not None and self.guard.open:
            self.guard = None
        if self.guard is not None and _proxy_set():  # the hub used it before decision 030
            log.warning(
                "HTTP(S)_PROXY is set, but remote @contexts are fetched directly while "
                "CITYHUB_CONTEXT_PRIVATE_NETWORKS checks addresses: set it to "
                '["0.0.0.0/0", "::/0"] to fetch through the proxy, or mirror the contexts'
            )
        # told of every download that brought a new or changed document, so it can be stored
        # and used after a restart while the remote site is down; of every stored context
        # dropped (a fetched one beyond max_cached, an implicitly created one beyond
        # max_implicit, a retired one nothing names), so its stored copy goes too; and of an
        # implicitly created context a stored subscription names, which must now be stored
        self.on_fetch = on_fetch
        self.on_evict = on_evict
        self.on_keep = on_keep
        # reads the stored copy of a fetched context by URL (None: there is none), for one that
        # left memory and whose site is down
        self.on_recall = on_recall
        self.max_cached = max_cached
        self.max_copies = max_copies
        self.max_copy_bytes = max_copy_bytes
        self.max_implicit = max_implicit
        self.max_memory_bytes = max_memory_bytes
        self.mirrors = dict(mirrors or {})  # remote URL -> local file or other URL (offline sites)
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._remote: dict[str, ContextEntry] = {}  # Cached and in memory, by URL
        # Cached ones with a stored copy, in memory or not (then their document is None)
        self._copies: dict[str, ContextEntry] = {}
        self._copy_bytes = 0
        self._remote_ids: dict[str, str] = {}  # Cached (in memory or stored): local id -> URL
        self._local: dict[str, ContextEntry] = {}  # Hosted and ImplicitlyCreated, by local id
        self._retired: dict[str, ContextEntry] = {}  # RETIRED, by local id
        # which stored (csource) subscriptions name which hub-served contexts (local ids)
        self._named: dict[str, set[Hashable]] = {}
        self._names_of: dict[Hashable, frozenset[str]] = {}
        self._evictable: dict[str, ContextEntry] = {}  # ImplicitlyCreated ones nothing names
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._timed_out = TimedOut()  # never-fetched URLs that did not answer (decision 084)
        self._compiled: dict[bytes, TermMap] = {}
        self._compiled_terms = 0  # terms held by the TermMaps in _compiled
        self._compiled_sources: set[str] = set()  # every TermMap.sources in _compiled
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._failures = ThrottledLog(log)  # why downloads failed; the answers do not say
        self.core_entry = ContextEntry(
            url=CORE_CONTEXT_URL,
            local_id=CORE_LOCAL_ID,
            kind=CACHED,
            document=CORE_CONTEXT,
            created_at=now_iso(),
        )
        self.core = self._compile_spec(None)

    # -- registry ----------------------------------------------------------------------------
    def host(
        self, url: str, document: Any, kind: str = HOSTED, created_at: str | None = None
    ) -> ContextEntry:
        """Register a hub-served context (Hosted or ImplicitlyCreated) stored at url."""
        entry = ContextEntry(
            url=url,
            local_id=_local_id(url),
            kind=kind if kind in (HOSTED, IMPLICIT) else HOSTED,
            document=document,
            created_at=created_at or now_iso(),
        )
        if entry.kind == HOSTED:  # counted against MAX_HOSTED_BYTES (new_hosted)
            entry.held = len(orjson.dumps(document))
        with self._lock:
            old = self._local.get(entry.local_id)
            self._local[entry.local_id] = entry
            self._retired.pop(entry.local_id, None)  # the same content made again
            self._sync(entry.local_id)
            if old is not None and old.document != document:
                self._forget_compiled(entry.local_id)
        if entry.kind == HOSTED:  # what it includes from this hub must outlive the bound
            self.name((HOSTED, entry.local_id), _included(document, entry.local_id))
        return entry

    def load(self, rows: Iterable[tuple[str, Any, str, str]]) -> None:
        """Register the stored contexts, as (url, document, kind, createdAt) rows. A stored
        copy of a fetched context counts as expired: the first request that uses it downloads
        it again, and keeps the copy if the download fails."""
        copies: dict[str, tuple[str, Any, str]] = {}
        for url, document, kind, created_at in rows:
            if kind == CACHED:
                copies[_key(url)] = (url, document, created_at)  # rows come oldest first
                if url != _key(url):  # stored under a URL with a fragment, before
                    self._tell(self.on_evict, ContextEntry(url, "", CACHED, None, ""), _UNDELETED)
            elif kind == RETIRED:
                entry = ContextEntry(url, _local_id(url), RETIRED, document, created_at)
                entry.stored = True
                self._retired[entry.local_id] = entry
                self.name((HOSTED, entry.local_id), _included(document, entry.local_id))
            else:
                self.host(url, document, kind, created_at).stored = True
        self._load_copies(copies)

    def _load_copies(self, copies: dict[str, tuple[str, Any, str]]) -> None:
        """Register the stored copies of fetched contexts: all as copies (counted as used
        now, so a restart costs none its standing), the newest max_cached also in memory."""
        now = time.monotonic()
        in_memory = set(list(copies)[-self.max_cached :]) if self.max_cached > 0 else set()
        for url, (stored_url, document, created_at) in copies.items():
            doc = context_only(document)  # copies stored whole before lose the rest
            entry = ContextEntry(url, _cached_id(url), CACHED, doc, created_at, fetched=-math.inf)
            entry.used, entry.stored, entry.size = now, True, len(dumps_kept(doc))
            self._copies[url] = entry
            self._copy_bytes += entry.size
            self._remote_ids[entry.local_id] = url
            if url in in_memory:
                self._remote[url] = entry
                entry.held = entry.size
            if stored_url != url:  # its row went (load): stored by its URL now
                self._tell(self.on_fetch, entry, "could not store the copy of @context %s")
            if url not in in_memory:
                entry.document = None

    def _cache(self, url: str, document: Any, created_at: str, fetched: float) -> ContextEntry:
        """Hold a downloaded (or recalled) context in memory by its URL. Beyond max_cached
        one leaves memory (_keep_order); its stored copy stays, to be recalled."""
        victim = None
        with self._lock:
            entry = self._remote.get(url) or self._copies.get(url)
            if entry is None:
                entry = ContextEntry(url, _cached_id(url), CACHED, document, created_at, fetched)
                entry.used = max(fetched, 0.0)
            else:
                if entry.document is not None and entry.document != document:
                    self._forget_compiled(entry.local_id)
                entry.document, entry.fetched = document, fetched
            entry.held = len(dumps_kept(document))
            if url not in self._remote and len(self._remote) >= self.max_cached:
                self._uncache(min(self._remote.values(), key=_keep_order))
            self._remote[url] = entry
            self._remote_ids[entry.local_id] = url
            held = sum(e.held for e in self._remote.values())
            if held > self.max_memory_bytes:
                for victim in sorted(self._remote.values(), key=_keep_order):
                    if held <= self.max_memory_bytes:
                        break
                    if victim is not entry:
                        held -= victim.held
                        self._uncache(victim)
        return entry

    def _uncache(self, victim: ContextEntry) -> None:
        """A fetched context leaves memory; its stored copy stays, to be recalled (under the
        lock)."""
        del self._remote[victim.url]
        self._forget_compiled(victim.local_id)
        if self._copies.get(victim.url) is victim:
            victim.document = None  # the stored copy stands for it
        else:
            self._remote_ids.pop(victim.local_id, None)
        victim.held = 0

    def _recall(self, url: str) -> ContextEntry | None:
        """Bring a stored copy that left memory back into it (None: there is none)."""
        entry = self._copies.get(url)
        if entry is None or self.on_recall is None:
            return None
        try:
            document = self.on_recall(url)
        except Exception:
            log.exception("could not read the stored copy of @context %s", masked_url(url))
            return None
        if document is None:  # gone from the store meanwhile
            with self._lock:
                self._drop_copy(entry)
            return None
        return self._cache(url, context_only(document), entry.created_at, -math.inf)

    def _drop_copy(self, entry: ContextEntry) -> None:
        """Forget that a fetched context has a stored copy (under the lock)."""
        if self._copies.get(entry.url) is entry:
            del self._copies[entry.url]
            self._copy_bytes -= entry.size
        entry.stored, entry.size = False, 0
        if entry.url not in self._remote:
            self._remote_ids.pop(entry.local_id, None)

    def _make_room(self, entry: ContextEntry, size: int) -> bool:
        """Drop stored copies until entry's (of size bytes) fits the bounds; False, dropping
        none, when only copies used within IN_USE could make room."""
        now = time.monotonic()
        gone: list[ContextEntry] = []
        with self._lock:
            count = len(self._copies) + (0 if entry.url in self._copies else 1)
            total = self._copy_bytes - entry.size + size
            if count <= self.max_copies and total <= self.max_copy_bytes:
                return True
            idle = [e for e in self._copies.values() if e is not entry and now - e.used >= IN_USE]
            for victim in sorted(idle, key=_keep_order):
                if count <= self.max_copies and total <= self.max_copy_bytes:
                    break
                gone.append(victim)
                count, total = count - 1, total - victim.size
            if count > self.max_copies or total > self.max_copy_bytes:
                return False
            for victim in gone:
                self._drop_copy(victim)
        for victim in gone:
            self._tell(self.on_evict, victim, _UNDELETED)
        return True

    def _fetched(self, entry: ContextEntry) -> None:
        """Store a new or changed download (on_fetch), room permitting (_make_room)."""
        if self.on_fetch is None:
            return
        size = len(dumps_kept(entry.document))
        if not self._make_room(entry, size):
            self._failures.warning(
                "@context %s is not stored: the stored copies (%d, %d bytes) were all used "
                "within the last %d days",
                masked_url(entry.url),
                len(self._copies),
                self._copy_bytes,
                IN_USE // 86_400,
            )
            return
        try:
            self.on_fetch(entry)
        except Exception:
            log.exception("could not store the copy of @context %s", masked_url(entry.url))
            return
        with self._lock:
            self._copy_bytes += size - entry.size
            entry.stored, entry.size = True, size
            self._copies[entry.url] = entry
            self._remote_ids[entry.local_id] = entry.url

    @staticmethod
    def _tell(
        hook: Callable[[ContextEntry], None] | None, entry: ContextEntry, failure: str
    ) -> None:
        """Call a storage hook; a failure there costs only the stored copy, never a request."""
        if hook is None:
            return
        try:
            hook(entry)
        except Exception:
            log.exception(failure, masked_url(entry.url))

    def new_hosted(self, document: Any) -> ContextEntry:
        """Host a new context under a fresh local id, within MAX_HOSTED and MAX_HOSTED_BYTES
        (OperationNotSupported past either: a client must delete one first)."""
        size = len(orjson.dumps(document))
        with self._lock:
            hosted = [e for e in self._local.values() if e.kind == HOSTED]
        held = sum(e.held for e in hosted)
        if len(hosted) >= MAX_HOSTED or held + size > MAX_HOSTED_BYTES:
            raise OperationNotSupported(
                f"the hub hosts {len(hosted):,} @contexts of {held:,} bytes, and hosts at most "
                f"{MAX_HOSTED:,} of {MAX_HOSTED_BYTES:,} bytes in all; delete one first"
            )
        return self.host(local_path(uuid.uuid4().hex), document, HOSTED)

    def implicit(self, spec: Any) -> ContextEntry:
        """The ImplicitlyCreated context for an inline or compound @context (made on first use).

        Equal @contexts share one entry, named by a hash of their content. It lives in memory
        only (``stored`` False) until a stored subscription names it or a caller stores it
        (``keep``); beyond ``max_implicit`` of them that nothing names, the least recently used
        goes, so answers to ever new inline @contexts leave a bounded trail.
        """
        key = implicit_id(spec)
        entry = self._local.get(key)
        if entry is not None:
            entry.used = time.monotonic()
            return entry
        entry = self.host(local_path(key), {"@context": spec}, IMPLICIT)
        entry.used, entry.held = time.monotonic(), len(dumps_kept(entry.document))
        if key in self._named:  # a subscription already names it (it was retired, or evicted)
            self.keep(entry)
        self._trim()
        return entry

    def keep(self, entry: ContextEntry) -> None:
        """Store a context that must survive restarts, unless it is stored already (a
        failure is logged: it costs the copy, never a request)."""
        if entry.stored or self.on_keep is None:
            return
        try:
            self.on_keep(entry)
        except Exception:
            log.exception("could not store @context %s", masked_url(entry.url))
        else:
            entry.stored = True

    def name(self, owner: Hashable, local_ids: Iterable[str]) -> None:
        """Record the hub-served contexts a stored (csource) subscription names, in place of
        those it named before (none: it is deleted).

        A named context is never evicted, and a named ImplicitlyCreated one is stored. One that
        nothing names any more can go: an ImplicitlyCreated one joins those evicted least
        recently used first, a retired one goes now with its stored copy.
        """
        new = frozenset(local_ids)
        old = self._names_of.pop(owner, frozenset())
        if new:
            self._names_of[owner] = new
        if new == old:
            return
        gone: list[ContextEntry] = []
        with self._lock:
            for lid in new - old:
                self._named.setdefault(lid, set()).add(owner)
                self._sync(lid)
            for lid in old - new:
                owners = self._named.get(lid)
                if owners is not None:
                    owners.discard(owner)
                    if not owners:
                        del self._named[lid]
                        retired = self._retired.pop(lid, None)
                        if retired is not None:
                            gone.append(retired)
                self._sync(lid)
        for lid in new - old:
            entry = self._local.get(lid)
            if entry is not None and entry.kind == IMPLICIT:
                self.keep(entry)
        for entry in gone:
            self._tell(self.on_evict, entry, _UNDELETED)
            self.name((HOSTED, entry.local_id), ())  # nor what it included
        self._trim()

    def named(self, local_id: str) -> bool:
        """Whether a stored subscription names the hub-served context of this local id."""
        return local_id in self._named

    def includers(self, local_id: str) -> list[str]:
        """The local ids of the hosted contexts the API serves that include this one by URL:
        deleting it would make each of them, and every request naming them, a 503."""
        return sorted(lid for lid in self._includers(local_id) if lid in self._local)

    def included_by_retired(self, local_id: str) -> bool:
        """Whether a retired context (one a stored subscription still compiles) includes this
        one: deleted, it must be retired too, or that subscription waits after a restart."""
        return any(lid in self._retired for lid in self._includers(local_id))

    def _includers(self, local_id: str) -> list[str]:
        owners = self._named.get(local_id, ())
        hosted = (o for o in owners if isinstance(o, tuple) and len(o) == 2)
        return [lid for kind, lid in hosted if kind == HOSTED]

    def settle(self) -> None:
        """After every stored subscription's names are recorded (start-up): retired contexts
        that nothing names go, and ImplicitlyCreated ones beyond the bound."""
        with self._lock:
            gone = [e for lid, e in self._retired.items() if lid not in self._named]
            for entry in gone:
                del self._retired[entry.local_id]
        for entry in gone:
            self._tell(self.on_evict, entry, _UNDELETED)
        self._trim()

    def _sync(self, local_id: str) -> None:
        """Keep _evictable right for one local id (under the lock)."""
        entry = self._local.get(local_id)
        if entry is not None and entry.kind == IMPLICIT and local_id not in self._named:
            self._evictable[local_id] = entry
        else:
            self._evictable.pop(local_id, None)

    def _trim(self) -> None:
        """Drop the least recently used unnamed ImplicitlyCreated contexts beyond the bounds
        (max_implicit of them, max_memory_bytes of their JSON); the most recent one stays."""
        held = sum(e.held for e in self._evictable.values())
        if len(self._evictable) <= self.max_implicit and held <= self.max_memory_bytes:
            return
        with self._lock:
            excess = len(self._evictable) - self.max_implicit
            entries = self._evictable.values()
            if excess == 1 and held <= self.max_memory_bytes:  # one new context past the bound
                victims = [min(entries, key=lambda e: e.used)]
            else:
                victims = []
                count = len(self._evictable)
                for entry in sorted(entries, key=lambda e: e.used)[:-1]:
                    if count <= self.max_implicit and held <= self.max_memory_bytes:
                        break
                    victims.append(entry)
                    count, held = count - 1, held - entry.held
            for entry in victims:
                del self._local[entry.local_id]
                del self._evictable[entry.local_id]
                self._forget_compiled(entry.local_id)
        for entry in victims:
            if entry.stored:
                self._tell(self.on_evict, entry, _UNDELETED)

    def usage(self) -> list[tuple[ContextEntry, int, str | None]]:
        """(entry, numberOfHits, lastUsage) of each context used since last saved that a
        restart keeps (the core, and those stored: the usage of one evicted goes with it)."""
        return [
            (e, e.hits, e.last_usage)
            for e in self.entries()
            if e.hits != e.saved_hits and (e.stored or e is self.core_entry)
        ]

    def restore_usage(self, saved: dict[str, tuple[int, str | None]]) -> None:
        """Take back the numberOfHits and lastUsage saved before a restart, by URL."""
        for entry in self.entries():
            if entry.url in saved:
                entry.hits, entry.last_usage = saved[entry.url]
                entry.saved_hits = entry.hits

    def entries(self) -> list[ContextEntry]:
        """Every known context: the core first, then hub-served ones, then cached ones (those
        in memory, then those only stored)."""
        stored_only = [e for url, e in self._copies.items() if url not in self._remote]
        return [self.core_entry, *self._local.values(), *self._remote.values(), *stored_only]

    def find(self, ident: str) -> ContextEntry | None:
        """A context by local id, by URL, or by any absolute URL of the hub's own path; a
        fetched one that left memory is read back from its stored copy."""
        if is_absolute_iri(ident):
            ident = _key(ident)
        if ident in CORE_CONTEXT_URLS or ident == CORE_LOCAL_ID:
            return self.core_entry
        entry = self._local.get(ident) or self._own(ident)
        if entry is not None:
            return entry
        url = self._remote_ids.get(ident, ident)
        return self._remote.get(url) or self._recall(url)

    def retire(self, entry: ContextEntry) -> None:
        """Delete a hub-served context that stored subscriptions still name: requests no
        longer find it, compile_kept still does."""
        self.remove(entry, unname=False)  # kept to compile: so is what it includes
        entry.kind = RETIRED
        entry.stored = True  # the caller stored it as retired
        self._retired[entry.local_id] = entry

    def compile_kept(self, spec: Any) -> TermMap:
        """compile() for a stored subscription, which keeps the contexts it was made with even
        when they have been deleted since."""
        if not self._retired:
            return self.compile(spec, bounded=False)
        return self._compile_spec(spec, kept=True)  # not memoised: once per subscription load

    def remove(self, entry: ContextEntry, *, unname: bool = True) -> None:
        """Forget a context (a cached one is fetched again when next used)."""
        if unname and entry.kind in (HOSTED, RETIRED):
            self.name((HOSTED, entry.local_id), ())
        with self._lock:
            if entry.local:
                if self._local.get(entry.local_id) is entry:
                    del self._local[entry.local_id]
                    self._sync(entry.local_id)
            else:
                if self._remote.get(entry.url) is entry:
                    del self._remote[entry.url]
                self._drop_copy(entry)  # the caller deletes the stored copy
                self._remote_ids.pop(entry.local_id, None)
            self._forget_compiled(entry.local_id)

    def _own(self, url: str) -> ContextEntry | None:
        """A hub-served context named by an absolute URL whose path ends in its local path.

        The host part is not compared, so the hub resolves its own contexts without a request
        to itself, whatever name (proxy, container, localhost) the client reached it by.
        """
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 host: no URL of the hub's
            return None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        _head, sep, local_id = unquote(parts.path).rpartition(CONTEXTS_PATH)
        if not sep:
            return None
        return self._local.get(local_id)

    def _entry(self, url: str) -> ContextEntry | None:
        url = _key(url)
        if url in CORE_CONTEXT_URLS:
            return self.core_entry
        return self._remote.get(url) or self._own(url)

    def document(self, url: str) -> Any | None:
        """A known context document by URL, without fetching."""
        entry = self._entry(url)
        return entry.document if entry is not None else None

    def _stale(self, url: str) -> bool:
        """Whether a URL (a _key) must be fetched before it is used."""
        if url in CORE_CONTEXT_URLS or self._kept(url) is not None:
            return False
        entry = self._remote.get(url)
        if entry is not None:
            return time.monotonic() - entry.fetched >= self.ttl
        return self._own(url) is None

    # -- fetching ----------------------------------------------------------------------------
    async def prefetch(self, spec: Any, *, count: bool = True) -> None:
        """Fetch every remote context a spec names (recursively) before compiling it.

        With ``count``, every context the spec names (directly or through another) counts one
        use. Raises LdContextNotAvailable when one cannot be had, and BadRequestData for a
        value that is no @context (a relative reference was a 503, a term mapped to 5 was
        ignored).
        """
        if spec is not None:
            check_context(spec)
        pending = [_key(u) for u in _urls(spec)]
        seen: set[str] = set()
        while pending:
            batch = [u for u in dict.fromkeys(pending) if u not in seen]
            seen.update(batch)
            if len(seen) > MAX_CONTEXT_URLS:
                raise BadRequestData(
                    f"@context names more than {MAX_CONTEXT_URLS} context URLs, directly or "
                    "through the contexts it names"
                )
            stale = [u for u in batch if self._stale(u)]
            if stale:
                results = await asyncio.gather(
                    *(self._load(u) for u in stale), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            pending = []
            for url in batch:
                entry = self._entry(url) or self._recall(url)  # others' may have pushed it out
                doc = entry.document if entry is not None else None
                if isinstance(doc, dict):
                    pending += (_key(u) for u in _urls(doc.get("@context")))
        now = time.monotonic()
        for url in seen:
            entry = self._entry(url)
            if entry is not None:
                entry.use(now)  # what is in use is kept before what is not (_keep_order)
                if count:
                    entry.touch()

    async def reload(self, entry: ContextEntry) -> None:
        """Download a cached context again; on failure the old copy stays (and this raises)."""
        if entry is self.core_entry:
            return  # bundled: nothing to download
        doc = await self._fetch(entry.url)
        self._timed_out.forget(entry.url)
        with self._lock:
            entry.document = doc
            entry.fetched = time.monotonic()
            entry.created_at = now_iso()
            entry.hits = 0
            entry.last_usage = None
            self._remote[entry.url] = entry
            self._remote_ids[entry.local_id] = entry.url
            self._forget_compiled(entry.local_id)
        self._fetched(entry)

    async def _load(self, url: str) -> None:
        """Fetch url into the cache; concurrent requests for one URL share one download."""
        future = self._inflight.get(url)
        if future is None:
            self._timed_out.check(url)
            future = asyncio.ensure_future(self._download(url))
            self._inflight[url] = future
            future.add_done_callback(lambda f: self._settled(url, f))
        await asyncio.shield(future)

    def _settled(self, url: str, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(url) is future:
            del self._inflight[url]
        if not future.cancelled():
            future.exception()  # retrieved here, so an abandoned failure is not reported twice

    async def _download(self, url: str) -> None:
        old = self._remote.get(url)
        try:
            doc = await self._fetch(url)
        except LdContextNotAvailable as exc:
            if old is None:
                old = self._recall(url)  # it left memory, its stored copy did not
            if old is None:
                if isinstance(exc.__cause__, TimeoutError):
                    self._timed_out.note(url, exc.detail)
                raise
            log.warning(
                "keeping the stale copy of @context %s: %s",
                masked_url(url),
                masked_urls(exc.detail),
            )
            old.fetched = time.monotonic() - self.ttl + min(self.ttl, 60.0)  # retry in a minute
            return
        if old is None:
            self._fetched(self._cache(url, doc, now_iso(), time.monotonic()))
            return
        with self._lock:
            changed = old.document != doc
            old.document, old.fetched = doc, time.monotonic()
            if changed:
                self._forget_compiled(old.local_id)
        if changed:
            self._fetched(old)

    async def _fetch(self, url: str) -> Any:
        """GET a remote context document and keep its @context member only.

        The rest of the document is never kept nor shown, and a failure says what kind it
        was (timeout, HTTP status, not JSON ...) without quoting what came back: a client may
        name any URL, and must not read through the hub what it could not read itself. The
        log has the particulars.
        """
        if not fetchable(url):
            raise not_fetched(url)
        try:
            body = await asyncio.wait_for(self._get(url), self.timeout)
        except TimeoutError as exc:
            raise LdContextNotAvailable(
                f"@context {url} did not answer within {self.timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:  # refused, reset, TLS, a redirect to no HTTP URL ...
            self._failures.warning(
                "@context %s is not reachable: %s", masked_url(url), masked_urls(repr(exc))
            )
            raise LdContextNotAvailable(f"@context {url} is not reachable") from exc
        except httpx.InvalidURL as exc:  # not an HTTPError: a port that is no number, no host
            raise LdContextNotAvailable(f"cannot dereference @context {shown(url)}: {exc}") from exc
        except AddressRefused as exc:  # the URL, or a redirect, leads where the hub may not go
            self._failures.warning("@context %s not fetched: %s", masked_url(url), exc)
            raise LdContextNotAvailable(
                f"@context {url} is not fetched: it leads to a non-public address, and "
                "CITYHUB_CONTEXT_PRIVATE_NETWORKS does not allow it"
            ) from exc
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {url} is not JSON") from exc
        if not isinstance(doc, dict) or "@context" not in doc:
            raise LdContextNotAvailable(f"@context {url} holds no @context member")
        try:
            check_context(doc["@context"])
        except BadRequestData as exc:
            self._failures.warning("@context %s is not valid: %s", masked_url(url), exc.detail)
            raise LdContextNotAvailable(
                f"@context {url} is not a valid JSON-LD @context (the hub log says why)"
            ) from exc
        return context_only(doc)

    async def _get(self, url: str) -> bytes:
        mirror = self.mirrors.get(url)
        if mirror is not None and not mirror.startswith(("http://", "https://")):
            try:
                return await asyncio.to_thread(Path(mirror).read_bytes)
            except OSError as exc:
                raise LdContextNotAvailable(f"mirror file of @context {url}: {exc}") from exc
        url = mirror or url
        headers = {"Accept": "application/ld+json, application/json;q=0.9, */*;q=0.1"}
        if self._tls is None:  # built once: building it per download costs ~30 ms of CPU
            self._tls = httpx.create_ssl_context()
        transport = None
        if self.guard is not None and mirror is None:  # a mirror is the operator's own choice
            transport = GuardedTransport(self.guard, self._tls)
        async with (
            httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=True, verify=self._tls, transport=transport
            ) as client,
            client.stream("GET", url, headers=headers) as resp,
        ):
            if resp.status_code != 200:
                raise LdContextNotAvailable(f"@context {url} answered HTTP {resp.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise LdContextNotAvailable(
                        f"@context {url} is larger than {self.max_bytes} bytes"
                    )
                chunks.append(chunk)
            return b"".join(chunks)

    # -- compilation -------------------------------------------------------------------------
    async def term_map(self, spec: Any, *, count: bool = True) -> TermMap:
        """The term map of a @context value, fetching what it names first (None: the core)."""
        if spec is None:
            return self.core
        await self.prefetch(spec, count=count)
        return self.compile(spec)

    async def prefetch_each(self, specs: Iterable[Any]) -> None:
        """Fetch what each of several @context values names; an unreachable one is skipped
        (whoever compiles it later reports it). The hub's own loading is no use by a client:
        it counts no hit (the request that brought the @context counted one)."""
        for spec in specs:
            if spec is not None:
                with contextlib.suppress(NgsiLdError):
                    await self.prefetch(spec, count=False)

    def compile(self, spec: Any, *, bounded: bool = True) -> TermMap:
        """The term map for a @context value (None means the core context alone). `bounded`:
        a client's new @context, refused past MAX_CONTEXT_BYTES of JSON as a download is (a
        stored subscription's is compiled as it was accepted)."""
        key = dumps_kept(spec)  # kept as a dict key
        if bounded and len(key) > MAX_CONTEXT_BYTES:
            raise _too_large(len(key))
        tm = self._compiled.get(key)
        if tm is None:
            tm = self._compile_spec(spec)
            size = len(tm.terms)
            if (
                len(self._compiled) >= _COMPILED_MAX
                or self._compiled_terms + size > _COMPILED_MAX_TERMS
            ):
                self._compiled.clear()
            if not self._compiled:
                self._compiled_terms = 0
                self._compiled_sources.clear()
            self._compiled[key] = tm
            self._compiled_terms += size
            self._compiled_sources.update(tm.sources)
        return tm

    def _forget_compiled(self, local_id: str) -> None:
        """Drop the compiled maps built from a context that changed or went (the others stay:
        adding or dropping one context must not cost every client its compiled maps)."""
        if local_id not in self._compiled_sources:
            return
        for key, tm in list(self._compiled.items()):
            if local_id in tm.sources:
                self._compiled.pop(key, None)
                self._compiled_terms -= len(tm.terms)
        self._compiled_sources.discard(local_id)

    def _kept(self, url: str) -> ContextEntry | None:
        """A retired context by its URL (any host, as _own)."""
        if not self._retired:
            return None
        return self._retired.get(_local_id(url)) if CONTEXTS_PATH in url else None

    def _compile_spec(self, spec: Any, *, kept: bool = False) -> TermMap:
        if spec is not None:
            check_context(spec)
        terms: dict[str, str] = {}
        state: dict[str, Any] = {
            "vocab": None,
            "documents": 0,
            "path": [],
            "kept": kept,
            "nulled": set(),
            "prefix": {},
            "sources": set(),
        }
        if spec is not None:
            self._apply(spec, terms, state, depth=0)
        user_vocab = state["vocab"]
        self._apply(CORE_CONTEXT["@context"], terms, state, depth=0)
        tm = TermMap(
            terms=terms,
            vocab=user_vocab or state["vocab"],
            spec=spec,
            nulled=frozenset(state["nulled"]),
            prefix_terms=frozenset(t for t, flag in state["prefix"].items() if flag and t in terms),
            sources=frozenset(state["sources"]),
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
            self._apply_url(spec, terms, state, depth)
            return
        if not isinstance(spec, dict):
            raise BadRequestData("@context must be a URL, an object or a list of them")
        if isinstance(spec.get("@vocab"), str):  # a compact IRI is expanded (5.8.3)
            vocab = _resolve_value(spec["@vocab"], spec, terms, None) or spec["@vocab"]
            state["vocab"] = check_term_iri("@vocab", vocab)
        nulled: set[str] = state["nulled"]
        for term, raw in spec.items():
            if term.startswith("@"):
                continue
            if raw is None or (isinstance(raw, dict) and raw.get("@id", "") is None):
                terms.pop(term, None)  # explicitly undefined: not expanded through @vocab
                nulled.add(term)
                continue
            vocab = state["vocab"]
            iri = _resolve_value(raw, spec, terms, vocab)
            if iri is None and isinstance(raw, dict) and "@id" not in raw:
                iri = vocab + term if vocab else None
            if iri is not None and (not iri.startswith("@") or iri in ("@id", "@type")):
                terms[term] = check_term_iri(
                    term, iri
                )  # a later definition wins, and the core's (applied last) most
                nulled.discard(term)
                state["prefix"][term] = _prefix_flag(term, raw, iri)

    def _apply_url(
        self, url: str, terms: dict[str, str], state: dict[str, Any], depth: int
    ) -> None:
        """Apply the document a URL names, once more each time it is named (JSON-LD order)."""
        url = _key(url)
        state["documents"] += 1
        if state["documents"] > MAX_CONTEXT_DOCUMENTS:
            raise BadRequestData(
                f"@context includes more than {MAX_CONTEXT_DOCUMENTS} context documents, "
                "counting each time one is named"
            )
        if url in CORE_CONTEXT_URLS:
            # The core is applied last anyway (its terms win); applied here too, its prefixes
            # (ngsi-ld:, geojson:) resolve the terms of the contexts that follow it. Its
            # @vocab counts only where no user context sets one.
            vocab = state["vocab"]
            self._apply(CORE_CONTEXT["@context"], terms, state, depth + 1)
            state["vocab"] = vocab
            return
        path: list[str] = state["path"]
        if url in path:
            raise BadRequestData(f"@context {url} includes itself (recursive context inclusion)")
        entry = self._entry(url)
        if entry is None:  # fetched, then pushed out of memory by other requests' contexts
            entry = self._recall(url)
        if entry is None and state["kept"]:
            entry = self._kept(url)
        if entry is None:
            raise (
                not_fetched(url)
                if not fetchable(url)
                else LdContextNotAvailable(f"@context {shown(url)} is not available")
            )
        state["sources"].add(entry.local_id)
        doc = entry.document
        path.append(url)
        try:
            self._apply(doc.get("@context"), terms, state, depth + 1)
        finally:
            path.pop()


def fetchable(url: str) -> bool:
    """Whether the hub would ever download this context IRI (http and https only)."""
    return url.startswith(("http://", "https://"))


def not_fetched(url: str) -> LdContextNotAvailable:
    """The error of a context IRI no download can reach (a URN, ftp:, file:): still JSON-LD's
    failure to load a remote context (decision 101), saying that sending it again will fail
    again."""
    return LdContextNotAvailable(
        f"cannot dereference @context {shown(url)}: the hub fetches contexts over http and "
        "https only"
    )


def _urls(spec: Any) -> Iterable[str]:
    """Every URL a @context value names directly."""
    if isinstance(spec, str):
        yield spec
    elif isinstance(spec, list):
        for item in spec:
            if isinstance(item, str):
                yield item


def _too_large(size: int) -> BadRequestData:
    return BadRequestData(
        f"the @context given inline is {size:,} bytes of JSON, more than the {MAX_CONTEXT_BYTES:,} "
        "the hub takes (a downloaded one is bounded alike); host its terms elsewhere and name "
        "its URL"
    )


def check_inline(spec: Any) -> None:
    """Refuse an inline @context (a hosted one's before its URLs are fetched) past
    MAX_CONTEXT_BYTES of JSON: compiled on the event loop and held in memory, a 40 MB one
    held every other request for 18 s."""
    if isinstance(spec, dict | list):
        size = len(orjson.dumps(spec))
        if size > MAX_CONTEXT_BYTES:
            raise _too_large(size)


def implicit_id(spec: Any) -> str:
    """The local id of the ImplicitlyCreated context for an @context: a hash of its content."""
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _included(document: Any, own: str) -> set[str]:
    """The local ids of the hub-served contexts a hosted document includes by URL (an
    ImplicitlyCreated one a client got in a Link, say)."""
    spec = document.get("@context") if isinstance(document, dict) else None
    return {_local_id(u) for u in _urls(spec) if CONTEXTS_PATH in u} - {own}


def url_local_ids(specs: Iterable[Any]) -> set[str]:
    """The local ids of the hub-served contexts some @context values name by URL (any host):
    a URL, or the URLs of a list."""
    return {_local_id(u) for spec in specs for u in _urls(spec) if CONTEXTS_PATH in u}


def named_local_ids(specs: Iterable[Any]) -> set[str]:
    """The local ids of the hub-served contexts some @context values name (the URLs they
    hold, any host) or stand for (the ImplicitlyCreated copy of a compound one)."""
    specs = list(specs)
    ids = url_local_ids(specs)
    for spec in specs:
        if is_compound(spec):
            ids.add(implicit_id(spec))
    return ids


def is_compound(spec: Any) -> bool:
    """An inline or multi-part @context: it has no one URL of its own, so an ImplicitlyCreated
    context stands in where one URL must name it (a subscription's jsonldContext)."""
    if isinstance(spec, list) and len(spec) == 1:
        spec = spec[0]
    return not (spec is None or isinstance(spec, str))


# One link-value of a Link header (RFC 8288 3): <URI> then ;-parameters, quoted or not. The
# URI may hold commas, so values are found by this pattern, not by splitting on ",".
_LINK_VALUE = re.compile(
    r'\s*<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"[^"]*"|[^;,]*))?)*)\s*(?:,|$)'
)
_LINK_PARAM = re.compile(r';\s*([^;,=\s]+)(?:\s*=\s*(?:"([^"]*)"|([^;,]*)))?')


_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"  # JSON-LD 1.1 API 9.4.1, NGSI-LD 6.3.5


def parse_link_header(value: str | None) -> str | None:
    """The context URL of a Link header whose rel is the JSON-LD context relation (6.3.5),
    validated; other links are ignored, and more than one
    such link is an error (JSON-LD 1.1 API 9.4.1, "multiple context link headers")."""
    if not value or not value.strip():
        return None
    found: list[str] = []
    pos = 0
    while pos < len(value):
        m = _LINK_VALUE.match(value, pos)
        if m is None or m.end() == pos:
            raise BadRequestData(f"malformed Link header: {shown(value)}")
        pos = m.end()
        params = {
            name.lower(): (quoted or bare).strip()
            for name, quoted, bare in _LINK_PARAM.findall(m.group(2))
        }
        # rel holds space-separated relation types, each compared whole (RFC 8288 3.3; as
        # an extension type, without regard to case, 2.1.2): a substring test took
        # rel="http://evil.example/json-ld#context" for the @context link and fetched it
        if _CONTEXT_REL in params.get("rel", "").lower().split():
            found.append(m.group(1).strip())
    if len(found) > 1:
        raise BadRequestData("a request may name only one JSON-LD @context in its Link header")
    if not found:
        return None
    if not is_absolute_iri(found[0]):
        raise BadRequestData(f"Link header context is not an absolute URL: {shown(found[0])}")
    return found[0]


def core_link() -> str:
    """The Link header naming the core context, for plain JSON responses."""
    return _CORE_LINK


def link_for(url: str) -> str:
    """A Link header naming a context URL."""
    return f'<{url}>; rel="{_CONTEXT_REL}"; type="application/ld+json"'


_CORE_LINK = link_for(CORE_CONTEXT_URL)  # built once: every plain-JSON answer carries it


__all__ = [
    "CACHED",
    "CONTEXTS_PATH",
    "HOSTED",
    "IMPLICIT",
    "KINDS",
    "RETIRED",
    "ContextCache",
    "ContextEntry",
    "InvalidRequest",
    "TermMap",
    "check_context",
    "check_inline",
    "core_link",
    "implicit_id",
    "is_absolute_iri",
    "link_for",
    "local_path",
    "named_local_ids",
    "parse_link_header",
]


def _proxy_set() -> bool:
    """Whether the environment names an HTTP(S) proxy (httpx would have used it)."""
    return any(
        os.environ.get(n)
        for n in (
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        )
    )
