"""Tenant names (NGSILD-Tenant, `--tenant`): one reading of a name everywhere, and a bound."""

from __future__ import annotations

import argparse
import functools
import re
import unicodedata

from cityhub.ngsild.errors import BadRequestData, shown

MAX_TENANT = 100  # characters; every stored row and index entry of the tenant repeats its name
# controls (C0, C1), line and paragraph separators; a comma is how HTTP joins repeated headers
_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029,]")
# Invisible characters that are not format characters (Cf): Unicode's other
# Default_Ignorable_Code_Points (combining grapheme joiner, Hangul fillers, variation selectors)
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0000-\U000e0fff]"
)


def check_tenant(name: str) -> str:
    """A tenant name in Unicode's composed form (NFC: the same Korean name typed on two
    systems is one tenant), or a 400 that says what is wrong with it. Refused too, since
    the name would print as another tenant's in logs, notifications and device records:
    invisible characters (bidi overrides, zero-width spaces and joiners: format characters,
    and the other default-ignorable ones) and compatibility forms NFKC folds (full-width
    letters, no-break spaces, ligatures), refused rather than folded (decision 042), and
    spaces at either end, which HTTP drops from a header (so the command line's `--tenant`
    cannot store what no request can name)."""
    name = unicodedata.normalize("NFC", name)
    if len(name) > MAX_TENANT:
        raise BadRequestData(
            f"a tenant name is at most {MAX_TENANT} characters; NGSILD-Tenant holds {len(name)}"
        )
    bad = _BAD.search(name)
    if bad:
        what = "a comma (two tenants?)" if bad.group() == "," else "a control character"
        raise BadRequestData(f"the tenant name {shown(name)} holds {what}")
    if name != name.strip():
        trimmed = name.strip()
        plain = f"write it as {shown(trimmed)}" if trimmed else "no name is the default tenant"
        raise BadRequestData(
            f"the tenant name {shown(name)} has a space at its start or end, which HTTP drops "
            f"from a header (it would name another tenant there): {plain}"
        )
    hidden = next((c for c in name if unicodedata.category(c) == "Cf"), None)
    if hidden is None and (found := _IGNORABLE.search(name)):
        hidden = found.group()
    if hidden is not None:
        raise BadRequestData(
            f"the tenant name {shown(name)} holds U+{ord(hidden):04X} {_char_name(hidden)}, an "
            "invisible character: it would read as another tenant's name"
        )
    folded = unicodedata.normalize("NFKC", name)
    if folded != name:
        raise BadRequestData(
            f"the tenant name {shown(name)} holds compatibility characters (full-width forms, "
            f"no-break spaces, ligatures): write it as {shown(folded)}"
        )
    return name


def _char_name(char: str) -> str:
    return unicodedata.name(char, "(unnamed)")


@functools.lru_cache(maxsize=1024)
def tenant_from_header(raw: bytes) -> str:
    """The NGSILD-Tenant header's bytes as a name: UTF-8, as clients send it and as the
    command line and notifications spell it (read as latin-1, 'café' became 'cafÃ©')."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestData("NGSILD-Tenant is not UTF-8 text") from None
    # the blanks around a field value are not part of it (RFC 9110 5.5); uvicorn drops them,
    # an ASGI server that passes them on must not make ' alpha' another tenant than 'alpha'
    return check_tenant(name.strip(" \t"))


def tenant_option(value: str) -> str:
    """`--tenant` of the command-line tools: the same rule as the header, as a usage error."""
    try:
        return check_tenant(value)
    except BadRequestData as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None
