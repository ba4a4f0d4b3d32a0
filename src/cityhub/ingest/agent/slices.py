"""A batch's messages in committer-sized slices, so a few big array messages cannot hold the
event loop (and every other request) for seconds in one job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

import orjson

from cityhub.api.commit import SLICE, SLICE_BYTES, SLICE_ELEMENTS


class Message(Protocol):
    """What a slice needs of a pending message: its entity fragments."""

    items: list[dict[str, Any]]


M = TypeVar("M", bound=Message)


def message_slices(batch: list[M]) -> Iterator[tuple[list[M], int]]:
    """(messages, bytes) of each slice: the batch API's bounds (SLICE fragments,
    SLICE_ELEMENTS elements, SLICE_BYTES) over whole messages, so a message is stored or
    refused whole; the first message of a slice whatever its size."""
    start, count, size, elements = 0, 0, 0, 0
    for i, message in enumerate(batch):
        texts = [orjson.dumps(item) for item in message.items]
        n = sum(len(t) for t in texts)
        e = sum(t.count(b",") + 1 for t in texts)
        c = len(texts)
        if i > start and (
            count + c > SLICE or size + n > SLICE_BYTES or elements + e > SLICE_ELEMENTS
        ):
            yield batch[start:i], size
            start, count, size, elements = i, 0, 0, 0
        count += c
        size += n
        elements += e
    if start < len(batch):
        yield batch[start:], size
