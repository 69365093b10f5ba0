#!/usr/bin/env bash
# The reliability and security suite in full, then its figures (docs/reliability.md: "Reliability and
# security suite"): money invariants over random interleavings of every money path, faults
# at each money path and in the middle of event batches, the authorisation matrix, webhook
# attacks, privacy, every route fuzzed from the API contract, and a bounded load run.
# Everything on 127.0.0.1, against emulators this script starts; Rust in release (the local
# stack verifies every token's RSA signature, slow unoptimised). Over an hour here.
#
#   scripts/reliability.sh
#   RELIABILITY_RUNS=1000 RELIABILITY_FUZZ_EXAMPLES=20 RELIABILITY_FUZZ_SECONDS=1200 \
#     RELIABILITY_LOAD_SECONDS=180 scripts/reliability.sh          # the defaults
#
# CI runs its fast part on every change: the same tests inside scripts/test.sh (25 runs of the
# interleavings) and a fuzz of 10 cases per operation bounded to 90 s per token (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
runs="${RELIABILITY_RUNS:-1000}"
examples="${RELIABILITY_FUZZ_EXAMPLES:-20}"
fuzz_seconds="${RELIABILITY_FUZZ_SECONDS:-1200}"
load_seconds="${RELIABILITY_LOAD_SECONDS:-180}"
out="$(mktemp -d)"
started=$SECONDS

# The functions' JSON logs go to the tests' buffers; anything that still reaches the terminal
# as JSON is dropped, so the figures stand out.
figures() { grep --line-buffered -v '^{"timestamp' | tee -a "$out/all"; }

echo "== money invariants: $runs runs of random interleavings (MONEY_SEED replays one)"
MONEY_RUNS="$runs" cargo test -q --release -p integration-tests --test it -- --nocapture invariants:: 2>&1 | figures

echo "== faults, the authorisation matrix, privacy, the outbox under failures"
cargo test -q --release -p integration-tests --test it -- --nocapture faults:: authorization:: privacy:: outbox:: \
  2>&1 | figures

echo "== webhook attacks and consumers failing mid-batch"
# Unsigned, tampered, replayed and reordered webhooks (Razorpay and Digio), confirmations
# racing webhooks, refunds and chargebacks in any order, poison messages in a batch.
cargo test -q --release -p integration-tests --test it -- --nocapture \
  top_up::bad_signatures top_up::confirm_and_webhooks_racing_and_repeated top_up::payment_failed_and_captured_in_either_order \
  top_up::a_refund top_up::a_chargeback top_up::webhooks_not_ours kyc::unsigned_or_tampered kyc::webhooks_never_regress \
  notifications::poison 2>&1 | figures

echo "== every route fuzzed from the OpenAPI document ($examples cases per operation and token)"
FUZZ_EXAMPLES="$examples" FUZZ_SEED="${FUZZ_SEED:-$RANDOM}" FUZZ_MAX_TIME="$fuzz_seconds" scripts/fuzz-api.sh 2>&1 | figures

echo "== load: 200 customers, 20 astrologers, $load_seconds s, 30 s thinking between actions (release build)"
cargo run -q --release -p integration-tests --bin load -- --seconds "$load_seconds" 2>&1 | figures

echo
echo "== Reliability figures ($(( (SECONDS - started) / 60 )) min)"
grep -E '^\.*(money invariants|  answers|faults:|.*: the answer to its applied write|authorization matrix|privacy:|outbox relay|notifications consumer|[0-9]+ concurrent credits|Load:|  [0-9]+ requests|  route|  (GET|POST) |  invariants:)' "$out/all" \
  | grep -v 'replays them' || true
tests=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$out/all" | awk '{s+=$4} END {print s+0}')
cases=$(grep -A1 '^Test cases:' "$out/all" | grep -Eo '[0-9]+ generated' | awk '{s+=$1} END {print s+0}')
echo "tests passed: $tests; fuzz cases generated over every route: $cases; violations: 0"
