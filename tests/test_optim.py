"""core/optim.py: the launch-saving Adam makes exactly jt.optim.Adam's updates."""
import jittor as jt
import numpy as np
import pytest

from core.checkpoint import adam_state, load_adam_state
from core.optim import Adam


def _params(rng):
    return [jt.array(rng.standard_normal(s).astype(np.float32)) for s in ((3, 4), (4,), (2, 2, 2))]


def _loss(params, k):
    # a different quadratic each step, so that the moments matter
    return sum(((p - 0.1 * k) ** 2 * (i + 1)).sum() for i, p in enumerate(params))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_same_updates_as_jittor_adam(weight_decay):
    rng = np.random.default_rng(0)
    ours, theirs = _params(rng), None
    theirs = [jt.array(p.numpy()) for p in ours]
    kw = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=weight_decay)
    opt_a, opt_b = Adam(ours, **kw), jt.optim.Adam(theirs, **kw)
    for k in range(6):
        opt_a.lr = opt_b.lr = 0.05 * 0.9 ** k  # the stages change lr every step
        opt_a.step(_loss(ours, k))
        opt_b.step(_loss(theirs, k))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(ours[0].numpy(), _params(np.random.default_rng(0))[0].numpy())  # it moved


def test_parameter_groups_and_checkpoint_state_round_trip():
    rng = np.random.default_rng(1)
    a, b = _params(rng)[:2]
    opt = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.0}], lr=0.1)
    b0 = b.numpy().copy()
    opt.step(_loss([a, b], 1))
    np.testing.assert_array_equal(b.numpy(), b0)  # lr 0 group stays put
    state = adam_state(opt)
    assert state["n_step"] == 1 and len(state["m"]) == 2
    fresh = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.0}], lr=0.1)
    load_adam_state(fresh, state)
    np.testing.assert_array_equal(fresh.param_groups[0]["m"][0].numpy(), state["m"][0][0])
    assert fresh.n_step == 1
