#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeded from tests/fixtures, on stable
# Rust (RUSTC_BOOTSTRAP lets cargo-fuzz's nightly flags through; no sanitizer). Prints the
# executions of each target; a crash leaves its input under fuzz/artifacts/ and fails the run.
#   cargo install cargo-fuzz --locked; fuzz/run.sh 60
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in callback answer door_request merchant_request routes_yaml; do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  for f in ../tests/fixtures/*/*; do
    case "$f" in *.md|*/cases.json) ;; *) cp "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")" ;; esac
  done
  [ "$target" = routes_yaml ] && cp ../routes.yaml "$corpus/seed-routes.yaml"
  cargo fuzz run --sanitizer none "$target" "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E "stat::number_of_executed_units|Done|ERROR|panicked" | sed "s/^/$target: /"
done
