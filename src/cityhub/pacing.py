"""Background deletes sized by time: a step aims at TARGET seconds of the event loop, and the
loop is then left to requests for as long as the step took (decisions 017 and 040).

A step's cost per row varies a hundredfold: rows of one sensor share their index pages, rows
of 2,000 interleaved sensors each dirty a page of their own at COMMIT, and a 5,000-position
polygon is 100 KB. A fixed row count held every request for 0.1-2 s per step in those cases.
"""

from __future__ import annotations

TARGET = 0.02  # seconds a step should hold the loop: about the longest a request then waits
GROW_BELOW = 0.005  # steps quicker than this double the next one's size
FIRST = 250  # rows of a pass's first step, before anything is measured
LEAST = 10  # rows a step always takes, so a pass ends however slow the disk is


class StepPacer:
    """The size of the next step of a background delete, from how long the last one took."""

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.size = min(FIRST, self.most)

    def took(self, seconds: float) -> float:
        """Size the next step after one that held the loop this long; returns the pause that
        leaves the loop to requests for as long (retention takes at most about half)."""
        if seconds > TARGET:
            self.size = max(min(LEAST, self.most), int(self.size * TARGET / seconds))
        elif seconds < GROW_BELOW:
            self.size = min(self.most, self.size * 2)
        return seconds
