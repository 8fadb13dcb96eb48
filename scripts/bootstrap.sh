#!/usr/bin/env bash
# Create .venv (if missing) and install darts-timesclip with every extra, at the tested versions.
# torch is pinned in the same command: on its own a loose torch requirement pulls GBs of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt torch==2.13.0 -e ".[benchmark,pytorch-forecasting,onnx,serve,regression,docs,dev]" 2>&1 \
    | grep -v "is neither a file nor a directory" || true
.venv/bin/python -c "import darts_timesclip, torch; print(f'darts-timesclip {darts_timesclip.__version__}, torch {torch.__version__}')"
