#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it with dpkg, runs the binary as the
# package lays it out (its user, its /etc/discovery config, its /var/lib/discovery data),
# announces and looks up through the packaged CLI, then purges the package and checks
# that nothing is left. Needs root (dpkg) and changes this machine while it runs: CI runs
# it on a throwaway machine (README, "Debian package").
#
#   bash deploy/debian/test-package.sh            build with cargo deb, then test
#   bash deploy/debian/test-package.sh FILE.deb   test an already built package
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "test-package: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (dpkg -i); run it on a throwaway machine or container"
command -v dpkg >/dev/null || fail "needs dpkg (a Debian or Ubuntu machine)"
command -v curl >/dev/null || fail "needs curl (apt-get install -y curl)"
dpkg -s discoveryd >/dev/null 2>&1 && fail "discoveryd is already installed here; remove it first (dpkg --purge discoveryd)"

deb="${1:-}"
if [[ -z "$deb" ]]; then
  if ! command -v cargo-deb >/dev/null; then
    echo "cargo-deb is missing: cargo install cargo-deb --locked"
    cargo install cargo-deb --locked
  fi
  cargo deb --locked
  deb="$(ls -t target/debian/discoveryd_*.deb | head -1)"
fi
echo "package: $deb ($(du -h "$deb" | cut -f1))"

work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  dpkg -s discoveryd >/dev/null 2>&1 && dpkg --purge discoveryd >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
on_error() { echo "--- discoveryd log"; cat "$work/log" 2>/dev/null || true; }
trap on_error ERR

check() { "$@" || fail "check failed: $*"; }

echo "=== dpkg -i"
dpkg -i "$deb"
check test -x /usr/bin/discoveryd
check test -x /usr/bin/discovery
check test -f /lib/systemd/system/discoveryd.service
check getent passwd discovery >/dev/null
[[ "$(stat -c '%U:%G %a' /var/lib/discovery)" == "discovery:discovery 750" ]] \
  || fail "/var/lib/discovery: $(stat -c '%U:%G %a' /var/lib/discovery)"
[[ "$(stat -c '%U:%G %a' /etc/discovery/config.properties)" == "root:discovery 640" ]] \
  || fail "/etc/discovery/config.properties: $(stat -c '%U:%G %a' /etc/discovery/config.properties)"
dpkg-query -W -f='${Conffiles}\n' discoveryd | grep -q /etc/discovery/config.properties \
  || fail "/etc/discovery/config.properties is not a conffile"
/usr/bin/discoveryd --version

echo "=== run as the unit does: user discovery, /etc/discovery config, /var/lib/discovery data"
# Only the listening address differs from the unit's: a loopback address and port 0, so
# the test never collides with anything on this machine.
(cd /var/lib/discovery && exec setpriv --reuid=discovery --regid=discovery --init-groups \
  /usr/bin/discoveryd --config /etc/discovery/config.properties \
  --set node.bind-ip=127.0.0.1 --set http-server.http.port=0) >"$work/log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 300); do
  addr="$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$work/log" | head -1)"
  [[ -n "$addr" ]] && break
  kill -0 "$pid" 2>/dev/null || fail "discoveryd exited: $(cat "$work/log")"
  sleep 0.1
done
[[ -n "$addr" ]] || fail "discoveryd did not listen within 30 s"
uri="http://$addr"
echo "listening on $uri"
# Readiness: the warm-up (10 s by default) before lookups are answered.
for _ in $(seq 600); do
  curl -fsS "$uri/v1/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$uri/v1/health/ready" >/dev/null || fail "not ready within 60 s"

/usr/bin/discovery --uri "$uri" announce --node-id pkg-worker-1 --type trino \
  --property http=http://127.0.0.1:8080
answer="$(curl -fsS "$uri/v1/service/trino/general")"
grep -q '"nodeId":"pkg-worker-1"' <<<"$answer" || fail "lookup does not list the announcement: $answer"
[[ "$(/usr/bin/discovery --uri "$uri" lookup trino --property http)" == "http://127.0.0.1:8080" ]] \
  || fail "the CLI's lookup does not find the announced URI"
[[ -n "$(find /var/lib/discovery/data -user discovery -type f | head -1)" ]] \
  || fail "no data written under /var/lib/discovery/data by the discovery user"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[[ $status -eq 0 ]] || fail "SIGTERM exit status $status"

echo "=== dpkg --purge"
dpkg --purge discoveryd
for path in /usr/bin/discoveryd /usr/bin/discovery /lib/systemd/system/discoveryd.service \
  /etc/discovery /var/lib/discovery /usr/share/doc/discoveryd; do
  [[ ! -e "$path" ]] || fail "$path is left after purge"
done
getent passwd discovery >/dev/null && fail "user discovery is left after purge"
getent group discovery >/dev/null && fail "group discovery is left after purge"
echo "the package installs, runs, answers and purges cleanly"
