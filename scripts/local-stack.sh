#!/usr/bin/env bash
# Starts the whole backend on 127.0.0.1: moto (DynamoDB, SQS, Cognito) provisioned from
# template.yaml, every function behind the template's routes, queue consumers polling.
# API on $API_PORT (default 3000), AWS endpoint on $AWS_PORT (default 4566), Razorpay stand-in
# on $RAZORPAY_PORT (default 3100). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export RUST_LOG="${RUST_LOG:-info,aws_config=warn,aws_smithy_runtime=warn}"
exec cargo run --quiet -p infra --bin local-stack
