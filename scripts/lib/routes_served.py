"""Waits until the edge router serves every HTTP route of compose files (any answer but
Traefik's own 404: the router exists, as `sprocketctl up` waits for), for the benchmark's
baseline. Usage: routes_served.py PORT FILE...; prints the route count."""
import re
import sys
import time
import urllib.error
import urllib.request

import yaml

port, files = sys.argv[1], sys.argv[2:]
routes = set()
for f in files:
    doc = yaml.safe_load(open(f)) or {}
    for svc in (doc.get("services") or {}).values():
        labels = (svc.get("deploy") or {}).get("labels") or {}
        for key, rule in labels.items():
            m = re.fullmatch(r"traefik\.http\.routers\.([^.]+)\.rule", key)
            if not m or "web" not in labels.get(f"traefik.http.routers.{m[1]}.entrypoints", ""):
                continue
            path = (re.findall(r"PathPrefix\(`([^`]*)`\)", rule) or ["/"])[0]
            for host in re.findall(r"Host\(`([^`]*)`\)", rule):
                routes.add((host, path))


def served(host, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=2):
            return True
    except urllib.error.HTTPError as e:
        return not (e.code == 404 and e.read().decode(errors="replace").rstrip() == "404 page not found")
    except OSError:
        return False


pending = set(routes)
deadline = time.time() + 60
while pending and time.time() < deadline:
    pending = {r for r in pending if not served(*r)}
    if pending:
        time.sleep(0.1)
if pending:
    sys.exit(f"not served after 60 s: {sorted(pending)}")
print(len(routes))
