"""Backend-neutral NGSI-LD query parsing (q, type, scopeQ, geoQ) and a reference evaluator."""
