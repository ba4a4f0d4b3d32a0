"""Output side of the information model: stored entities back to normalized, concise or
keyValues form in the caller's @context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.entity import CONTENT_KEY, Instance, is_geo_type
from cityhub.ngsild.languages import choose_language, pick_language

FORMATS = ("normalized", "concise", "keyValues")


@dataclass(frozen=True)
class RenderOptions:
    """How the caller asked to see entities."""

    format: str = "normalized"
    sys_attrs: bool = False
    lang: str | None = None
    pick: frozenset[str] | None = None  # IRIs of attributes to keep (attrs/pick)
    omit: frozenset[str] = frozenset()  # IRIs to drop
    pick_fields: frozenset[str] = frozenset({"id", "type"})  # entity members kept with pick
    dataset_ids: frozenset[str] | None = None


def render_entity(doc: dict[str, Any], tm: TermMap, opts: RenderOptions) -> dict[str, Any]:
    """One stored entity in the requested representation."""
    if opts is DEFAULT:
        return _render_default(doc, tm)
    out: dict[str, Any] = {}
    if "id" in opts.pick_fields and "id" not in opts.omit:
        out["id"] = doc["id"]
    if "type" in opts.pick_fields and "type" not in opts.omit:
        types = [tm.compact(t) for t in doc["type"]]
        out["type"] = types[0] if len(types) == 1 else types
    if (
        "scope" in doc
        and "scope" not in opts.omit
        and (opts.pick is None or "scope" in opts.pick_fields)
    ):
        scope = doc["scope"]
        out["scope"] = scope[0] if len(scope) == 1 else scope
    for iri, instances in doc["attrs"].items():
        if opts.pick is not None and iri not in opts.pick:
            continue
        if iri in opts.omit:
            continue
        chosen = instances
        if opts.dataset_ids is not None:
            chosen = of_datasets(instances, opts.dataset_ids)
            if not chosen:
                continue
        out[tm.compact(iri)] = render_attribute(chosen, tm, opts)
    if opts.sys_attrs:  # the entity's times in every format (6.3.11), keyValues too
        for key in ("createdAt", "modifiedAt", "deletedAt"):
            picked = opts.pick is None or key in opts.pick_fields
            if key in doc and picked and key not in opts.omit:
                out[key] = doc[key]
    return out


def of_datasets(instances: list[Instance], dataset_ids: frozenset[str]) -> list[Instance]:
    """The instances of the datasetIds a datasetId= parameter names ("@none": the default)."""
    return [instances[i] for i in dataset_positions(instances, dataset_ids)]


def dataset_positions(instances: list[Instance], dataset_ids: frozenset[str] | None) -> list[int]:
    """Where those instances are in the attribute's list (all of them without a filter)."""
    return [
        i
        for i, inst in enumerate(instances)
        if dataset_ids is None or inst.get("datasetId", "@none") in dataset_ids
    ]


DEFAULT = RenderOptions()  # normalized, no sysAttrs, nothing picked: most reads


def _render_default(doc: dict[str, Any], tm: TermMap) -> dict[str, Any]:
    """render_entity with DEFAULT options, without the option checks (the read hot path)."""
    types = doc["type"]
    out: dict[str, Any] = {
        "id": doc["id"],
        "type": tm.compact(types[0]) if len(types) == 1 else [tm.compact(t) for t in types],
    }
    if "scope" in doc:
        scope = doc["scope"]
        out["scope"] = scope[0] if len(scope) == 1 else scope
    compact = tm.compact
    for iri, instances in doc["attrs"].items():
        if len(instances) == 1:
            out[compact(iri)] = render_instance(instances[0], tm, DEFAULT)
        else:
            out[compact(iri)] = [render_instance(i, tm, DEFAULT) for i in instances]
    return out


def render_attribute(instances: list[Instance], tm: TermMap, opts: RenderOptions) -> Any:
    """An attribute: one instance alone, several as a list; keyValues maps several by
    datasetId, the default one as "@none" (4.5.4): {"dataset": {"@none": 55, ds: 54.5}}."""
    if opts.format == "keyValues":
        if len(instances) == 1:
            return simplified(instances[0], tm, opts.lang)
        return {
            "dataset": {
                i.get("datasetId", "@none"): simplified(i, tm, opts.lang) for i in instances
            }
        }
    if len(instances) == 1:
        return render_instance(instances[0], tm, opts)
    return [render_instance(i, tm, opts, alone=False) for i in instances]


def key_value(inst: Instance, tm: TermMap, lang: str | None) -> Any:
    """The bare value keyValues shows for one instance."""
    typ = inst["type"]
    content = inst[CONTENT_KEY[typ]]
    if typ == "VocabProperty":
        return _terms(content, tm)
    if typ == "LanguageProperty" and lang is not None:
        return pick_language(content, lang)
    return content


