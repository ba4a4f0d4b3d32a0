"""URLs with their passwords hidden, for every line the hub prints or logs; in the log, a
subscription's endpoint or an @context URL without its query and fragment too (masked_url)."""

from __future__ import annotations

import re

# a scheme and what follows up to the path: the netloc, userinfo included
_NETLOC = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#\s'\"]*)")
# a whole URL inside free text (an exception's message)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")


def masked(text: str) -> str:
    """text with each URL's password as ***: a broker URL that did not parse went to stderr,
    and so to the journal, whole (mqtt://user:s3cret@:1883)."""

    def hide(found: re.Match[str]) -> str:
        userinfo, at, host = found["netloc"].rpartition("@")  # a raw @ in a password too
        if not at or ":" not in userinfo:
            return found[0]
        return f"{found['head']}{userinfo.split(':', 1)[0]}:***@{host}"

    return _NETLOC.sub(hide, text)


def masked_url(url: str) -> str:
    """A URL as a log line shows it: the password as ***, the query and the fragment cut.
    Receivers take tokens there as often as in the userinfo (?token=..., #access_token=...),
    and a give-up line wrote them to the journal whole."""
    return masked(re.split(r"[?#]", url, maxsplit=1)[0])


def masked_urls(text: str) -> str:
    """text with every URL in it as masked_url shows it (an error's message may hold one)."""
    return _URL.sub(lambda found: masked_url(found[0]), text)
