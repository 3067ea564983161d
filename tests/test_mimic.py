"""pipeline/mimic.py: the 2D <- 3D mimic step on a tiny style stage (random VGG and decoder).

Checks: from --decoder_step on the decoder learns, the mimicked views' targets are made again
and equal the updated decoder's stylization (the others stay), a resume restores the decoder,
its optimizer and the targets, a run killed after writing targets is repaired on resume, and
with --decoder_step past total_step nothing changes.
"""
import json
import os
from types import SimpleNamespace

import jittor as jt
import numpy as np
import pytest

from core.checkpoint import load
from core.media import to8b
from models.decoder import Decoder
from models.vgg import VGGEncoder
from pipeline import mimic as mimic_mod
from pipeline.nerf_stage import NeRFSystem
from pipeline.style_stage import train_style
from pipeline.targets import stylize_view
from render.options import RenderOptions
from tests.test_pipeline import tiny_scene, tiny_styles, trained  # noqa: F401 (fixtures)
from tests.test_style_stage import LATENT, random_poses, style_args

H, W, FOCAL, V = 16, 24, 20.0, 3


def make_args(**over):
    base = dict(finetune_size=16, mimic_every=2, mimic_views=1, decoder_step=2, total_step=6, i_weights=2,
                decoder_lrate=1e-2)
    base.update(over)
    return style_args(**base)


def make_decoder():
    """A random relu3_1 decoder whose output sits inside [0, 1] (not clamped away to black)."""
    dec = Decoder(256)
    for k, p in dec.state_dict().items():
        if p.shape == [3]:  # the last convolution's bias
            p.assign(jt.full([3], 0.5))
        else:
            p.assign(p * 0.3)
    return dec


def weights(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


@pytest.fixture
def setup(tmp_path):
    args = make_args()
    jt.set_global_seed(0)
    system = NeRFSystem(args)
    for net in (system.coarse, system.fine):
        net.alpha_linear.bias.assign(jt.full(net.alpha_linear.bias.shape, 20.0))
    rng = np.random.default_rng(1)
    geo = SimpleNamespace(n_views=V, hwf=(H, W, FOCAL), c2ws=random_poses(V),
                          rgb=rng.uniform(0, 1, (V, H, W, 3)).astype(np.float32))
    encoder = VGGEncoder("relu3_1")
    decoder = make_decoder()
    styles = [rng.uniform(0, 1, (12, 12, 3)).astype(np.float32) for _ in range(2)]
    feats = [encoder.encode(jt.array(s.transpose(2, 0, 1)[None])) for s in styles]
    targets = [np.stack([to8b(stylize_view(encoder, decoder, geo.rgb[v], f)) for v in range(V)]) for f in feats]
    os.makedirs(tmp_path / "targets")
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=8, perturb=False, noise_std=0.0,
                         white_bkgd=False, lindisp=False)
    return dict(system=system, geo=geo, encoder=encoder, decoder=decoder, styles=styles, feats=feats,
                targets=targets, expdir=str(tmp_path), opts=opts,
                mu=rng.normal(size=(2, LATENT)).astype(np.float32), logvar=np.full((2, LATENT), -2.0, np.float32),
                decoder0=weights(decoder))


def run(st, decoder=None, targets=None, no_reload=False, **over):
    args = make_args(**over)
    args.no_reload = no_reload
    decoder = decoder or st["decoder"]
    targets = st["targets"] if targets is None else targets
    jt.set_global_seed(0)  # as a new process would: the style MLP starts from the same weights
    mim = mimic_mod.Mimic(args, st["system"], st["geo"], st["encoder"], decoder, st["styles"], st["styles"],
                          targets, st["opts"], st["expdir"]) if mimic_mod.enabled(args) else None
    model = train_style(args, st["system"], st["geo"], targets, st["mu"], st["logvar"], ["a", "b"],
                        st["expdir"], st["opts"], log=lambda *_: None, mimic=mim)
    return model, mim


def stylized(st, decoder, v):
    return [to8b(stylize_view(st["encoder"], decoder, st["geo"].rgb[v], f)) for f in st["feats"]]


