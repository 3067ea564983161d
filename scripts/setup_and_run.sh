#!/usr/bin/env bash
# Set up and run the main job:  bash scripts/setup_and_run.sh [config] [more run_stylenerf options]
#   installs the requirements, fills data/ pretrained/ style/ all_styles/ all_contents/ from
#   $STYLENERF_ASSETS (default ../shared/assets) or downloads the official files, then trains.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/fern.txt}"; shift || true
python3 -m pip install -q --disable-pip-version-check -r requirements.txt
assets="${STYLENERF_ASSETS:-../shared/assets}"
if [ -d "$assets" ]; then
  python3 scripts/get_assets.py --from "$assets"
else
  python3 scripts/get_assets.py --download
fi
python3 run_stylenerf.py --config "$config" "$@"
