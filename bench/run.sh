#!/usr/bin/env bash
# One command for the benchmark suite: builds the release binaries, installs etcd (Debian's
# etcd-server) when it is missing, runs discovery-bench's single-node, replication,
# anti-entropy and fleet benchmarks and the criterion benches of the hot paths, and writes
# a markdown report to stdout and to bench/results-<date>.md.
#
#   bench/run.sh            full run, about 11 minutes after the build
#   bench/run.sh --quick    smoke test, about 4 minutes after the build
#   bench/run.sh --no-etcd  without the etcd baseline
#
# Every server runs on loopback (127.0.0.0/8) and every load is bounded in time; each
# benchmark also runs under `timeout`. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
etcd=true
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    --no-etcd) etcd=false ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

note() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }

note "build"
build_command="cargo build --release -p discovery-bench -p discovery-cluster"
$build_command >&2

if $etcd && ! command -v etcd >/dev/null; then
  note "etcd is missing: installing Debian's etcd-server"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >&2
  else
    echo "not root: cannot install etcd-server; running without the etcd baseline" >&2
  fi
fi
if $etcd && ! command -v etcd >/dev/null; then
  etcd=false
fi

bench=target/release/discovery-bench
single_args=()
replication_args=()
if $quick; then
  single_args+=(--quick)
  replication_args+=(--nodes 200 --probes 40 --bootstrap-entries 2000)
fi
if ! $etcd; then
  single_args+=(--no-etcd)
fi
single_command="$bench single-node${single_args[*]:+ ${single_args[*]}}"
replication_command="$bench replication${replication_args[*]:+ ${replication_args[*]}}"
anti_entropy_command="$bench anti-entropy --entries 10000 --divergence 1000"
if $quick; then
  fleet_command="$bench fleet --sizes 2000 --duration 10 --memory-at 10000"
  criterion_time=1
else
  fleet_command="$bench fleet --sizes 5000,10000,20000,25000 --duration 30 --memory-at 100000"
  criterion_time=3
fi
# Only the criterion targets: the libraries' own test harnesses reject criterion's flags.
criterion_command="cargo bench -p discovery-store -p discovery-server -p discovery-replicator --bench store --bench lookup --bench batch -- --warm-up-time 1 --measurement-time $criterion_time"

# Cores busy over 2 s (every process plus the kernel's softirq work), from /proc/stat.
busy_cores() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 2
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    busy = (y[2]-x[2]) + (y[3]-x[3]) + (y[4]-x[4]) + (y[7]-x[7]) + (y[8]-x[8]);
    printf "%.2f", busy / hz / 2 }'
}

# Other work on this machine (builds, test suites) shares the cores being measured: wait
# up to 90 s for a quiet moment, then go ahead either way and say so in the report.
note "waiting (at most 90 s) for the machine to be quiet"
quiet_deadline=$(( SECONDS + 90 ))
background=$(busy_cores)
while awk -v b="$background" 'BEGIN { exit !(b > 0.25) }' && (( SECONDS < quiet_deadline )); do
  echo "  $background cores busy with other work; waiting" >&2
  background=$(busy_cores)
done
echo "  $background cores busy with other work" >&2

date_utc=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD)
# Uncommitted changes to what the binaries are built from.
dirty=$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
if [[ -n $dirty ]]; then
  commit="$commit\` plus uncommitted changes to \`${dirty% }"
fi
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
report=$(mktemp)
criterion_log=$(mktemp)
trap 'rm -f "$report" "$criterion_log"' EXIT

{
  echo "# Benchmark results"
  echo
  echo "Date: $date_utc. Commit: \`$commit\`. \`nproc\`: $(nproc) (${cpu_model:-unknown CPU}, $mem)."
  echo "Kernel: \`$(uname -r)\`. Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg);"
  echo "cores busy with other work just before the run: $background (after waiting at most 90 s for under 0.25)."
  if $etcd; then
    echo "etcd: \`$(etcd --version 2>/dev/null | head -1)\` ($(command -v etcd))."
  fi
  echo
  echo "Every process (servers and load generator) shares the same cores, on loopback."
  echo "Compare numbers taken in the same run."
  echo
  echo "Commands, from the repository root:"
  echo
  echo '```sh'
  echo "$build_command"
  echo "$single_command"
  echo "$replication_command"
  echo "$anti_entropy_command"
  echo "$fleet_command"
  echo "$criterion_command"
  echo '```'
  echo
} >>"$report"

# Runs one benchmark under a time limit; its markdown goes into the report.
run() {
  local limit=$1
  shift
  note "$*"
  local started=$SECONDS
  if timeout --kill-after=10 "$limit" "$@" >>"$report"; then
    echo >>"$report"
    echo "_($(( SECONDS - started )) s)_" >>"$report"
  else
    local status=$?
    echo >>"$report"
    echo "**\`$*\` failed (exit $status; 124 means it ran out of its ${limit} s).**" >>"$report"
  fi
  echo >>"$report"
}

# shellcheck disable=SC2086
run 420 $single_command
# shellcheck disable=SC2086
run 150 $replication_command
# shellcheck disable=SC2086
run 60 $anti_entropy_command
# shellcheck disable=SC2086
run 900 $fleet_command

# Hot paths (criterion): the median of each benchmark as one table row.
note "$criterion_command"
{
  echo "### Hot paths (criterion, median time per iteration)"
  echo
  echo "| Benchmark | Median |"
  echo "|---|--:|"
  # shellcheck disable=SC2086
  if ! timeout 900 $criterion_command 2>"$criterion_log" \
    | awk '/^[a-z]+\// { name = $0; sub(/ +time:.*/, "", name) }
           /time:/ { if (name != "") { printf "| %s | %s %s |\n", name, $(NF-3), $(NF-2); name = "" } }'; then
    echo
    echo "**\`$criterion_command\` failed; the end of its output:**"
    echo
    echo '```'
    tail -5 "$criterion_log"
    echo '```'
  fi
  echo
} >>"$report"

mkdir -p bench
out="bench/results-$date_utc.md"
cp "$report" "$out"
cat "$report"
note "report written to $out"
