"""A batch's messages in committer-sized slices, so a few big array messages cannot hold the
event loop (and every other request) for seconds in one job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

import orjson

from cityhub.api.commit import SLICE, SLICE_BYTES, SLICE_ELEMENTS, SLICE_MATCHES, job_size
from cityhub.notify.matching_cost import Weigh


class Message(Protocol):
    """What a slice needs of a pending message: its entity fragments."""

    items: list[dict[str, Any]]


M = TypeVar("M", bound=Message)


def message_slices(batch: list[M], weigh: Weigh | None = None) -> Iterator[tuple[list[M], int]]:
    """(messages, size) of each slice: the batch API's bounds (SLICE fragments,
    SLICE_ELEMENTS elements, SLICE_BYTES, and with weigh SLICE_MATCHES subscription matching
    pairs) over whole messages, so a message is stored or refused whole; the first message of
    a slice whatever its size. size: the committer job's (api/commit.py::job_size)."""
    whole = _one_slice(batch, weigh)
    if whole is not None:
        yield whole
    elif batch:
        yield from _slices(batch, weigh)


def _one_slice(batch: list[M], weigh: Weigh | None) -> tuple[list[M], int] | None:
    """The whole batch as one slice when it is within every bound (most are: a few small
    messages), measured in one serialization of all its fragments, whose bytes and commas
    are each fragment's and the list's own `[`, `]` and separators; None otherwise. Serializing
    each fragment alone cost some 15,000 CPU instructions a device message."""
    items = [item for message in batch for item in message.items]
    if not items or len(items) > SLICE:
        return None
    try:
        text = orjson.dumps(items)
    except orjson.JSONEncodeError:
        return None  # _slices meets the fragment that fails, as before
    size = len(text) - 1 - len(items)
    if size > SLICE_BYTES or text.count(b",") + 1 > SLICE_ELEMENTS:
        return None
    matches = sum(map(weigh, items)) if weigh is not None else 0
    if matches > SLICE_MATCHES:
        return None
    return batch[:], job_size(size, matches)


def _slices(batch: list[M], weigh: Weigh | None) -> Iterator[tuple[list[M], int]]:
    """message_slices fragment by fragment, for a batch past a bound."""
    start, count, size, elements, matches = 0, 0, 0, 0, 0
    for i, message in enumerate(batch):
        texts = [orjson.dumps(item) for item in message.items]
        n = sum(len(t) for t in texts)
        e = sum(t.count(b",") + 1 for t in texts)
        c = len(texts)
        m = sum(map(weigh, message.items)) if weigh is not None else 0
        if i > start and (
            count + c > SLICE
            or size + n > SLICE_BYTES
            or elements + e > SLICE_ELEMENTS
            or matches + m > SLICE_MATCHES
        ):
            yield batch[start:i], job_size(size, matches)
            start, count, size, elements, matches = i, 0, 0, 0, 0
        count += c
        size += n
        elements += e
        matches += m
    if start < len(batch):
        yield batch[start:], job_size(size, matches)
