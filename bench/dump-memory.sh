#!/usr/bin/env bash
# Peak RSS of discoveryd while 4 clients dump a ~90 MB dynamic store at once (130
# announcements of 700 KB). Usage: bench/dump-memory.sh target/release/discoveryd
set -euo pipefail
bin="$1"; dir=$(mktemp -d)
"$bin" --set http-server.http.port=0 --set node.bind-ip=127.0.0.1 --set readiness.warm-up=0s \
  --set discovery.max-age=1h --set store.data-dir="$dir/data" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do grep -q "listening on" "$dir/log" && break; sleep 0.1; done
port=$(grep -o "127.0.0.1:[0-9]*" "$dir/log" | head -1)
python3 - "$port" <<'PY'
import json, sys, uuid, urllib.request
port = sys.argv[1]
blob = "x" * 700_000
for i in range(130):
    body = json.dumps({"environment": "test", "pool": "general", "services": [
        {"id": str(uuid.uuid4()), "type": "t", "properties": {"blob": blob}}]}).encode()
    req = urllib.request.Request(f"http://{port}/v1/announcement/n{i}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
hwm() { grep VmHWM /proc/$pid/status | awk '{print $2}'; }
rss() { grep VmRSS /proc/$pid/status | awk '{print $2}'; }
before_rss=$(rss); before_hwm=$(hwm)
size=$(curl -s http://$port/v1/store/dynamic | wc -c)
pids=(); for _ in 1 2 3 4; do curl -s -o /dev/null http://$port/v1/store/dynamic & pids+=($!); done; wait "${pids[@]}"
after_hwm=$(hwm)
echo "dump bytes=$size rss_before_kB=$before_rss hwm_before_kB=$before_hwm hwm_after_4_dumps_kB=$after_hwm added_MB=$(( (after_hwm - before_hwm) / 1024 ))"
kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"
