"""Why a device message was refused, and the one place a refusal becomes an HTTP error."""

from __future__ import annotations

from cityhub.ngsild.errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    NgsiLdError,
    ResourceNotFound,
    UnsupportedMediaType,
)
from cityhub.store.base import StoreBusy, StoreFull, StoreLost

# Every reason the agent counts; /iot/v1/stats reports each of them (zero included).
BAD_REQUEST = "bad_request"  # HTTP southbound without k or i, or an MQTT topic of another shape
UNKNOWN_DEVICE = "unknown_device"  # no device with this id and key (another key included)
WRONG_PROTOCOL = "wrong_protocol"
TOO_LARGE = "too_large"
UNSUPPORTED = "unsupported_media_type"
MALFORMED = "malformed"  # neither a JSON object (or array of them) nor key|value text
BAD_VALUE = "bad_value"  # a mapped field does not convert to its declared type
NO_DATA = "no_data"  # nothing in the payload maps to an attribute
CONTEXT_UNAVAILABLE = "context_unavailable"
INVALID_ENTITY = "invalid_entity"  # the mapped entity failed NGSI-LD validation at write time
STORE_ERROR = "store_error"  # the write transaction failed

REASONS = (
    BAD_REQUEST,
    UNKNOWN_DEVICE,
    WRONG_PROTOCOL,
    TOO_LARGE,
    UNSUPPORTED,
    MALFORMED,
    BAD_VALUE,
    NO_DATA,
    CONTEXT_UNAVAILABLE,
    INVALID_ENTITY,
    STORE_ERROR,
)

# Unknown device and wrong key answer alike, so a caller cannot probe which device ids exist.
_NOT_FOUND = "no device with this id and API key"


class Rejected(Exception):
    """A device message the agent refused: counted under `reason`, kept as a dead letter."""

    def __init__(self, reason: str, detail: str, cause: Exception | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.cause = cause  # what failed a write (store_error)


def as_error(rej: Rejected) -> Exception:
    """The error an HTTP device gets for a refusal: a ProblemDetails error, or the store's
    refusal itself, which the app answers as it does the API's (503, and Retry-After)."""
    if rej.reason == UNKNOWN_DEVICE:
        return ResourceNotFound(_NOT_FOUND)
    if rej.reason == UNSUPPORTED:
        return UnsupportedMediaType(rej.detail)
    if rej.reason in (BAD_REQUEST, MALFORMED, TOO_LARGE):
        return InvalidRequest(rej.detail)
    if rej.reason == CONTEXT_UNAVAILABLE:
        return LdContextNotAvailable(rej.detail)
    if rej.reason == STORE_ERROR:
        if isinstance(rej.cause, StoreFull | StoreBusy | StoreLost):
            return rej.cause  # the device should try again, not drop the reading
        return NgsiLdError("the measurement could not be stored; see the hub log")
    return BadRequestData(rej.detail)
