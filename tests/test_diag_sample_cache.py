"""bench/diag/diag_sample_cache.py: the kept share of the fine weight, and the rays on which the K
heaviest samples hold none of a level's weight, against hand-made weights."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "diag"))
from diag_sample_cache import kept_share, level_missed  # noqa: E402


def test_kept_share_and_the_rays_a_level_is_missed_on():
    # ray 0: the heaviest sample (by coarse + fine) is coarse-only; ray 1: both levels there;
    # ray 2: no coarse weight at all (nothing to miss)
    wc = np.array([[0, 0.9, 0, 0], [0.5, 0.2, 0, 0], [0, 0, 0, 0]])
    wf = np.array([[0, 0, 0.3, 0.5], [0.6, 0.1, 0.1, 0], [0, 0.2, 0.7, 0]])
    np.testing.assert_array_equal(level_missed(wc, wf, 1), [True, False, False])
    np.testing.assert_array_equal(level_missed(wc, wf, 2), [False, False, False])
    np.testing.assert_allclose(kept_share(wc, wf, 1), [0.0, 0.6 / 0.8, 0.7 / 0.9])
    np.testing.assert_allclose(kept_share(wc, wf, 2), [0.5 / 0.8, 0.7 / 0.8, 1.0])
