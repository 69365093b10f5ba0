#!/usr/bin/env bash
# Runs every test: unit tests, aws-smithy-mocks tests, and the integration tests, which
# start moto themselves on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --all-targets "$@"
