#!/usr/bin/env bash
# Set up labkit on a fresh machine: a virtual environment in .venv with labkit and its test tools.
#
#   bash scripts/setup.sh            # then: .venv/bin/labkit lab
#
# Needs Python 3.10+ (python3, or set PYTHON=...). PyTorch comes from PyPI; on a machine without
# a GPU you can save several GB by taking the CPU build first:
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  .venv/bin/python -m pip install --quiet torch torchvision --index-url "$TORCH_INDEX_URL"
fi
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "setup: done. Start the lab with: .venv/bin/labkit lab"
