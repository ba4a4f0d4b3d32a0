"""A batch of device messages is cut into committer slices by its fragments' JSON: the bytes
and elements each fragment would take, whether measured together or one by one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.ingest.agent import slices
from cityhub.ingest.agent.slices import message_slices

SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
FRAGMENTS = st.dictionaries(
    st.text(max_size=6),
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=6),
    max_size=4,
)


@dataclass
class _Message:
    items: list[dict[str, Any]] = field(default_factory=list)


def _by_fragment(batch: list[_Message]) -> tuple[int, int]:
    """The bytes and elements of a batch's fragments, each serialized alone."""
    texts = [orjson.dumps(item) for m in batch for item in m.items]
    return sum(map(len, texts)), sum(t.count(b",") + 1 for t in texts)


@given(st.lists(st.lists(FRAGMENTS, max_size=3), max_size=6))
def test_a_batch_within_the_bounds_is_one_slice_of_its_fragments_bytes(
    raw: list[list[dict[str, Any]]],
) -> None:
    batch = [_Message(items) for items in raw]
    out = list(message_slices(batch))
    if not batch:
        assert out == []
        return
    assert out == [(batch, _by_fragment(batch)[0])]
    assert out[0][0] is not batch, "a slice is a list of its own"


@given(st.lists(st.lists(FRAGMENTS, min_size=1, max_size=3), min_size=1, max_size=8))
def test_the_bounds_cut_between_whole_messages(raw: list[list[dict[str, Any]]]) -> None:
    batch = [_Message(items) for items in raw]
    size, elements = _by_fragment(batch)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(slices, "SLICE_BYTES", max(1, size // 3))
        mp.setattr(slices, "SLICE_ELEMENTS", max(1, elements // 2))
        out = list(message_slices(batch))
        expected = list(slices._slices(batch, None))
    assert out == expected
    assert [m for part, _ in out for m in part] == batch
    assert sum(n for _, n in out) == size


def test_a_message_past_the_element_bound_is_sliced_alone() -> None:
    """A slice takes messages up to SLICE_ELEMENTS elements, counted as their JSON's commas
    (plus one per fragment); the first message of a slice whatever its size."""
    wide = _Message([{f"k{i}": i for i in range(slices.SLICE_ELEMENTS)}])
    small = _Message([{"t": 1}])
    out = list(message_slices([small, wide, small]))
    assert [len(part) for part, _ in out] == [1, 1, 1]
