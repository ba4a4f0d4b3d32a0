"""Stored timestamps have one fixed-width UTC format, so they sort as times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.ngsild import timeutil
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.timeutil import format_ts, norm_ts, now_iso, parse_ts

OFFSETS = st.sampled_from([None, UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), OFFSETS)
def test_the_format_is_fixed_width_utc_and_reads_back(value: datetime, tz: timezone | None) -> None:
    value = value.replace(tzinfo=tz)
    text = format_ts(value)
    assert len(text) == 27 and text.endswith("Z")
    expected = value if tz else value.replace(tzinfo=UTC)
    assert parse_ts(text) == expected


@given(
    st.datetimes(max_value=datetime(9999, 12, 30)), st.datetimes(max_value=datetime(9999, 12, 30))
)
def test_stored_strings_sort_as_their_times(a: datetime, b: datetime) -> None:
    assert (format_ts(a) < format_ts(b)) == (a < b)


def test_years_before_1000_keep_four_digits() -> None:
    assert norm_ts("0999-01-02T03:04:05Z") == "0999-01-02T03:04:05.000000Z"
    assert format_ts(datetime(999, 1, 2, tzinfo=UTC)) < format_ts(datetime(2024, 1, 1, tzinfo=UTC))
    assert norm_ts("2026-12-01T10:00:00+09:00") == "2026-12-01T01:00:00.000000Z"


def test_now_is_the_clock_in_the_storage_format() -> None:
    before = datetime.now(UTC)
    stamp = now_iso()
    after = datetime.now(UTC)
    assert len(stamp) == 27 and stamp.endswith("Z")
    tick = timedelta(microseconds=1)  # datetime.now rounds to the microsecond, now_iso cuts
    assert before - tick <= parse_ts(stamp) <= after + tick


def test_now_keeps_up_across_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """now_iso reuses the text of the current second: the next second, day or year must show."""
    times = [
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 0, 5, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 1, 0, tzinfo=UTC),
    ]
    ticks = iter(int(t.timestamp()) * 10**9 + t.microsecond * 1000 for t in times)
    monkeypatch.setattr(timeutil.time, "time_ns", lambda: next(ticks))
    assert [now_iso() for _ in times] == [format_ts(t) for t in times]


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_iso_seconds_of_a_stored_time_is_the_parsed_timestamp_exactly(value: datetime) -> None:
    """The history's time columns: the first read of a second and the ones after it (from
    its whole second) give the float parse_ts's timestamp gives, bit for bit."""
    text = format_ts(value)
    expected = parse_ts(text).timestamp()
    assert timeutil.iso_seconds(text) == expected
    assert timeutil.iso_seconds(text) == expected  # the second is known now
    sibling = text[:20] + "999999Z"
    assert timeutil.iso_seconds(sibling) == parse_ts(sibling).timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T10:00:00Z",
        "2024-03-01T10:00:00.5Z",
        "2024-03-01T10:00:00.123456z",
        "2024-03-01T10:00:00.123456+02:00",
        "2024-03-01t10:00:00.123456Z",
        "2024-03-01T10:00:00.123456",
    ],
)
def test_iso_seconds_reads_other_forms_as_parse_ts(text: str) -> None:
    timeutil.iso_seconds("2024-03-01T10:00:00.000000Z")  # that second is known
    assert timeutil.iso_seconds(text) == parse_ts(text).timestamp()


def test_iso_seconds_refuses_what_parse_ts_refuses() -> None:
    timeutil.iso_seconds("2024-03-01T10:00:00.000000Z")
    for bad in ["2024-03-01T10:00:00.12345\u0663Z", "2024-13-01T10:00:00.000000Z", "soon"]:
        with pytest.raises(BadRequestData) as raised:
            timeutil.iso_seconds(bad)
        with pytest.raises(BadRequestData) as expected:
            parse_ts(bad)
        assert str(raised.value) == str(expected.value)
