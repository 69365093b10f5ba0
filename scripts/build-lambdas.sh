#!/usr/bin/env bash
# Builds every function for Lambda (arm64, provided.al2023) the way `sam build` does, with
# cargo-lambda and zig installed (pinned) into .venv, then prints each function's zip size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -x .venv/bin/cargo-lambda ]; then
  echo "build: installing cargo-lambda and zig into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "cargo-lambda==1.9.2" "ziglang==0.13.0.post1"
fi
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
sam build --beta-features "$@"
echo "function zip sizes (limit 4 MiB):"
.venv/bin/python - <<'PY'
import glob, io, os, zipfile
for bootstrap in sorted(glob.glob(".aws-sam/build/*/bootstrap")):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    with open(bootstrap, "rb") as f:
        arch = "arm64" if f.read(20)[18] == 0xB7 else "NOT arm64"
    size = len(buf.getvalue())
    print(f"  {bootstrap.split('/')[2]:<28} {size / 1024:8.0f} KiB zipped  {os.path.getsize(bootstrap) / 1024:8.0f} KiB binary  {arch}  {'ok' if size <= 4 * 1024 * 1024 else 'OVER 4 MiB'}")
PY
