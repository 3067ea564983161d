"""pipeline/style_inputs: a style training's record of what it learned from, and the one-line
error when its checkpoints are used with other inputs."""
import json
import os

import pytest

from core.config import parse_args
from pipeline import style_inputs
from pipeline.style_inputs import StaleStyleError


def _exp(tmp_path, targets_key):
    (tmp_path / "targets").mkdir(exist_ok=True)
    (tmp_path / "targets" / "meta.json").write_text(json.dumps(targets_key))
    return str(tmp_path)


def test_the_same_inputs_match_and_no_record_is_no_mismatch(tmp_path):
    exp = _exp(tmp_path, {"decoder": "1:a", "target_factor": 2})
    args = parse_args(["--style_patch_weight", "0.01"])
    assert style_inputs.mismatch(args, exp) == []            # checkpoints without a record
    style_inputs.record(args, exp)
    assert style_inputs.mismatch(args, exp) == []
    style_inputs.check(args, exp, "style_000040.pkl")       # no error


def test_a_changed_option_is_named_with_both_values(tmp_path):
    exp = _exp(tmp_path, {"decoder": "1:a"})
    style_inputs.record(parse_args(["--style_patch_weight", "0.01"]), exp)
    args = parse_args(["--style_patch_weight", "0.05", "--total_step", "999999"])  # total_step: not a change
    assert style_inputs.mismatch(args, exp) == ["--style_patch_weight 0.01 -> 0.05"]
    with pytest.raises(StaleStyleError, match=r"style_000040.pkl was trained with other inputs than this run's "
                                              r"\(--style_patch_weight 0.01 -> 0.05\): another --expname"):
        style_inputs.check(args, exp, "style_000040.pkl")


def test_other_targets_are_named_but_not_when_only_options_are_asked(tmp_path):
    args = parse_args([])
    exp = _exp(tmp_path, {"decoder": "1:a"})
    style_inputs.record(args, exp)
    _exp(tmp_path, {"decoder": "1:a", "propagation": 0.2})  # --target_propagation remade them
    assert style_inputs.mismatch(args, exp) == ["the targets (propagation: absent -> 0.2)"]
    assert style_inputs.mismatch(args, exp, options_only=True) == []


def test_the_sample_cache_counts_only_with_style_samples(tmp_path):
    exp = _exp(tmp_path, {"decoder": "1:a"})
    (tmp_path / "style_samples").mkdir()
    (tmp_path / "style_samples" / "meta.json").write_text(json.dumps({"k": 1}))
    args = parse_args(["--style_samples", "1", "--style_point", "surface"])
    style_inputs.record(args, exp)
    (tmp_path / "style_samples" / "meta.json").write_text(json.dumps({"k": 2, "jitter": 1.0}))
    assert style_inputs.mismatch(args, exp) == ["the samples (jitter: absent -> 1.0; k: 1 -> 2)"]
    assert os.path.basename(style_inputs.record_path(exp)) == "style_inputs.json"


def test_a_record_from_before_an_option_existed_was_trained_at_its_default(tmp_path):
    exp = _exp(tmp_path, {"decoder": "1:a"})
    style_inputs.record(parse_args(["--style_patch_weight", "0.01"]), exp)
    path = style_inputs.record_path(exp)
    old = json.loads(open(path).read())
    del old["options"]["style_patch_every"]  # as written before --style_patch_every
    open(path, "w").write(json.dumps(old))
    assert style_inputs.mismatch(parse_args(["--style_patch_weight", "0.01"]), exp) == []
    args = parse_args(["--style_patch_weight", "0.01", "--style_patch_every", "2"])
    assert style_inputs.mismatch(args, exp) == ["--style_patch_every 1 -> 2"]
