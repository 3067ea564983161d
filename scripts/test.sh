#!/usr/bin/env bash
# The test command (README, CI): installs the requirements, then runs the CPU test suite.
#   bash scripts/test.sh                        # the whole suite
#   bash scripts/test.sh tests/test_x.py [-k y]  # just those files or tests (pytest's arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -r requirements.txt
# STYLENERF_ASSETS: folder laid out like ../shared/assets (default: ../shared/assets)
export STYLENERF_DEVICE="${STYLENERF_DEVICE:-cpu}"
# the whole tests/ folder unless a file, folder or test id (path::name) is given
where=(tests)
for arg in "$@"; do
  if [ -e "${arg%%::*}" ]; then where=(); break; fi
done
exec python3 -m pytest -q -p no:cacheprovider ${where[@]+"${where[@]}"} "$@"
