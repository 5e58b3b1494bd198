#!/usr/bin/env python3
"""Re-verify a ledger's audit hash chain from the API (docs/audit.md).

usage: audit_verify.py URL LEDGER ADMIN_KEY   (or: audit_verify.py - < entries.json)
AUDIT_FROM=HASH starts from a head you kept, once retention deleted the entries before it.
"""
import hashlib, json, os, sys, urllib.request

def entries(url, ledger, key):
    after = ""
    while True:
        q = f"{url}/v1/ledgers/{ledger}/audit?limit=1000" + (f"&after={after}" if after else "")
        req = urllib.request.Request(q, headers={"Authorization": f"Bearer {key}"})
        page = json.load(urllib.request.urlopen(req))
        yield from page["data"]
        if not (after := page["next_cursor"]):
            return

FIELDS = ("action", "actor", "at", "id", "request_id", "status", "target")
src = json.load(sys.stdin) if sys.argv[1] == "-" else entries(*sys.argv[1:4])
prev, n = os.environ.get("AUDIT_FROM") or "0" * 64, 0
for e in src:
    if e["hash"] is None:
        break  # not chained yet; every later entry is unchained too
    canonical = json.dumps({k: e[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"))
    h = hashlib.sha256((prev + canonical).encode()).hexdigest()
    if e["prev_hash"] != prev or e["hash"] != h:
        sys.exit(f"MISMATCH at {e['id']}: prev_hash {e['prev_hash']} (want {prev}), hash {e['hash']} (want {h})")
    prev, n = h, n + 1
print(f"ok: {n} chained entries, head {prev}")
