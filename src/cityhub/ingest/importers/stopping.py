"""Ctrl-C and SIGTERM during `cityhub import`: the import stops where it is (its committed
slices kept, the tools closed), and a prune's deletions end after the slice in flight, so a
stopped prune leaves whole slices deleted and says how far it got."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_STOPPING = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C: a scheduler's stop closes the database and says what was stored."""
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block (its default kills without a word)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:  # started to outlive its stop
        yield
        return
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class Stop:
    """A stop asked for while signals are deferred: the name of the signal, or None."""

    def __init__(self) -> None:
        self.asked: str | None = None

    def note(self, signum: int, frame: FrameType | None) -> None:
        """The first signal is noted; a second one stops at once, as Ctrl-C does."""
        if self.asked is not None:
            raise KeyboardInterrupt
        self.asked = signal.Signals(signum).name


@contextmanager
def deferred() -> Iterator[Stop]:
    """Inside the block Ctrl-C and SIGTERM are only noted (a second one interrupts): the
    caller checks Stop.asked between the steps it must not cut in half."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    before = {  # a signal the import was started to ignore (nohup, `&`) stays ignored
        signum: signal.signal(signum, stop.note)
        for signum in _STOPPING
        if signal.getsignal(signum) != signal.SIG_IGN
    }
    try:
        yield stop
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
