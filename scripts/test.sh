#!/usr/bin/env bash
# Runs every test: unit tests, aws-smithy-mocks tests, and the integration tests (tests/it,
# one binary), which start moto themselves on a free loopback port. Then the time of each
# phase. Arguments go to the `cargo test` run (e.g. `-- --nocapture`); those before `--`
# also to the build.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_args=()
for arg in "$@"; do
  [ "$arg" = -- ] && break
  cargo_args+=("$arg")
done

started=$SECONDS
timings=()
record() { timings+=("$(printf '  %-40s %4d s' "$1" "$2")"); }

# The Python tools (moto) install while Cargo builds: the build does not need them, and
# the install is mostly downloading and unpacking.
setup_time=$(mktemp)
( t=$SECONDS; scripts/setup.sh; echo $((SECONDS - t)) >"$setup_time" ) &
setup=$!

# `--tests`, not `--all-targets`: it leaves out the libraries and binaries with `test = false`
# (no tests in them; `--lib` and `--bins` would build a test binary of each anyway). The
# binaries themselves are built for tests/it/runtime_api.rs, with this very selection, so
# its build is a no-op.
t=$SECONDS
cargo build --workspace --bins --tests "${cargo_args[@]}"
record "build of every test target and binary" $((SECONDS - t))
t=$SECONDS
wait "$setup"
record "setup (beside the build)" "$(cat "$setup_time")"
record "waiting for setup after the build" $((SECONDS - t))
rm -f "$setup_time"

# One run over the build's selection: a run of fewer packages would unify features
# differently (the functions' aws-smithy-mocks tests turn on SDK test features) and build
# the SDK again. When the integration binary starts and ends is read off Cargo's output.
marks=$(mktemp)
failed=0
# The integration tests wait more than they compute (on moto, one Python process, and on
# the settle windows of "happens once" checks), so more of them run at once than there are
# cores: on this 2-core machine the tests/it binary took 457 s with 2 threads, 262 s with 6
# and 267 s with 10 (2026-12-06).
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"
t=$SECONDS
cargo test --workspace --tests "$@" 2>&1 | while IFS= read -r line; do
  case "$line" in
    *"Running it/main.rs"*) echo "start $SECONDS" >>"$marks" ;;
    *Running*|*Doc-tests*) grep -q start "$marks" && ! grep -q end "$marks" && echo "end $SECONDS" >>"$marks" ;;
  esac
  printf '%s\n' "$line"
done || failed=$?
ended=$SECONDS
it_start=$(awk '$1 == "start" { print $2 }' "$marks")
it_end=$(awk '$1 == "end" { print $2 }' "$marks")
rm -f "$marks"
it_took=$(( ${it_end:-$ended} - ${it_start:-$ended} ))
record "unit and mock tests" $((ended - t - it_took))
record "integration tests (tests/it)" "$it_took"

# The times also when a test failed: a slow phase is worth knowing either way.
if [ "$failed" = 0 ]; then
  echo "test.sh: every test passed in $((SECONDS - started)) s"
else
  echo "test.sh: tests FAILED (see above), after $((SECONDS - started)) s"
fi
printf '%s\n' "${timings[@]}"
exit "$failed"
