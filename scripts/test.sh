#!/usr/bin/env bash
# The test command (README, CI): installs the requirements, then runs the CPU test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -r requirements.txt
# STYLENERF_ASSETS: folder laid out like ../shared/assets (default: ../shared/assets)
export STYLENERF_DEVICE="${STYLENERF_DEVICE:-cpu}"
exec python3 -m pytest -q -p no:cacheprovider tests "$@"