def test_schedule_counts_from_decoder_step():
    args = make_args(decoder_step=5, mimic_every=3)
    assert [s for s in range(1, 15) if mimic_mod.is_mimic_step(args, s)] == [5, 8, 11, 14]
    assert not any(mimic_mod.is_mimic_step(make_args(mimic_every=0), s) for s in range(10))
    assert not mimic_mod.enabled(make_args(decoder_step=7, total_step=6))


def test_mimic_trains_the_decoder_and_remakes_targets(setup):
    st = setup
    before = [t.copy() for t in st["targets"]]
    model, mim = run(st)
    after = weights(st["decoder"])
    assert max(np.abs(after[k] - st["decoder0"][k]).max() for k in after) > 1e-4
    touched = {v for s in (2, 4, 6) for v in mim.draw(s)[0]}  # the mimic steps
    for v in range(V):
        for k in range(2):
            if v in touched:  # the last mimicked view equals the final decoder's stylization
                assert not np.array_equal(st["targets"][k][v], before[k][v])
            else:
                np.testing.assert_array_equal(st["targets"][k][v], before[k][v])
    last_v = mim.draw(6)[0]
    for v in last_v:
        for k, want in enumerate(stylized(st, st["decoder"], v)):
            np.testing.assert_array_equal(st["targets"][k][v], want)
    ck = load(os.path.join(st["expdir"], "style_000006.pkl"))
    for k, val in after.items():
        np.testing.assert_array_equal(ck["decoder"][k], val)
    assert ck["decoder_optimizer"]["n_step"] == 3


def test_the_mimic_loss_pulls_the_decoder_towards_the_render(setup):
    st = setup
    args = make_args(content_loss_lambda=0, style_loss_lambda=0, decoder_lrate=1e-3)  # the 2D term alone
    model, _ = run(st, total_step=1)  # a style model, no mimic step yet
    mim = mimic_mod.Mimic(args, st["system"], st["geo"], st["encoder"], st["decoder"], st["styles"], st["styles"],
                          st["targets"], st["opts"], st["expdir"])
    losses = [mim.step(2, model)[0] for _ in range(8)]  # the same view and style each time
    assert losses[-1] < 0.7 * losses[0], losses


def test_resume_restores_decoder_and_targets(setup, tmp_path):
    st = setup
    full_targets = [t.copy() for t in st["targets"]]
    full_dec = make_decoder()
    full_dec.load_state_dict(st["decoder0"])
    st_full = dict(st, expdir=str(tmp_path / "full"))
    os.makedirs(tmp_path / "full" / "targets")
    run(st_full, decoder=full_dec, targets=full_targets)
    # the same in two runs: 1..4, then a new process (fresh decoder object from decoder.pkl) 5..6
    run(st, total_step=4)
    dec2 = make_decoder()
    dec2.load_state_dict(st["decoder0"])
    run(st, decoder=dec2, total_step=6)
    for k, val in weights(full_dec).items():
        np.testing.assert_array_equal(weights(dec2)[k], val, err_msg=k)
    for a, b in zip(st["targets"], full_targets):
        np.testing.assert_array_equal(a, b)


def test_targets_written_after_the_checkpoint_are_made_again(setup):
    st = setup
    run(st, total_step=4)
    saved = weights(st["decoder"])
    os.remove(os.path.join(st["expdir"], "style_000004.pkl"))  # killed after the mimic of step 4
    dec2 = make_decoder()
    dec2.load_state_dict(st["decoder0"])
    args = make_args(total_step=2)  # resume from step 2 and stop there: only the repair runs
    mim = mimic_mod.Mimic(args, st["system"], st["geo"], st["encoder"], dec2, st["styles"], st["styles"],
                          st["targets"], st["opts"], st["expdir"])
    train_style(args, st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], ["a", "b"], st["expdir"],
                st["opts"], log=lambda *_: None, mimic=mim)
    assert mim.last_marked() == 2
    assert any(np.abs(weights(dec2)[k] - saved[k]).max() > 0 for k in saved)  # the step-2 decoder
    for v in mim.draw(4)[0]:
        for k, want in enumerate(stylized(st, dec2, v)):
            np.testing.assert_array_equal(st["targets"][k][v], want)


