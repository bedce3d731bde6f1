#!/usr/bin/env bash
# Request latency while 240,000 dynamic entries expire at the same millisecond and GC
# removes them. The entries are written through POST /v1/store/dynamic with one timestamp
# and a 30 s max age, so they expire together; GC runs every 5 s. A probe sends a small
# lookup and a renewal of its own node, one after the other on one keep-alive connection
# each, from 2 s before the expiry until the store is empty (at most 90 s), and prints
# the latency percentiles of those requests and how long GC took.
# Usage: bench/expiry-stall.sh target/release/discoveryd [ENTRIES]
set -euo pipefail
bin="$1"; entries="${2:-240000}"; dir=$(mktemp -d)
"$bin" --set http-server.http.port=0 --set node.bind-ip=127.0.0.1 --set readiness.warm-up=0s \
  --set dynamic.store.gc-interval=5s --set dynamic.store.max-entries=300000 \
  --set store.data-dir="$dir/data" > "$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$dir/log" && break; sleep 0.1; done
port=$(grep -o "127.0.0.1:[0-9]*" "$dir/log" | head -1)
python3 - "$port" "$entries" <<'PY'
import base64, http.client, json, re, sys, time, uuid

host, port = sys.argv[1].split(":")
count = int(sys.argv[2])
max_age_ms = 30_000

def b64(data):
    return base64.b64encode(data).decode()

def connection():
    return http.client.HTTPConnection(host, int(port), timeout=30)

def stored():
    c = connection()
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    match = re.search(r'discovery_store_entries\{store="dynamic",state="live"\} (\d+)', text)
    return int(match.group(1)) if match else -1

# One timestamp for every entry: they all expire at stamp + max age.
stamp = int(time.time() * 1000)
writer = connection()
batch = []
loaded_at = time.time()
for i in range(count):
    node = f"expiring-{i}"
    services = [{"id": str(uuid.uuid4()), "nodeId": node, "type": "bulk", "pool": "general",
                 "location": "/bulk", "properties": {"http": f"http://10.0.{i % 250}.{i % 200}:8080"}}]
    batch.append({"key": b64(node.encode()), "value": b64(json.dumps(services).encode()),
                  "version": {"sequence": stamp}, "timestamp": stamp, "maxAgeInMs": max_age_ms})
    if len(batch) == 2000 or i == count - 1:
        writer.request("POST", "/v1/store/dynamic", json.dumps(batch),
                       {"Content-Type": "application/json"})
        reply = writer.getresponse()
        reply.read()
        if reply.status != 204:
            sys.exit(f"POST /v1/store/dynamic answered {reply.status}")
        batch = []
print(f"loaded {stored()} entries in {time.time() - loaded_at:.1f} s")

expiry = stamp / 1000 + max_age_ms / 1000
while time.time() < expiry - 2:
    time.sleep(0.05)

probe = json.dumps({"environment": "test", "pool": "general",
                    "services": [{"id": str(uuid.uuid4()), "type": "probe", "properties": {}}]})
lookups, renewals = connection(), connection()
latencies = []
slowest = []
gc_done = None
started = time.time()
while time.time() - started < 90:
    for conn, method, path, body in ((lookups, "GET", "/v1/service/probe", None),
                                      (renewals, "PUT", "/v1/announcement/probe-node", probe)):
        sent = time.perf_counter()
        conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
        reply = conn.getresponse()
        reply.read()
        latencies.append(time.perf_counter() - sent)
        slowest.append((latencies[-1], time.time() - expiry, method))
        if reply.status not in (200, 202):
            sys.exit(f"{method} {path} answered {reply.status}")
    if len(latencies) % 200 == 0 and time.time() > expiry + 1 and stored() <= 1:
        gc_done = time.time()
        break

latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000
print(f"requests={len(latencies)} p50={pct(0.50):.2f}ms p99={pct(0.99):.2f}ms "
      f"p99.9={pct(0.999):.2f}ms max={latencies[-1] * 1000:.2f}ms")
slowest.sort(reverse=True)
print("slowest: " + ", ".join(f"{m} {l * 1000:.0f}ms at expiry{t:+.1f}s" for l, t, m in slowest[:5]))
if gc_done:
    print(f"store empty {gc_done - expiry:.1f} s after the expiry (GC every 5 s)")
else:
    print("store not empty after 90 s")
PY
