"""One queue per (tenant, endpoint): a receiver slow for one tenant's notifications does not
hold back another tenant's to the same endpoint URI; each subscription keeps its order."""

from __future__ import annotations

import asyncio

from cityhub.notify.delivery import Dispatcher, Policy
from cityhub.store.base import OutboxItem
from outbox_support import MemoryOutbox
from receivers import wait_for


async def test_a_tenant_stuck_on_an_endpoint_does_not_delay_another_tenants_items() -> None:
    """All subscriptions naming one endpoint URI shared one queue, whatever their tenant."""
    stuck = asyncio.Event()
    sent: list[tuple[str, int]] = []
    outbox = MemoryOutbox()

    async def deliver(item: OutboxItem, attempt: int) -> bool:
        if item.tenant == "big":
            await stuck.wait()  # a large item the receiver takes minutes over
        sent.append((item.tenant, item.seq))
        return True

    dispatcher = Dispatcher(deliver, outbox.ack, Policy(), outbox.backlog)
    url = "http://receiver/notify"
    dispatcher.submit(outbox.add([OutboxItem("big", "s1", url, b"x", n) for n in (1, 2)]))
    dispatcher.submit(outbox.add([OutboxItem("small", "s2", url, b"y", n) for n in (3, 4, 5)]))
    await wait_for(lambda: len(sent) == 3, timeout=2, what="the other tenant's three items")
    assert sent == [("small", 3), ("small", 4), ("small", 5)]
    stuck.set()
    await wait_for(lambda: len(sent) == 5, timeout=2, what="the stuck tenant's items")
    assert sent[3:] == [("big", 1), ("big", 2)], "each subscription in its order"
    await dispatcher.close()