def _terms(vocab: Any, tm: TermMap) -> Any:
    """A VocabProperty's stored IRIs as the terms the caller's @context gives them."""
    return [tm.compact(v) for v in vocab] if isinstance(vocab, list) else tm.compact(vocab)


def shown_content(typ: str, content: Any, tm: TermMap, lang: str | None) -> tuple[str, Any]:
    """The member and the content an instance of this type shows in normalized and concise
    form: a vocab as terms, objectList items as {"object": URI}, a languageMap read with
    lang= as the chosen string under "value"; a notification shows a previous content so too
    (a deletion's marker, no map or list, as it is)."""
    if typ == "VocabProperty":
        return "vocab", _terms(content, tm)
    if typ == "LanguageProperty" and lang is not None and isinstance(content, dict):
        return "value", pick_language(content, lang)
    if typ == "ListRelationship" and isinstance(content, list):
        return "objectList", [{"object": o} for o in content]
    return CONTENT_KEY[typ], content


_WRAPPED = {"LanguageProperty": "languageMap", "VocabProperty": "vocab", "JsonProperty": "json"}


def simplified(inst: Instance, tm: TermMap, lang: str | None) -> Any:
    """One instance in the simplified (keyValues) form: a Property's value or a
    Relationship's object bare; a language map (without lang=), a vocabulary term and a JSON
    value under their member name, so a client can tell them from a Property's object value,
    as the temporal simplified form shows them."""
    value = key_value(inst, tm, lang)
    member = _WRAPPED.get(inst["type"])
    if member is None or (lang is not None and member == "languageMap"):
        return value
    return {member: value}


_PLAIN_TYPES = frozenset(
    {"Property", "GeoProperty", "Relationship", "ListProperty", "JsonProperty"}
)


def _without_system(inst: Instance) -> Instance:
    """A copy without createdAt/modifiedAt (copy-and-pop: 5x a filtering dict comprehension)."""
    out = inst.copy()
    out.pop("createdAt", None)
    out.pop("modifiedAt", None)
    return out


def render_instance(inst: Instance, tm: TermMap, opts: RenderOptions, *, alone: bool = True) -> Any:
    """One instance in normalized or concise form (not `alone`: one of a multi-attribute's)."""
    typ = inst["type"]
    if (
        opts.format == "normalized"
        and not opts.sys_attrs
        and typ in _PLAIN_TYPES
        and "sub" not in inst
        and "objectType" not in inst
    ):
        # the common case: the stored instance minus its system members, in stored order
        return _without_system(inst)
    content = inst[CONTENT_KEY[typ]]
    out: dict[str, Any]
    if typ == "LanguageProperty" and opts.lang is not None and isinstance(content, dict):
        tag = choose_language(content, opts.lang)  # once: the tag shown and its string
        key, out = "value", {"type": "Property", "value": content.get(tag), "lang": tag}
    else:
        key, shown = shown_content(typ, content, tm, opts.lang)
        out = {"type": typ, key: shown}
    if typ in ("Relationship", "ListRelationship") and "objectType" in inst:
        ot = inst["objectType"]
        out["objectType"] = [tm.compact(t) for t in ot] if isinstance(ot, list) else tm.compact(ot)
    for meta in ("observedAt", "unitCode", "datasetId"):
        if meta in inst:
            out[meta] = inst[meta]
    if opts.sys_attrs:
        for meta in ("createdAt", "modifiedAt"):
            if meta in inst:
                out[meta] = inst[meta]
    for iri, sub in inst.get("sub", {}).items():
        out[tm.compact(iri)] = render_instance(sub, tm, opts)
    if opts.format == "concise":
        return _concise(out, key, alone)
    return out


def concise(normalized: dict[str, Any]) -> Any:
    """A normalized instance (with whatever members were added to it) in concise form."""
    out = dict(normalized)
    return _concise(out, CONTENT_KEY[out["type"]], True)


def _concise(out: dict[str, Any], key: str, alone: bool) -> Any:
    """Concise form drops the type where the content implies it, so that a concise write
    of the answer stores the same attribute: a plain value with nothing beside it stands
    bare, except in a multi-attribute's list (a list with a bare item is one list value);
    a Property holding a geometry keeps its type (else it would read as a GeoProperty)."""
    typ = out.pop("type")
    if typ == "Property" and isinstance(out.get("value"), dict):
        if is_geo_type(out["value"].get("type")):
            return {"type": typ, **out}
        return out
    if len(out) == 1 and key == "value" and not isinstance(out["value"], dict | list):
        return out["value"] if alone else out
    if typ == "GeoProperty" and len(out) == 1:
        return out["value"]
    return out