def test_no_mimic_before_decoder_step(setup):
    st = setup
    before = [t.copy() for t in st["targets"]]
    run(st, decoder_step=7)
    for k, val in weights(st["decoder"]).items():
        np.testing.assert_array_equal(val, st["decoder0"][k])
    for a, b in zip(st["targets"], before):
        np.testing.assert_array_equal(a, b)
    assert "decoder" not in load(os.path.join(st["expdir"], "style_000006.pkl"))



def test_memory_mapped_cache_is_written_and_a_fresh_start_remakes_it(setup):
    st = setup
    paths = [os.path.join(st["expdir"], "targets", f"{k:03d}_s.npy") for k in range(2)]
    for p, t in zip(paths, st["targets"]):
        np.save(p, t)
    original = [t.copy() for t in st["targets"]]
    disk = [np.load(p, mmap_mode="r") for p in paths]  # as the targets stage hands them over
    run(st, targets=disk)
    assert any(not np.array_equal(np.load(p), o) for p, o in zip(paths, original))  # written to the cache
    # --no_reload: style training from the start, the decoder from decoder.pkl again
    assert not mimic_mod.stale_targets(make_args(), st["expdir"])
    args = make_args()
    args.no_reload = True
    assert mimic_mod.stale_targets(args, st["expdir"])  # the targets stage would make them again
    fresh = make_decoder()
    fresh.load_state_dict(st["decoder0"])
    disk = [np.load(p, mmap_mode="r") for p in paths]
    mim = mimic_mod.Mimic(args, st["system"], st["geo"], st["encoder"], fresh, st["styles"], st["styles"], disk,
                          st["opts"], st["expdir"])
    mim.resume(None, "", 0)  # so does the style stage when called on its own
    for p, o in zip(paths, original):
        np.testing.assert_array_equal(np.load(p), o)
    assert not os.path.exists(os.path.join(st["expdir"], "targets", "mimic.json"))
    assert not mimic_mod.stale_targets(args, st["expdir"])
    run(st, targets=disk, no_reload=True)  # mimicked again, then its checkpoints gone: stale
    for f in os.listdir(st["expdir"]):
        if f.startswith("style_"):
            os.remove(os.path.join(st["expdir"], f))
    assert mimic_mod.stale_targets(make_args(), st["expdir"])
    mimic_mod.discard_stale_targets(make_args(), st["expdir"])
    assert os.listdir(os.path.join(st["expdir"], "targets")) == []


def test_the_pipeline_runs_the_mimic_step_and_a_rerun_is_a_no_op(trained, tmp_path, capsys):
    """Through run_stylenerf.py: the tiny experiment's style training continued past --decoder_step,
    with a line saying that mutual learning is on."""
    import shutil

    import run_stylenerf
    argv, exp = trained
    shutil.copytree(exp, tmp_path / "tiny")
    argv = argv + ["--basedir", str(tmp_path), "--total_step", "48", "--decoder_step", "41", "--mimic_every", "4"]
    exp = str(tmp_path / "tiny")
    before = {f: np.load(os.path.join(exp, "targets", f)) for f in sorted(os.listdir(os.path.join(exp, "targets")))
              if f.endswith(".npy")}
    assert run_stylenerf.main(argv) == 0
    assert "mutual learning: from step 41 (--decoder_step), every 4 style steps" in capsys.readouterr().out
    ck = load(os.path.join(exp, "style_000048.pkl"))
    start = load(os.path.join(exp, "decoder.pkl"))["decoder"]
    assert max(np.abs(ck["decoder"][k] - start[k]).max() for k in start) > 0
    assert ck["decoder_optimizer"]["n_step"] == 2  # steps 41 and 45
    assert json.load(open(os.path.join(exp, "targets", "mimic.json"))) == {"step": 45}
    after = {f: np.load(os.path.join(exp, "targets", f)) for f in before}
    assert any(not np.array_equal(before[f], after[f]) for f in before)
    mtimes = {f: os.path.getmtime(os.path.join(exp, "targets", f)) for f in before}
    assert run_stylenerf.main(argv) == 0  # finished: the targets are not made again
    assert mtimes == {f: os.path.getmtime(os.path.join(exp, "targets", f)) for f in before}
