"""Dead letters never keep a device's API key, whatever was wrong with the message."""

from __future__ import annotations

import pytest

from cityhub.ingest.agent.deadletters import DeadLetters
from cityhub.ingest.agent.payload import Raw
from cityhub.ingest.agent.reasons import Rejected


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
