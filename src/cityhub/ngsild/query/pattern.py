"""Client regular expressions (idPattern, q's `~=`) on RE2, whose matching is linear in the
input: with Python's backtracking `re`, one request with `(.*)*Z` stalls the hub for seconds
per entity (docs/decisions/014). Linear is not cheap: a search costs up to about 50 ns per
program instruction per byte (`.{999}.{999}.{999}Z` on 1 MB: 50 s on the event loop), so
a pattern's program and the work of one search are bounded too (decision 014, addendum)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a client's bad pattern is its error, not a line in the hub's log
_OPTIONS.never_capture = True  # the hub asks only whether it matches; groups cost per thread
# Patterns searched over many texts joined by newlines (`compile_lines`): multi-line, and no
# match may hold a newline, so each match lies within one text (a text has none).
_LINES = re2.Options()
_LINES.log_errors = False
_LINES.never_capture = True
_LINES.never_nl = True

MAX_PROGRAM = 10_000  # RE2 instructions: a 200-id alternation takes ~6,000
MAX_WORK = 2_000_000  # instructions times UTF-8 bytes of one search: about 0.1 s at worst
# What a multi-line pattern cannot be asked over texts joined by newlines: \A and \z hold only
# at the edges of the whole, and a flag group such as (?-m) turns multi-line mode off again.
_WHOLE_TEXT = re.compile(r"\\[Az]|\(\?[A-Za-z]*-")


class PatternError(ValueError):
    """A pattern RE2 refuses: bad syntax, or what POSIX lacks (back-references, look-around)."""


class Pattern:
    """A compiled client pattern whose searches are bounded in work: a string too long for
    its program is not searched (`fits` says so) and matches nothing."""

    __slots__ = ("_re", "lines", "pattern", "programsize")

    def __init__(self, pattern: str, compiled: Any, *, lines: bool = False) -> None:
        self.pattern = pattern
        self.programsize: int = compiled.programsize
        self._re = compiled
        self.lines = lines  # compiled by compile_lines

    def fits(self, text: str) -> bool:
        """Whether a search of text stays within MAX_WORK (RE2 steps over UTF-8 bytes)."""
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        return size * self.programsize <= MAX_WORK

    def search(self, text: str) -> Any:
        """The match anywhere in text, or None (also when text does not fit)."""
        return self._re.search(text) if self.fits(text) else None

    def search_any(self, texts: Sequence[str], joined: str) -> bool:
        """Whether the pattern is found in any of texts (none holding a newline), in one
        search of joined, the texts joined by newlines, wherever that answers the same (a
        `compile_lines` pattern): searched text by text, a registered idPattern against 3,000
        queried ids took 34 s over 2,000 registrations (decision 071)."""
        if (
            self.lines
            and len(texts) > 1
            and self.fits(joined)
            and not _WHOLE_TEXT.search(self.pattern)
        ):
            found = self._re.search(joined)
            if found is None:
                return False  # a match within one text is one within the joined texts
            if "\n" not in joined[found.start() : found.end()]:  # never_nl: always so
                return True  # within one text, whose edges ^, $ and \b see as its own
        return any(self.search(text) for text in texts)

    def fullmatch(self, text: str) -> Any:
        """The match of the whole text, or None (also when text does not fit)."""
        return self._re.fullmatch(text) if self.fits(text) else None


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Pattern:
    """Compile a pattern once, whatever its size (a stored one keeps working: its searches
    are bounded all the same)."""
    try:
        compiled = re2.compile(pattern, options=_OPTIONS)
    except (re2.error, UnicodeError, TypeError) as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(str(reason)) from None
    return Pattern(pattern, compiled)


class AnyPattern:
    """Several patterns searched as one alternation, each in a group of its own (so its
    flags stay its own): one search per text instead of one per pattern, each compiled
    again once more than the 512 `compile_pattern` keeps were searched in turn."""

    __slots__ = ("_whole", "largest", "patterns")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self.largest = max(compile_pattern(p).programsize for p in patterns)
        try:
            self._whole: Pattern | None = compile_pattern("|".join(f"(?:{p})" for p in patterns))
        except PatternError:  # past RE2's memory for one program: searched one by one
            self._whole = None

    def search(self, text: str) -> bool:
        """Whether any of the patterns is found in text, each as `Pattern.search`: searched
        together only where every one of them fits the text alone (and the whole does)."""
        whole = self._whole
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if whole is not None and size * self.largest <= MAX_WORK and whole.fits(text):
            return whole.search(text) is not None
        return any(compile_pattern(p).search(text) is not None for p in self.patterns)


def compile_lines(pattern: str) -> Pattern:
    """A pattern for texts without newlines, compiled so that it is also searched over many
    of them joined by newlines (`Pattern.search_any`): in multi-line mode, where ^ and $ also
    hold beside a newline, and never matching one. On one such text it answers as the
    pattern does."""
    try:
        compiled = re2.compile("(?m)" + pattern, options=_LINES)
    except (re2.error, UnicodeError, TypeError) as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(str(reason)) from None
    return Pattern(pattern, compiled, lines=True)


def bounded_pattern(pattern: str) -> Pattern:
    """A client's new pattern: compiled, and refused when its program is over MAX_PROGRAM."""
    compiled = compile_pattern(pattern)
    if compiled.programsize > MAX_PROGRAM:
        raise PatternError(
            f"it compiles to {compiled.programsize} RE2 instructions, more than the "
            f"{MAX_PROGRAM} the hub takes (large counted repetitions such as .{{999}} cost "
            "that many each)"
        )
    return compiled
