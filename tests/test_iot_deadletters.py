"""Dead letters never keep a device's API key, whatever was wrong with the message."""

from __future__ import annotations

import httpx
import orjson
import pytest

from cityhub.ingest.agent.deadletters import DeadLetters
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected
from iot_support import IOT, wait_for


class _NoStore:
    def resource_count_all(self, kind: str) -> int:
        return 0


@pytest.mark.parametrize(
    ("topic", "apikey", "kept"),
    [
        ("cityhub/s3cr3t-key/dev1/attrs", "s3cr3t-key", "cityhub/<apikey>/dev1/attrs"),
        # refused for its shape before the key was read: the key is still the second level
        ("cityhub/s3cr3t-key/dev1/wrong", "", "cityhub/<apikey>/dev1/wrong"),
        ("cityhub/s3cr3t-key", "", "cityhub/<apikey>"),
        ("elsewhere/topic", "", "elsewhere/topic"),
    ],
)
def test_a_letter_keeps_the_topic_without_the_key(topic: str, apikey: str, kept: str) -> None:
    letters = DeadLetters(_NoStore(), bound=10)
    raw = Raw("mqtt", apikey, "dev1", b"{}", topic=topic)
    doc = letters.letter(raw, Rejected("badRequest", "test"))
    assert doc["topic"] == kept
    assert "s3cr3t" not in str(doc)


async def test_a_letter_stays_small_whatever_the_device_id_or_topic(
    client: httpx.AsyncClient,
) -> None:
    """Anyone who reaches the broker can send an unknown id as long as a topic (64 KiB): each
    letter kept three copies of it (device, topic, detail), 180 KB for a 7-byte payload, and
    the unrouted bound of 10,000 letters let one client fill 2 GB of the hub's disk."""
    agent = client._transport.app.state.iot  # type: ignore[attr-defined]
    long_id = "d" * 60_000
    agent.on_mqtt(f"cityhub/{'k' * 3_000}/{long_id}/attrs", b'{"t": 1}')
    resp = await client.post(f"{IOT}/json", params={"k": "k" * 20, "i": long_id}, json={"t": 1})
    assert resp.status_code == 404

    async def two() -> bool:
        return len((await client.get(f"{IOT}/deadletters?unrouted=true")).json()) == 2

    await wait_for(two, "two unrouted letters")
    for letter in (await client.get(f"{IOT}/deadletters?unrouted=true")).json():
        assert len(orjson.dumps(letter)) < 4_096, {k: len(str(v)) for k, v in letter.items()}
        assert letter["device"].startswith("ddd") and letter["reason"] == "unknown_device"
        assert "kkk" not in str(letter)
