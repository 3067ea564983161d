"""core/cache_key: an output is rebuilt exactly when one of its inputs changed."""
import json
import os
import time

import numpy as np

from core.cache_key import array_digest, file_stamp, matches, refresh


def _build(key_path, inputs, built):
    def clear():
        built.append("clear")
    return refresh(key_path, inputs, clear, "toy", log=lambda *_: None)


def test_same_inputs_reuse_changed_inputs_rebuild(tmp_path):
    key = str(tmp_path / "out" / "key.json")
    src = tmp_path / "input.bin"
    src.write_bytes(b"v1")
    built = []
    inputs = lambda: {"n": 3, "file": file_stamp(str(src)), "list": (1, 2)}  # noqa: E731
    assert not _build(key, inputs(), built) and built == ["clear"]  # first time: built
    assert _build(key, inputs(), built) and built == ["clear"]       # unchanged: reused
    assert matches(key, inputs())
    time.sleep(0.01)
    src.write_bytes(b"v2")  # same size, new content
    assert not matches(key, inputs())
    assert not _build(key, inputs(), built) and built == ["clear", "clear"]
    assert _build(key, inputs(), built)
    assert not _build(key, dict(inputs(), n=4), built)  # an option changed
    with open(key) as f:
        assert json.load(f)["n"] == 4


def test_an_unreadable_key_rebuilds_with_a_warning(tmp_path):
    key = tmp_path / "key.json"
    key.write_text('{"n": 1')
    logs = []
    assert not refresh(str(key), {"n": 1}, None, "toy", log=logs.append)
    assert len(logs) == 1 and "unreadable" in logs[0] and str(key) in logs[0]
    assert refresh(str(key), {"n": 1}, None, "toy", log=logs.append)


def test_stamps_and_digests():
    assert file_stamp("/nonexistent/file") is None
    a = [np.zeros((2, 2), np.float32)]
    assert array_digest(a) == array_digest([np.zeros((2, 2), np.float32)])
    assert array_digest(a) != array_digest([np.zeros((2, 2), np.float64)])
    assert array_digest(a) != array_digest([np.ones((2, 2), np.float32)])
    assert os.path.sep not in array_digest(a)


def test_a_new_key_replaces_the_file_and_leaves_a_linked_copy_alone(tmp_path):
    """A key hard-linked into a second folder (bench/style_levers.py shares stages 1-5 that way)
    keeps its value when the second folder's run stores another key."""
    import os
    from core.cache_key import read_key, write_key
    first, second = tmp_path / "a.key.json", tmp_path / "b.key.json"
    write_key(str(first), {"options": [50]})
    os.link(first, second)
    write_key(str(second), {"options": [500]})
    assert read_key(str(first)) == {"options": [50]} and read_key(str(second)) == {"options": [500]}
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_weights_stamps_cover_the_substitutes_beside_the_file(tmp_path):
    from core.cache_key import weights_stamps
    (tmp_path / "b.pkl").write_bytes(b"12345")
    got = weights_stamps(str(tmp_path / "a.pth"), ("a.pth", "b.pkl", "c.pth"))
    assert [f for f, _ in got] == [str(tmp_path / n) for n in ("a.pth", "b.pkl", "c.pth")]  # a.pth once
    assert got[0][1] is None and got[1][1].startswith("5:") and got[2][1] is None


def test_the_stale_line_names_each_changed_input_with_its_old_and_new_value(tmp_path):
    lines = []
    key = str(tmp_path / "k.json")
    refresh(key, {"nerf": "1:2", "opts": "x" * 500, "size": 4}, None, "toy", lines.append)
    refresh(key, {"nerf": "1:3", "opts": "x" * 500, "size": 4}, None, "toy", lines.append)
    assert lines == ['toy is stale (nerf changed; nerf: "1:2" -> "1:3"); rebuilding']
    refresh(key, {"nerf": "1:3", "opts": "y" * 500, "size": 4}, None, "toy", lines.append)
    assert len(lines[-1]) < 320 and lines[-1].count("...") == 2  # both 500-character values cut


def test_content_stamp_follows_the_bytes_not_the_mtime(tmp_path):
    import hashlib
    from core.cache_key import content_stamp
    f = tmp_path / "w.pth"
    f.write_bytes(b"weights")
    first = content_stamp(str(f))
    assert first == "7:" + hashlib.sha256(b"weights").hexdigest()[:16]
    os.utime(f, ns=(10**18, 10**18))                    # copied or linked again: a new mtime
    assert content_stamp(str(f)) == first
    f.write_bytes(b"weightz")                           # same size, other bytes
    os.utime(f, ns=(2 * 10**18, 2 * 10**18))
    assert content_stamp(str(f)) != first
    assert content_stamp(str(tmp_path / "missing.pth")) is None


def test_a_decoder_fine_tune_key_survives_its_weights_copied_again(tmp_path):
    """Re-installing the same VGG and decoder files (new mtimes) keeps decoder.pkl's key."""
    from types import SimpleNamespace
    from pipeline.decoder_finetune import finetune_inputs
    (tmp_path / "vgg_normalised_conv3_1.pth").write_bytes(b"vgg")
    (tmp_path / "feature_invertor_conv3_1.pth").write_bytes(b"dec")
    args = SimpleNamespace(decoder_pth_path=str(tmp_path / "decoder.pth"), vgg_pth_path=str(tmp_path / "vgg_normalised.pth"),
                           finetune_decoder_steps=1, finetune_size=8, decoder_lrate=1e-4, geo_thresh=0.05,
                           content_loss_lambda=1.0, style_loss_lambda=1.0, seed=0)
    images = [np.zeros((2, 2, 3), np.float32)]
    before = finetune_inputs(args, str(tmp_path), images)
    for n in ("vgg_normalised_conv3_1.pth", "feature_invertor_conv3_1.pth"):
        os.utime(tmp_path / n, ns=(10**18, 10**18))
    assert finetune_inputs(args, str(tmp_path), images) == before
    (tmp_path / "feature_invertor_conv3_1.pth").write_bytes(b"de2")
    assert finetune_inputs(args, str(tmp_path), images)["decoder"] != before["decoder"]
