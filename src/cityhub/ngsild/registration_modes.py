"""What a registration's mode asks of the rest of it when it is stored (clause 4.3.6): the
rules that need no forwarding, checked on create and on any update naming mode, operations or
information, so that a registration the hub shows is one a distributed broker could honour."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cityhub.ngsild.errors import BadRequestData

# Operations that write context (clause 4.20: updateOps, redirectionOps and the provision
# operations they group). An auxiliary source only answers retrievals (4.3.6.2).
WRITE_OPERATIONS = frozenset(
    {
        "updateOps",
        "redirectionOps",
        "createEntity",
        "updateEntity",
        "appendAttrs",
        "updateAttrs",
        "deleteAttrs",
        "deleteEntity",
        "mergeEntity",
        "replaceEntity",
        "replaceAttrs",
        "purgeEntity",
        "createBatch",
        "upsertBatch",
        "updateBatch",
        "deleteBatch",
        "mergeBatch",
        "upsertTemporal",
        "appendAttrsTemporal",
        "deleteAttrsTemporal",
        "updateAttrsTemporal",
        "deleteAttrInstanceTemporal",
        "deleteTemporal",
    }
)
# The members whose change can break a rule below.
MODE_MEMBERS = ("mode", "operations", "information")


def _auxiliary(doc: Mapping[str, Any]) -> None:
    """An auxiliary registration offers no write operation (4.3.6.2, 5.9.2.4)."""
    writes = [op for op in doc.get("operations", ()) if op in WRITE_OPERATIONS]
    if writes:
        raise BadRequestData(
            f"an auxiliary registration is only used for retrieval; it cannot offer "
            f"{', '.join(writes)}"
        )


def _exclusive(doc: Mapping[str, Any]) -> None:
    """An exclusive registration names the Attributes of single Entities: every information
    item gives entities, each by id (no idPattern, no type alone), and attribute names
    (4.3.6.3)."""
    for info in doc.get("information", ()):
        entities = info.get("entities")
        if not entities or any("id" not in ent for ent in entities):
            raise BadRequestData(
                "an exclusive registration names each entity by id (not by idPattern or by "
                "type alone) in every information item"
            )
        if not info.get("propertyNames") and not info.get("relationshipNames"):
            raise BadRequestData(
                "an exclusive registration names the attributes it holds (propertyNames or "
                "relationshipNames) in every information item"
            )


def check_mode(doc: Mapping[str, Any]) -> None:
    """A stored-form registration's mode rules, or a BadRequestData naming the broken one."""
    mode = doc.get("mode")
    if mode == "auxiliary":
        _auxiliary(doc)
    elif mode == "exclusive":
        _exclusive(doc)


__all__ = ["MODE_MEMBERS", "WRITE_OPERATIONS", "check_mode"]
