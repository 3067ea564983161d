#!/usr/bin/env bash
# Prepare what a GPU run on the (offline, Python 3.12) device machine needs, in git-ignored
# folders of this checkout:  .whl/ (jittor, astunparse, configargparse wheels) and
# .carry/assets/ (a copy of the assets folder).
# Then call the device tool with carry [".whl", ".carry"] and a command such as:
#   bash bench/device_run.sh nerf 500 2500 5000
# Between calls of a session, carry what a call returned for the next one (cp FILES_AT/X .carry/):
# a fernlong call's fern_long.tgz, a pipeline or fernstyle call's exp_*.tgz and pretrained.tgz
# (the pre-trained style modules). Whatever must outlive the session is committed (this
# machine's home folder did not survive between sessions 7 and 8: git is what does); fern.txt's
# trained NeRF is in bench/carry/fern_long.tgz.
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
chmod -R u+w .carry
du -sh .whl .carry
