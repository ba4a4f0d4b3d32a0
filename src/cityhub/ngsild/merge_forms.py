"""How a Merge Entity body is written (options/format=keyValues, lang=): read as the
normalized fragment it stands for, against the stored attributes (decision 027, addendum);
and the observedAt= it falls back on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cityhub.ngsild.context import TermMap, is_absolute_iri
from cityhub.ngsild.entity import (
    ENTITY_KEYS,
    NULL_URI,
    Attrs,
    Instance,
    check_uri,
    expand_name,
    is_geo_type,
)
from cityhub.ngsild.errors import BadRequestData


@dataclass(frozen=True)
class MergeForm:
    """The query parameters of Merge Entity (5.6.17) that say how its body is to be read."""

    key_values: bool = False
    lang: str | None = None  # the language of strings merged into a LanguageProperty
    observed_at: str | None = None  # for merged instances that had one and are given none


PLAIN = MergeForm()

# the members keyValues wraps an attribute's content in (render.simplified)
_WRAPPED = {"languageMap": "LanguageProperty", "vocab": "VocabProperty", "json": "JsonProperty"}


def as_fragment(body: Any, tm: TermMap, stored: Attrs | None, form: MergeForm) -> Any:
    """The body as a normalized (or concise) fragment; unchanged unless keyValues or lang."""
    if not (form.key_values or form.lang) or not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in ENTITY_KEYS:
            out[name] = value
            continue
        try:
            iri = expand_name(name, tm)
        except BadRequestData:  # expand_attrs refuses it, naming the attribute
            out[name] = value
            continue
        instances = (stored or {}).get(iri, [])
        if form.key_values:
            out[name] = _attribute(value, instances, form.lang)
        else:  # concise: a bare value is the default instance's
            out[name] = _in_language(value, _of_dataset(instances, None), form.lang) or value
    return out


def fill_observed_at(incoming: Attrs, stored: Attrs, form: MergeForm) -> None:
    """observedAt= (5.6.17): an instance merged into a stored one that had an observedAt, and
    given none, is observed then; it kept the old one, so new values stacked at an old time."""
    if form.observed_at is None:
        return
    for name, instances in incoming.items():
        for inst in instances:
            if inst.get("null") or "observedAt" in inst:
                continue
            old = _of_dataset(stored.get(name, []), inst.get("datasetId"))
            if old is not None and "observedAt" in old:
                inst["observedAt"] = form.observed_at


def _in_language(value: Any, target: Instance | None, lang: str | None) -> Instance | None:
    """A string (or a list of them) for a stored LanguageProperty, with lang=: that
    language's entry, the others kept (without lang= it is a Property, as before)."""
    if lang is None or target is None or target["type"] != "LanguageProperty":
        return None
    if not (isinstance(value, str) or _strings(value)) or value == NULL_URI:
        return None
    languages = dict(target["languageMap"])
    tag = next((t for t in languages if t.lower() == lang.lower()), lang)  # tags ignore case
    languages[tag] = value
    inst: Instance = {"type": "LanguageProperty", "languageMap": languages}
    if "datasetId" in target:
        inst["datasetId"] = target["datasetId"]
    return inst


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _attribute(value: Any, stored: Sequence[Instance], lang: str | None) -> Any:
    """One attribute's keyValues value: {"dataset": {...}} for several instances, as reads
    show them; else the value of the instance a read shows bare (its one instance, or the
    default one)."""
    if _is_dataset_form(value) and not _shown_as_dataset(stored):
        items = []
        for ds, item in value["dataset"].items():
            dataset = None if ds == "@none" else check_uri(ds, "datasetId")
            inst = _instance(item, _of_dataset(stored, dataset), lang)
            items.append(inst if dataset is None else {**inst, "datasetId": dataset})
        return items
    target = stored[0] if len(stored) == 1 else _of_dataset(stored, None)
    if value == NULL_URI and (target is None or "datasetId" not in target):
        return value
    inst = _instance(value, target, lang)
    if target is not None and "datasetId" in target:
        inst["datasetId"] = target["datasetId"]
    return inst


def _is_dataset_form(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.keys() == {"dataset"}
        and isinstance(value["dataset"], dict)
        and bool(value["dataset"])
    )


def _shown_as_dataset(stored: Sequence[Instance]) -> bool:
    """One Property whose value has the dataset form itself: a read shows it so, bare."""
    return (
        len(stored) == 1
        and stored[0]["type"] == "Property"
        and _is_dataset_form(stored[0]["value"])
    )


def _of_dataset(stored: Sequence[Instance], dataset: str | None) -> Instance | None:
    return next((i for i in stored if i.get("datasetId") == dataset), None)


def _instance(value: Any, target: Instance | None, lang: str | None) -> Instance:
    """One instance from its keyValues value: the stored instance's type where the value fits
    it (a Relationship stays one for a URI), else the type the value's form names."""
    kind = target["type"] if target is not None else None
    if value == NULL_URI:
        return {"type": "Property", "value": NULL_URI}
    if (entry := _in_language(value, target, lang)) is not None:
        return entry
    if kind == "Property":  # any value fits, an object too: reads show it bare
        return {"type": "Property", "value": value}
    if kind == "JsonProperty":  # any JSON fits; reads show it as {"json": ...}
        wrapped = isinstance(value, dict) and value.keys() == {"json"}
        return {"type": "JsonProperty", "json": value["json"] if wrapped else value}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _WRAPPED:
        member = next(iter(value))
        return {"type": _WRAPPED[member], member: value[member]}
    if kind == "Relationship" and _uris(value, single=True):
        return {"type": "Relationship", "object": value}
    if kind == "ListRelationship" and _uris(value, single=False):
        return {"type": "ListRelationship", "objectList": value}
    if kind == "ListProperty" and isinstance(value, list):
        return {"type": "ListProperty", "valueList": value}
    if kind == "VocabProperty" and _terms(value):
        return {"type": "VocabProperty", "vocab": value}
    if isinstance(value, dict) and is_geo_type(value.get("type")):
        return {"type": "GeoProperty", "value": value}
    return {"type": "Property", "value": value}


def _terms(value: Any) -> bool:
    """A term or a non-empty list of them: what a VocabProperty holds."""
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, str) and v for v in items)


def _uris(value: Any, *, single: bool) -> bool:
    """A URI (when single) or a non-empty list of them: what a relationship's object is."""
    if isinstance(value, str):
        return single and is_absolute_iri(value)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and is_absolute_iri(v) for v in value)
    )
