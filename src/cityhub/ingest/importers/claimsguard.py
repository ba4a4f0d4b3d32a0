"""The write guard of `import --db`: the exclusive and redirect registrations' claims
(decision 083), read again when a hub beside the import has written, so a registration made
while a long import runs binds the slices after it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from cityhub.ngsild.registration_claims import RegistrationClaims
from cityhub.ngsild.registrations import REGISTRATIONS
from cityhub.store.base import Doc

if TYPE_CHECKING:
    from cityhub.store.sqlite import SqliteStore


class FreshClaims:
    """RegistrationClaims re-read inside a slice's own transaction (at its first entity) whenever
    another connection committed since the last look (SQLite's data_version on the writer): under the
    write lock, so no registration can land between the look and the slice's writes. Parsed
    again only when the registrations' text differs."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.version = -1  # no data_version is negative: the first write reads them
        self.raw: list[tuple[str, str]] | None = None
        self.claims = RegistrationClaims()
        self.looked = False  # looked in the transaction under way (next_transaction resets it)

    def next_transaction(self) -> None:
        """The next write opens a transaction of its own: look again at its first entity (a
        look per entity cost 4 % of an import's CPU)."""
        self.looked = False

    def check_write(
        self, tenant: str, doc: Doc, before: str | None = None, changed: set[str] | None = None
    ) -> None:
        """RegistrationClaims.check_write against the registrations as this write sees them."""
        if not self.looked:
            self.looked = True
            self.version, raw = self.store.resources_if_changed(REGISTRATIONS, self.version)
            if raw is not None and raw != self.raw:
                self.raw = raw
                self.claims = RegistrationClaims.of((t, orjson.loads(text)) for t, text in raw)
        self.claims.check_write(tenant, doc, before, changed)
