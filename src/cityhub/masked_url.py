"""URLs with their passwords hidden, for every line the hub prints or logs."""

from __future__ import annotations

import re

# a scheme and what follows up to the path: the netloc, userinfo included
_NETLOC = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#\s'\"]*)")


def masked(text: str) -> str:
    """text with each URL's password as ***: a broker URL that did not parse went to stderr,
    and so to the journal, whole (mqtt://user:s3cret@:1883)."""

    def hide(found: re.Match[str]) -> str:
        userinfo, at, host = found["netloc"].rpartition("@")  # a raw @ in a password too
        if not at or ":" not in userinfo:
            return found[0]
        return f"{found['head']}{userinfo.split(':', 1)[0]}:***@{host}"

    return _NETLOC.sub(hide, text)
