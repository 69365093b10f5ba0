#!/usr/bin/env bash
# Starts the whole backend on 127.0.0.1: moto (DynamoDB, SQS, Cognito) provisioned from
# template.yaml, every function behind the template's routes, queue consumers polling, and
# the API contract at /docs and /openapi.json.
# API on $API_PORT (default 3000), WebSocket API on $WS_PORT (default 3001), AWS endpoint on
# $AWS_PORT (default 4566), Razorpay stand-in on $RAZORPAY_PORT (default 3100), local Digio on
# $DIGIO_PORT (default 3200). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RUST_LOG="${RUST_LOG:-info,aws_config=warn,aws_smithy_runtime=warn}"
echo "local-stack: building (the first build on a fresh clone compiles for several minutes; cargo shows its progress)"
cargo build -p infra --bin local-stack
echo "local-stack: starting moto and the functions"
exec cargo run --quiet -p infra --bin local-stack
