import httpx, sys, collections
B = "http://127.0.0.1:18140/ngsi-ld/v1"; c = httpx.Client(timeout=60); CT={"Content-Type":"application/json"}
st = collections.Counter(); first = {}
for k in range(400):
    ents = [{"id": f"urn:ngsi-ld:F:{k}:{i}", "type": "F", "blob": {"type": "Property", "value": "x" * 2000}} for i in range(100)]
    r = c.post(B + "/entityOperations/upsert", json=ents, headers=CT)
    st[r.status_code] += 1
    if r.status_code not in first: first[r.status_code] = (k, r.text[:300])
    if r.status_code >= 500 and st[r.status_code] > 5: break
print(st, first)
h = c.get("http://127.0.0.1:18140/health"); print(h.status_code, h.text)
r = c.get(B + "/entities/urn:ngsi-ld:F:0:0"); print("read", r.status_code)
r = c.patch(B + "/entities/urn:ngsi-ld:F:0:0/attrs", json={"blob": {"type":"Property","value":1}}, headers=CT); print("small patch", r.status_code, r.text[:300])
r = c.post(B + "/subscriptions", json={"type":"Subscription","entities":[{"type":"F"}],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}, headers=CT); print("sub", r.status_code, r.text[:300])
