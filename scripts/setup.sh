#!/usr/bin/env bash
# Installs what the local stack and the tests need, pinned, into the repo's own ignored
# folders: Python tools (moto, cfn-lint, aws-sam-cli) into .venv. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is missing: $2" >&2; exit 1; }
}
need cargo "install the Rust toolchain (https://rustup.rs), edition 2024 needs Rust 1.85 or newer"
need python3 "install Python 3.9 or newer (the AWS emulator, moto, is a Python package)"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || { echo "setup: Python 3.9 or newer is required, found $(python3 --version)" >&2; exit 1; }

stamp=".venv/.installed-$(sha256sum infra/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if [ ! -x .venv/bin/pip ]; then
    python3 -m venv .venv || { echo "setup: python3 -m venv failed; install the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
  fi
  echo "setup: installing $(grep -vc '^#' infra/requirements.txt) pinned Python tools into .venv (first run takes a minute or two)"
  .venv/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# Swagger UI for the local stack's /docs page, pinned, from the npm registry (served offline
# by the stack; no CDN). Optional: without npm the stack still serves /openapi.json.
SWAGGER_UI_VERSION=5.35.0
swagger_ui=.venv/swagger-ui
if ! grep -qs "\"version\": \"$SWAGGER_UI_VERSION\"" "$swagger_ui/node_modules/swagger-ui-dist/package.json"; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing swagger-ui-dist@$SWAGGER_UI_VERSION (the /docs page) into $swagger_ui"
    mkdir -p "$swagger_ui"
    npm install --silent --no-audit --no-fund --no-save --prefix "$swagger_ui" "swagger-ui-dist@$SWAGGER_UI_VERSION" >/dev/null \
      || echo "setup: npm could not install swagger-ui-dist; /docs will point at /openapi.json instead" >&2
  else
    echo "setup: npm not found; the local stack's /docs page needs it (Node.js), /openapi.json does not" >&2
  fi
fi

# Agora's own token library (agora-token), pinned by tests/agora/package-lock.json: the oracle
# shared/tests/agora_oracle.rs checks our RTC tokens against. Required: that test needs it.
AGORA_TOKEN_VERSION=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/agora-token"]["version"])' tests/agora/package-lock.json)
if ! grep -qs "\"version\": \"$AGORA_TOKEN_VERSION\"" tests/agora/node_modules/agora-token/package.json; then
  need node "install Node.js (with npm): the Agora token test reads our tokens with Agora's own library"
  need npm "install npm (Node.js): the Agora token test reads our tokens with Agora's own library"
  echo "setup: installing agora-token@$AGORA_TOKEN_VERSION (the Agora token oracle) into tests/agora"
  npm ci --silent --no-audit --no-fund --prefix tests/agora >/dev/null \
    || { echo "setup: npm ci could not install tests/agora (agora-token@$AGORA_TOKEN_VERSION)" >&2; exit 1; }
fi

# The Swiss Ephemeris (pyswisseph, pinned with tzdata in tests/chart/requirements.txt): the oracle
# shared/tests/chart_oracle.rs checks our chart basics against. Required: that test needs it.
chart_stamp=".venv/.chart-$(sha256sum tests/chart/requirements.txt | cut -c1-16)"
if [ ! -f "$chart_stamp" ]; then
  echo "setup: installing $(grep -vc '^#' tests/chart/requirements.txt) pinned Python packages (the chart oracle) into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/chart/requirements.txt \
    || { echo "setup: pip could not install tests/chart/requirements.txt (pyswisseph)" >&2; exit 1; }
  rm -f .venv/.chart-*
  touch "$chart_stamp"
fi
