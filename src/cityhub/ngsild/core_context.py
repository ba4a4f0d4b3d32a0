"""The NGSI-LD core @context (v1.8 term list), bundled so the hub never fetches it."""

from __future__ import annotations

from typing import Any

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
GEOJSON = "https://purl.org/geojson/vocab#"
DEFAULT_VOCAB = NGSI_LD + "default-context/"
CORE_CONTEXT_URL = NGSI_LD + "v1/ngsi-ld-core-context-v1.8.jsonld"
# Every published version of the core context resolves to the bundled copy.
CORE_VERSIONS = ("", "-v1.3", "-v1.4", "-v1.5", "-v1.6", "-v1.7", "-v1.8", "-v1.9")
CORE_CONTEXT_URLS = frozenset(NGSI_LD + f"v1/ngsi-ld-core-context{v}.jsonld" for v in CORE_VERSIONS)

_NGSI_TERMS = [
    "Attribute",
    "AttributeList",
    "ContextSourceIdentity",
    "ContextSourceList",
    "ContextSourceNotification",
    "ContextSourceRegistration",
    "Date",
    "DateTime",
    "EntityType",
    "EntityTypeInfo",
    "EntityTypeList",
    "GeoProperty",
    "JsonProperty",
    "LanguageProperty",
    "ListProperty",
    "ListRelationship",
    "Notification",
    "Property",
    "Relationship",
    "Subscription",
    "TemporalProperty",
    "Time",
    "VocabProperty",
    "accept",
    "attributeCount",
    "attributeDetails",
    "attributeList",
    "attributeName",
    "attributeNames",
    "attributeTypes",
    "attributes",
    "attrs",
    "avg",
    "cacheDuration",
    "containedBy",
    "contextSourceAlias",
    "contextSourceExtras",
    "contextSourceInfo",
    "cooldown",
    "csf",
    "data",
    "deletedAt",
    "detail",
    "distinctCount",
    "endAt",
    "endTimeAt",
    "endpoint",
    "entities",
    "entity",
    "entityCount",
    "entityId",
    "entityInfo",
    "entityList",
    "entityMap",
    "error",
    "errors",
    "expiresAt",
    "format",
    "geoQ",
    "geoproperty",
    "georel",
    "idPattern",
    "information",
    "instanceId",
    "isActive",
    "join",
    "joinLevel",
    "key",
    "lang",
    "lastFailure",
    "lastNotification",
    "lastSuccess",
    "localOnly",
    "location",
    "management",
    "managementInterval",
    "max",
    "min",
    "mode",
    "notification",
    "notificationTrigger",
    "notifiedAt",
    "notifierInfo",
    "notUpdated",
    "objectType",
    "observationInterval",
    "observationSpace",
    "operationSpace",
    "operations",
    "previousValue",
    "propertyNames",
    "q",
    "reason",
    "receiverInfo",
    "refreshRate",
    "registrationId",
    "registrationName",
    "relationshipNames",
    "scope",
    "scopeQ",
    "showChanges",
    "startAt",
    "status",
    "stddev",
    "subscriptionId",
    "subscriptionName",
    "success",
    "sum",
    "sumsq",
    "sysAttrs",
    "temporalQ",
    "tenant",
    "throttling",
    "timeAt",
    "timeInterval",
    "timeout",
    "timeproperty",
    "timerel",
    "timesFailed",
    "timesSent",
    "title",
    "totalCount",
    "triggerReason",
    "typeList",
    "typeName",
    "typeNames",
    "unchanged",
    "updated",
    "uri",
    "valueList",
    "values",
    "watchedAttributes",
]
_RENAMED = {
    "value": "hasValue",
    "object": "hasObject",
    "objectList": "hasObjectList",
    "valueList": "hasValueList",
    "languageMap": "hasLanguageMap",
    "vocab": "hasVocab",
    "json": "hasJSON",
}
_GEO_TERMS = [
    "Feature",
    "FeatureCollection",
    "GeometryCollection",
    "LineString",
    "MultiLineString",
    "MultiPoint",
    "MultiPolygon",
    "Point",
    "Polygon",
    "features",
    "geometry",
    "properties",
]
_DATETIMES = ("createdAt", "modifiedAt", "observedAt", "deletedAt", "expiresAt")


def build_core_context() -> dict[str, Any]:
    """The core context document as served at its canonical URL."""
    ctx: dict[str, Any] = {"ngsi-ld": NGSI_LD, "geojson": GEOJSON, "id": "@id", "type": "@type"}
    for term in _NGSI_TERMS:
        ctx[term] = f"ngsi-ld:{term}"
    for term, name in _RENAMED.items():
        ctx[term] = f"ngsi-ld:{name}"
    for term in _GEO_TERMS:
        ctx[term] = f"geojson:{term}"
    for term in _DATETIMES:
        ctx[term] = {"@id": f"ngsi-ld:{term}", "@type": "DateTime"}
    ctx["datasetId"] = {"@id": "ngsi-ld:datasetId", "@type": "@id"}
    ctx["unitCode"] = "ngsi-ld:unitCode"
    ctx["coordinates"] = {"@container": "@list", "@id": "geojson:coordinates"}
    ctx["bbox"] = {"@container": "@list", "@id": "geojson:bbox"}
    ctx["@vocab"] = DEFAULT_VOCAB
    return {"@context": ctx}


CORE_CONTEXT: dict[str, Any] = build_core_context()
