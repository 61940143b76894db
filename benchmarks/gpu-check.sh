#!/bin/sh
# `make gpu-check`, as a plain script for a bare GPU machine (no make or venv needed there): installs the carried
# wheels (.gpu-wheels/, what the device image lacks: pydantic and its needs) into a scratch folder, unpacks the
# carried MNIST (.gpu-data/), and runs benchmarks/gpu_check.py, whose JSON summary goes to $OUT (or ./gpu-check-out).
# Prepare the two folders beforehand on a machine with a network: `make gpu-prep`.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${TMPDIR:-/tmp}/kd-gpu-site
if [ -d .gpu-wheels ] && ls .gpu-wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu-wheels/*.whl
fi
for f in .gpu-data/MNIST/raw/*.gz; do
    [ -e "$f" ] && [ ! -e "${f%.gz}" ] && gunzip -k "$f"
done
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" REPRO_DATA="$PWD/.gpu-data" PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py --summary-dir "${OUT:-gpu-check-out}" "$@"
