#!/usr/bin/env bash
# Gathers, on a machine with a network, what bench/device_run.sh needs on a GPU machine without
# one (Python 3.12, e.g. a cluster node), in the git-ignored folder .offline/ of this checkout
# ($STYLENERF_OFFLINE to put it elsewhere):
#   wheels/  the packages that machine's Python lacks (jittor, astunparse, configargparse;
#            the rest of requirements.txt is assumed installed there)
#   assets/  a copy of the assets folder ($STYLENERF_ASSETS, default ../shared/assets)
# Copy the checkout with .offline/ to the GPU machine and run, e.g.
#   bash bench/device_run.sh nerf 500 2500 5000
# A run writes its logs and archives to $OUT. To continue a time-limited run on a fresh machine,
# put the archives the last run wrote into .offline/resume/: fern_long.tgz (fernlong), exp_*.tgz
# and pretrained.tgz (pipeline, fernstyle). fern.txt's trained NeRF is in
# bench/checkpoints/fern_long.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."
assets="${STYLENERF_ASSETS:-../shared/assets}"
offline="${STYLENERF_OFFLINE:-.offline}"
mkdir -p "$offline/wheels" "$offline/assets"
[ -f "$offline/wheels/jittor-1.3.11.0-py3-none-any.whl" ] \
  || python3 -m pip wheel -q --no-deps jittor==1.3.11.0 -w "$offline/wheels"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform any -d "$offline/wheels" astunparse==1.6.3 configargparse==1.9.0
for d in nerf_llff_data pretrained styles; do
  [ -e "$offline/assets/$d" ] || cp -r "$assets/$d" "$offline/assets/"
done
chmod -R u+w "$offline"
du -sh "$offline/wheels" "$offline/assets"
