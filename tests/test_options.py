"""render/options.py: RenderOptions for each phase of a run, from the run's options."""
import dataclasses
from types import SimpleNamespace

import pytest

from core.config import parse_args
from render.options import PHASES, RenderOptions

SCENE = SimpleNamespace(near_far=lambda ndc: (0.0, 1.0) if ndc else (1.35, 4.0))


def test_each_phase_from_the_run_options():
    args = parse_args(["--N_samples", "32", "--N_samples_fine", "16", "--perturb", "1", "--sigma_noise_std", "0.5",
                       "--fine_sampling", "random", "--white_bkgd"])
    train, frozen, evaluation = (RenderOptions.from_args(args, SCENE, p) for p in ("train", "frozen_geometry", "eval"))
    assert train == RenderOptions(near=0.0, far=1.0, n_samples=32, n_fine=16, perturb=True, noise_std=0.5,
                                  white_bkgd=True, lindisp=False, deterministic_fine=False)
    assert frozen == dataclasses.replace(train, noise_std=0.0)  # the style stage: no density noise
    assert evaluation == dataclasses.replace(train, perturb=False, noise_std=0.0, deterministic_fine=True)
    assert set(PHASES) == {"train", "frozen_geometry", "eval"}


def test_options_follow_ndc_perturb_and_fine_sampling():
    args = parse_args(["--no_ndc", "--perturb", "0"])
    opts = RenderOptions.from_args(args, SCENE, "train")
    assert (opts.near, opts.far) == (1.35, 4.0)  # the scene's ray range without NDC
    assert not opts.perturb and opts.deterministic_fine and opts.noise_std == args.sigma_noise_std == 1.0
    assert not opts.white_bkgd


def test_options_are_frozen_and_phases_checked():
    opts = RenderOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.noise_std = 1.0
    with pytest.raises(ValueError, match="phase must be one of train, eval, frozen_geometry"):
        RenderOptions.from_args(parse_args([]), SCENE, "render")
