#!/usr/bin/env bash
# Prepare what a GPU run on the (offline, Python 3.12) device machine needs, in git-ignored
# folders of this checkout:  .whl/ (jittor, astunparse, configargparse wheels) and
# .carry/assets/ (a copy of the assets folder), and .carry/fern_long.tgz where one was kept.
# Then call the device tool with carry [".whl", ".carry"] and a command such as:
#   bash bench/device_run.sh nerf 500 2500 5000
# After a fernlong call, keep its returned fern_long.tgz for the next call and session:
#   cp FILES_AT/fern_long.tgz .carry/ && cp FILES_AT/fern_long.tgz ~/.cache/stylenerf/device/
set -euo pipefail
cd "$(dirname "$0")/.."
assets="${STYLENERF_ASSETS:-../shared/assets}"
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
grep -qx "/.carry/" .git/info/exclude 2>/dev/null || echo "/.carry/" >> .git/info/exclude
mkdir -p .whl .carry/assets
[ -f .whl/jittor-1.3.11.0-py3-none-any.whl ] || python3 -m pip wheel -q --no-deps jittor==1.3.11.0 -w .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform any -d .whl astunparse==1.6.3 configargparse==1.9.0
for d in nerf_llff_data pretrained styles; do
  [ -e ".carry/assets/$d" ] || cp -r "$assets/$d" .carry/assets/
done
# a long run's checkpoint kept between sessions outside the work tree (the work tree is laid anew
# each session; this machine usually is not): bench/device_run.sh fernlong resumes from it
kept="${STYLENERF_DEVICE_KEEP:-$HOME/.cache/stylenerf/device}"
if [ -f "$kept/fern_long.tgz" ] && [ ! -f .carry/fern_long.tgz ]; then
  cp "$kept/fern_long.tgz" .carry/ && echo "carrying the kept fern_long.tgz ($kept)"
fi
chmod -R u+w .carry
du -sh .whl .carry
