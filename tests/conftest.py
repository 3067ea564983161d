"""Shared test set-up: Jittor through the project's runtime, and the real assets.

The assets folder (fern, VGG/decoder weights, styles) is ../shared/assets beside
the checkout, or $STYLENERF_ASSETS.  Tests that need it fail with a clear message
when it is missing rather than silently skipping.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from backend import runtime  # noqa: E402

jt = runtime.setup(quiet=True, tensorcore=False)  # exact fp32 matmuls: tests compare to 1e-5

ASSETS = os.path.abspath(os.environ.get("STYLENERF_ASSETS", os.path.join(ROOT, "..", "shared", "assets")))


def _asset(*parts):
    path = os.path.join(ASSETS, *parts)
    if not os.path.exists(path):
        pytest.fail(f"test asset missing: {path} (set STYLENERF_ASSETS to a folder laid out like shared/assets)")
    return path


@pytest.fixture(scope="module")
def assets_dir():
    return _asset()


@pytest.fixture(scope="module")
def fern_dir():
    return _asset("nerf_llff_data", "fern")


@pytest.fixture(scope="module")
def vgg_relu3_path():
    return _asset("pretrained", "vgg_normalised_conv3_1.pth")


@pytest.fixture(scope="module")
def decoder_relu3_path():
    return _asset("pretrained", "feature_invertor_conv3_1.pth")


@pytest.fixture(scope="module")
def styles_dir():
    return _asset("styles")


_UNPACKED = {}  # what a test run has unpacked already


@pytest.fixture
def fern_long_expdir(tmp_path_factory):
    """bench/checkpoints/fern_long.tgz, unpacked once per test run: fern.txt's NeRF after
    120,001 GPU steps (held-out PSNR 24.51 on the H200)."""
    if "fern_long" not in _UNPACKED:
        import tarfile
        root = tmp_path_factory.mktemp("fern_long")
        tgz = os.path.join(ROOT, "bench", "checkpoints", "fern_long.tgz")
        with tarfile.open(tgz) as t:
            t.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # 3.11.4+
        _UNPACKED["fern_long"] = str(root / "logs" / "fern_long" / "bench")
    return _UNPACKED["fern_long"]


@pytest.fixture(autouse=True)
def _stage_record(tmp_path, monkeypatch):
    """Stage timings go to a file of the test's own, not beside the machine's Jittor kernels."""
    from core import stage_record
    monkeypatch.setattr(stage_record, "record_path", lambda: str(tmp_path / stage_record.RECORD))


@pytest.fixture(autouse=True)
def _seed():
    import numpy as np
    np.random.seed(0)
    jt.set_global_seed(0)
    yield


@pytest.fixture
def count_steps(monkeypatch):
    """Counts optimizer steps taken through the project's Adam (to check what trains and what loads)."""
    from core.optim import Adam
    calls = []
    real_step = Adam.step

    def step(self, loss=None, *a, **k):
        calls.append(1)
        return real_step(self, loss, *a, **k)
    monkeypatch.setattr(Adam, "step", step)
    return calls
