# Source on the device machine (GPU, no internet): installs the carried wheels
# from .whl/ into /tmp/site and points Python at them.  Used by bench/ scripts.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD
export PYTHONUNBUFFERED=1
