"""Tenant names (NGSILD-Tenant, `--tenant`): one reading of a name everywhere, and a bound."""

from __future__ import annotations

import argparse
import functools
import re
import unicodedata

from cityhub.ngsild.errors import BadRequestData

MAX_TENANT = 100  # characters; every stored row and index entry of the tenant repeats its name
# controls (C0, C1), line and paragraph separators, bidirectional overrides (a name that
# reads as another); a comma is how HTTP joins repeated headers
_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069,]")


def check_tenant(name: str) -> str:
    """A tenant name in Unicode's composed form (NFC: the same Korean name typed on two
    systems is one tenant), or a 400 that says what is wrong with it."""
    name = unicodedata.normalize("NFC", name)
    if len(name) > MAX_TENANT:
        raise BadRequestData(
            f"a tenant name is at most {MAX_TENANT} characters; NGSILD-Tenant holds {len(name)}"
        )
    bad = _BAD.search(name)
    if bad:
        what = "a comma (two tenants?)" if bad.group() == "," else "a control character"
        raise BadRequestData(f"the tenant name {name!r} holds {what}")
    return name


@functools.lru_cache(maxsize=1024)
def tenant_from_header(raw: bytes) -> str:
    """The NGSILD-Tenant header's bytes as a name: UTF-8, as clients send it and as the
    command line and notifications spell it (read as latin-1, 'café' became 'cafÃ©')."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestData("NGSILD-Tenant is not UTF-8 text") from None
    return check_tenant(name)


def tenant_option(value: str) -> str:
    """`--tenant` of the command-line tools: the same rule as the header, as a usage error."""
    try:
        return check_tenant(value)
    except BadRequestData as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None
