#!/usr/bin/env bash
# Install Broadsheet into ./.venv. With --dev, also the test tools and the browser for tests.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# PyTorch first, pinned: the CPU build; left to the resolver it pulls gigabytes of CUDA packages
.venv/bin/pip install -q torch==2.13.0
if [ "$dev" = 1 ]; then
    .venv/bin/pip install -q -e '.[dev]'
else
    .venv/bin/pip install -q -e .
fi
