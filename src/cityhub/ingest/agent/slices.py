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
