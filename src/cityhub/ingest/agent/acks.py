"""PUBACKs sent once a QoS 1 message is stored or dead-lettered, so a hub killed before its
write committed leaves the message with the broker; sent in the order the messages came,
as MQTT requires of QoS 1 acknowledgements (3.1.1 §4.6, 5.0 §4.6)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class Ack:
    """The acknowledgement one received QoS 1 message waits for: call it once the message is
    settled (stored, dead-lettered or given up); calling it again does nothing."""

    __slots__ = ("_acks", "done", "mid")

    def __init__(self, acks: Acks, mid: int) -> None:
        self._acks = acks
        self.mid = mid
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self._acks.release()


class Acks:
    """The unacknowledged QoS 1 messages of one broker connection, oldest first: a settled
    message's PUBACK waits for those received before it."""

    def __init__(self) -> None:
        self.send: Callable[[int], object] | None = None  # set once the client exists
        self._waiting: deque[Ack] = deque()

    def received(self, mid: int) -> Ack:
        """Take a QoS 1 message in the order the client received it."""
        ack = Ack(self, mid)
        self._waiting.append(ack)
        return ack

    def release(self) -> None:
        """Send the PUBACKs of the settled messages at the head of the line."""
        waiting = self._waiting
        while waiting and waiting[0].done:
            mid = waiting.popleft().mid
            if self.send is not None:
                self.send(mid)

    def close(self) -> None:
        """The connection ended: a packet id means nothing on the next one, where the broker
        sends the unacknowledged messages again (a stored one is then stored twice)."""
        self.send = None
        self._waiting.clear()

    def __len__(self) -> int:
        return len(self._waiting)
