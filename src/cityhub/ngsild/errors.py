"""NGSI-LD ProblemDetails errors: every failure the API reports is one of these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """An error that maps to one NGSI-LD error type and HTTP status."""

    type_name = "InternalError"
    status = 500
    title = "Internal error"
    retry_after = ""  # seconds a client should wait before sending again ('' for none)

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The ProblemDetails body (RFC 7807) of this error."""
        body: dict[str, Any] = {
            "type": ERROR_BASE + self.type_name,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class Overloaded(NgsiLdError):
    """The hub holds as much of other requests as it may (large bodies): 503, sent again
    shortly it may be taken."""

    status = 503
    title = "Service unavailable"
    retry_after = "1"


class InvalidRequest(NgsiLdError):
    """The request is not well formed: bad JSON, bad parameter syntax."""

    type_name = "InvalidRequest"
    status = 400
    title = "Invalid request"


class RequestTooLarge(InvalidRequest):
    """The request body is larger than the hub accepts (CITYHUB_MAX_BODY, or a batch past
    MAX_BATCH_ITEMS items); HTTP's 413."""

    status = 413
    title = "Request body too large"


class BadRequestData(NgsiLdError):
    """The request is well formed but its content is not acceptable NGSI-LD."""

    type_name = "BadRequestData"
    status = 400
    title = "Bad request data"


class ResourceNotFound(NgsiLdError):
    """The entity, attribute, subscription or context does not exist."""

    type_name = "ResourceNotFound"
    status = 404
    title = "Resource not found"


class AlreadyExists(NgsiLdError):
    """A create hit an existing id."""

    type_name = "AlreadyExists"
    status = 409
    title = "Already exists"


class OperationNotSupported(NgsiLdError):
    """The operation exists in the spec but this hub does not offer it here."""

    type_name = "OperationNotSupported"
    status = 422
    title = "Operation not supported"


class TooManyResults(NgsiLdError):
    """A page bigger than the hub serves at once (clauses 5.5.6, 5.5.9; 403 per 6.3.2)."""

    type_name = "TooManyResults"
    status = 403
    title = "Too many results"


class NonexistentTenant(NgsiLdError):
    """A read named a tenant that holds no data."""

    type_name = "NonexistentTenant"
    status = 404
    title = "Nonexistent tenant"


class LdContextNotAvailable(NgsiLdError):
    """A remote @context could not be fetched or is not a JSON-LD context."""

    type_name = "LdContextNotAvailable"
    status = 503
    title = "JSON-LD context not available"


class NotAcceptable(NgsiLdError):
    """No representation matches the Accept header."""

    type_name = "NotAcceptable"
    status = 406
    title = "Not acceptable"


class UnsupportedMediaType(NgsiLdError):
    """The Content-Type is not one NGSI-LD accepts for this request."""

    type_name = "UnsupportedMediaType"
    status = 415
    title = "Unsupported media type"


class MethodNotAllowed(NgsiLdError):
    """The path exists but not with this HTTP method."""

    type_name = "MethodNotAllowed"
    status = 405
    title = "Method not allowed"


class Conflict(NgsiLdError):
    """The request conflicts with the resource's current state (e.g. a context still in use)."""

    type_name = "Conflict"
    status = 409
    title = "Conflict"


class ClaimedAttribute(Conflict):
    """A write of an Attribute another source holds (decision 083): raised by the store, which
    knows the Attribute by its IRI only, and named in the request's own terms where the error
    is answered (`in_terms`), as a registration's 409 names it."""

    def __init__(self, iri: str, rest: str) -> None:
        super().__init__(iri + rest)
        self.iri, self.rest = iri, rest

    def in_terms(self, compact: Callable[[str], str]) -> ClaimedAttribute:
        """This error with its Attribute compacted by the request's @context."""
        self.detail = compact(self.iri) + self.rest
        return self


EXCERPT = 200  # characters of a client's text an error detail quotes


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A client's text as an error quotes it: whole when short, else its start and its length,
    so a 5 MB q does not come back as a 5 MB error body."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def clipped(value: Any) -> str:
    """A list or tuple of a client's values as an error quotes it: its repr, whole when short,
    else its start and its length (a 100 KB array of coordinates came back whole)."""
    text = repr(value)
    return text if len(text) <= EXCERPT else f"{text[:EXCERPT]}... ({len(text):,} characters)"


def shown(value: Any) -> str:
    """A client's JSON value as an error names it: a string as excerpt quotes it, an object
    or array by its kind (an item quoted whole came back as a 1 MB detail), else as JSON."""
    if isinstance(value, str):
        return excerpt(value)
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def storage_full(detail: str = "nothing of this request was stored") -> NgsiLdError:
    """The error of a write the store refused for want of space (503: an operator must act)."""
    err = NgsiLdError(f"the hub's storage is full; {detail}")
    err.status = 503
    return err
