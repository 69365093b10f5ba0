#!/usr/bin/env bash
# The cold-start and per-request benchmark (docs/benchmark.md). Builds what it measures:
# the release binaries of every function and of a bare lambda_runtime hello-world (same
# profile), and their arm64 zips with cargo lambda (pinned into .venv, as
# scripts/build-lambdas.sh does); then runs each binary through the repo's Runtime API
# emulator against moto on 127.0.0.1 and prints the table. Options go to the bench binary
# (--cold N, --warm N, --only a,b; see infra/src/bin/bench.rs). BENCH_SKIP_BUILD=1 measures
# what is already built. Then the booking contention row (tests/bin/contention.rs). Not a
# test: times and sizes depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bins=$(sed -n 's/.*BuildProperties: { Binary: \([a-z0-9-]*\) }.*/\1/p' template.yaml)
packages=(-p bench-hello)
for b in $bins; do packages+=(-p "$b"); done
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  if [ ! -x .venv/bin/cargo-lambda ]; then
    echo "bench: installing cargo-lambda and zig into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "cargo-lambda==1.9.2" "ziglang==0.13.0.post1"
  fi
  echo "bench: release build (host) of ${packages[*]}"
  cargo build --quiet --release "${packages[@]}"
  echo "bench: arm64 zips (cargo lambda build --release --arm64)"
  PATH="$PWD/.venv/bin:$PATH" cargo lambda build --quiet --release --arm64 --output-format zip "${packages[@]}"
fi
# The drivers (emulator, local stack) in the dev profile: their speed is not measured.
cargo build --quiet -p infra --bin bench -p integration-tests --bin contention
"$CARGO_TARGET_DIR/debug/bench" --bin "$CARGO_TARGET_DIR/release" --zips "$CARGO_TARGET_DIR/lambda" "$@"
echo
# The booking row: 50 customers over 10 astrologers through the local API, next to the raw
# rate of the same transaction shape, then every money invariant (BENCH_CONTENTION_SECONDS).
"$CARGO_TARGET_DIR/debug/contention" --seconds "${BENCH_CONTENTION_SECONDS:-20}"
echo
# The live chat row: 50 sessions talking at once over the local WebSocket API, delivery
# times beside a raw PostToConnection round trip, then every message stored once
# (BENCH_CHAT_SESSIONS, BENCH_CHAT_MESSAGES per session; tests/bin/chat.rs).
cargo build --quiet -p integration-tests --bin chat
"$CARGO_TARGET_DIR/debug/chat" --sessions "${BENCH_CHAT_SESSIONS:-50}" --messages "${BENCH_CHAT_MESSAGES:-20}"
