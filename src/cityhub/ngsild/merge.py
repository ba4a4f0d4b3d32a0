"""Pure functions that combine stored attributes with incoming ones."""

from __future__ import annotations

from typing import Any

from cityhub.ngsild.entity import NULL_URI, TYPED_MEMBERS, Instance


def stamp(inst: Instance, now: str, created: str | None = None) -> Instance:
    """Set createdAt/modifiedAt on an instance (keeping an older createdAt), and on each
    sub-attribute that has none yet: a sub-attribute is written when its instance is."""
    inst["createdAt"] = created or now
    inst["modifiedAt"] = now
    subs = inst.get("sub")
    if subs:
        for sub in subs.values():
            if "createdAt" not in sub:
                stamp(sub, now)
    return inst


def without_nulls(inst: Instance) -> Instance:
    """An instance as written whole (new, or replacing one): a null sub-attribute or member
    (observedAt, unitCode, objectType) means "not there", so it is left out rather than
    stored as the marker; so does a language given as null in a languageMap."""
    for key in [k for k, v in inst.items() if v is None]:
        del inst[key]
    if inst.get("type") == "Property" and isinstance(inst.get("value"), dict):
        inst["value"] = merge_value(None, inst["value"])  # a merge's marked keys: not there
    if "languageMap" in inst:
        inst["languageMap"] = merge_languages({}, inst["languageMap"])
    subs = inst.get("sub")
    if subs:
        kept = {
            name: sub
            for name, sub in subs.items()
            if not sub.get("null") and not emptied(without_nulls(sub))
        }
        if kept:
            inst["sub"] = kept
        else:
            del inst["sub"]
    return inst


def merge_languages(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A languageMap merged key by key, as RFC 7396 merges an object: a tag given replaces
    that language's strings (tags compare without case, as lang= does), a tag given the null
    marker removes it, the others stay. Replacing the whole map lost every other translation,
    and the marker was stored as the text."""
    out = dict(stored)
    for tag, text in patch.items():
        for old in [t for t in stored if t.lower() == tag.lower()]:
            out.pop(old, None)
        if isinstance(text, list) and NULL_URI in text:
            text = [s for s in text if s != NULL_URI] or NULL_URI
        if text != NULL_URI:
            out[tag] = text
    return out


def merge_value(stored: Any, patch: Any) -> Any:
    """A Property's value merged as RFC 7396 merges JSON (5.5.12): an object patch sets the
    keys it gives (objects merged in turn), removes those given the null marker and keeps the
    others; anything else replaces the value. Replacing the object stored the marker as data."""
    if not isinstance(patch, dict):
        return patch
    out = dict(stored) if isinstance(stored, dict) else {}
    for key, value in patch.items():
        if value == NULL_URI:
            out.pop(key, None)
        else:
            out[key] = merge_value(out.get(key), value)
    return out


def emptied(inst: Instance) -> bool:
    """A LanguageProperty whose every language was removed: the instance goes, as it does
    when DELETE ?lang= removes its last string."""
    return inst.get("type") == "LanguageProperty" and inst.get("languageMap") == {}


def find(instances: list[Instance], dataset_id: str | None) -> int | None:
    """Index of the instance with this datasetId (None = the default instance)."""
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return None


def merge_members(doc: dict[str, Any], members: dict[str, Any]) -> None:
    """Merge-patch top-level members in place: a None value removes the member."""
    for key, value in members.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value


_CONTENT_MEMBERS = ("value", "object", "languageMap", "vocab", "valueList", "objectList", "json")


def merge_instance(
    old: Instance,
    new: Instance,
    now: str,
    *,
    by_language: bool = True,
    by_key: bool = False,
) -> Instance:
    """Merge-patch one instance: given members replace, absent ones stay, null ones (None,
    from the null marker) go, subs merge. A languageMap merges by language in a merge
    (5.6.17); a partial update (5.6.4) replaces it whole (by_language=False), as the ETSI
    suite's 012_04_01 expects. With by_key (a merge), a Property's JSON object value merges
    key by key (merge_value); a partial update replaces the value."""
    merged = {k: v for k, v in old.items() if k != "sub"}
    for key, value in new.items():
        if key == "sub":
            continue
        if value is None:
            merged.pop(key, None)
        elif key == "languageMap":
            same = old["type"] == "LanguageProperty" and by_language
            merged[key] = merge_languages(old.get(key, {}) if same else {}, value)
        elif key == "value" and by_key and new["type"] == "Property":
            merged[key] = merge_value(old.get(key) if old["type"] == "Property" else None, value)
        else:
            merged[key] = value
    if new["type"] != old["type"]:  # a new type keeps no member only the old one could have
        for key in (*_CONTENT_MEMBERS, *TYPED_MEMBERS):
            kinds = TYPED_MEMBERS[key][0] if key in TYPED_MEMBERS else ()
            if key in merged and key not in new and new["type"] not in kinds:
                del merged[key]
    subs = dict(old.get("sub", {}))
    for name, sub in new.get("sub", {}).items():
        if not sub.get("null"):
            sub = (
                merge_instance(subs[name], sub, now, by_language=by_language, by_key=by_key)
                if name in subs
                else without_nulls(sub)
            )
        if sub.get("null") or emptied(sub):
            subs.pop(name, None)
        else:
            subs[name] = sub
    if subs:
        merged["sub"] = subs
    return stamp(merged, now, old.get("createdAt"))
