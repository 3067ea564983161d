# Sourced by bench/device_run.sh on a GPU machine without internet access: installs the wheels
# in $STYLENERF_OFFLINE/wheels (default .offline/wheels, filled by scripts/prepare_offline.sh)
# into /tmp/site and points Python at them and at this checkout.
export STYLENERF_OFFLINE="${STYLENERF_OFFLINE:-$PWD/.offline}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "$STYLENERF_OFFLINE"/wheels/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD
export PYTHONUNBUFFERED=1
