#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds each (default 60), starting from a copy of
# its committed seed corpus (fuzz/corpus/<target>/seed-*), so the tree is not touched.
# Exits non-zero if a target crashes, panics, leaks, times out or runs out of memory, and
# prints where libFuzzer left the reproducer (fuzz/artifacts/<target>/).
#
#   bash fuzz/run.sh          # 60 s per target
#   bash fuzz/run.sh 600      # longer
#   FUZZ_TARGETS="store_batch_json" bash fuzz/run.sh 300   # only some targets
#
# Replay one input:   cd fuzz && cargo +nightly fuzz run <target> <file>
# Shrink a crash:     cd fuzz && cargo +nightly fuzz tmin <target> <file>
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "nightly is missing: installing it with rustup"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: installing it"
  cargo install cargo-fuzz --locked
fi
cargo +nightly --version
cargo +nightly fuzz --version

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"

echo "building the fuzz targets ($(date -u +%H:%M:%S))"
build_start=$SECONDS
cargo +nightly fuzz build
echo "built in $((SECONDS - build_start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in $targets; do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  if [[ -d "corpus/$target" ]]; then
    cp corpus/"$target"/seed-* "$corpus"/ 2>/dev/null || true
  fi
  # Reproducers already kept under regressions/ are run first as seeds: a fixed one
  # passes, an unfixed one fails the run at once.
  if [[ -d "regressions/$target" ]]; then
    cp regressions/"$target"/* "$corpus"/ 2>/dev/null || true
  fi
  marker="$work/$target.start"
  touch "$marker"
  log="$work/$target.log"
  echo
  echo "=== fuzz $target for ${seconds} s ($(date -u +%H:%M:%S))"
  status=0
  # -timeout: one input that takes longer than this is reported as a hang.
  cargo +nightly fuzz run "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=30 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
  if [[ $status -eq 0 ]]; then
    runs="$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")"
    secs="$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")"
    cov="$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)"
    echo "ok: ${runs:-?} runs in ${secs:-?} s ($cov)"
    summary+=("ok    $target: ${runs:-?} runs in ${secs:-?} s ($cov)")
  else
    tail -n 60 "$log"
    reproducers="$(find "artifacts/$target" -type f -newer "$marker" 2>/dev/null || true)"
    echo "FAILED: $target (exit $status)"
    if [[ -n "$reproducers" ]]; then
      while read -r file; do
        echo "reproducer: fuzz/$file"
        echo "  base64: $(base64 -w0 "$file" | head -c 2000)"
        echo "  replay: cd fuzz && cargo +nightly fuzz run $target $file"
      done <<<"$reproducers"
    fi
    summary+=("FAIL  $target: exit $status, reproducer(s): ${reproducers:-none written (see the log above)}")
    failed+=("$target")
  fi
done

echo
echo "=== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "${#failed[@]} target(s) failed: ${failed[*]}"
  exit 1
fi
echo "all ${#summary[@]} targets ran clean"
