"""The project's own trained weights (weights/): checksums as documented, layouts, and that the
shipped decoder stylizes (bench/decoder_recipe.py's measure, on real fern views and styles)."""
import hashlib
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "weights")


def test_checksums_match_the_readme():
    readme = open(os.path.join(WEIGHTS, "README.md")).read()
    listed = dict(re.findall(r"\| `([\w.]+\.pkl)` \([^)]*\) \| `[^`]+` \| `([0-9a-f]{64})` \|", readme))
    assert set(listed) == {f for f in os.listdir(WEIGHTS) if f.endswith(".pkl")}
    for name, digest in listed.items():
        with open(os.path.join(WEIGHTS, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name


def test_layouts_are_the_relu3_1_ones():
    from models.decoder import Decoder, saved_depth
    from models.vae import StyleVAE
    assert saved_depth(os.path.join(WEIGHTS, "adain_decoder_relu3_1.pkl")) == 256
    Decoder.load(os.path.join(WEIGHTS, "adain_decoder_relu3_1.pkl"), 256)
    vae = StyleVAE.load(os.path.join(WEIGHTS, "style_vae_relu3_1.pkl"))
    assert vae.in_dim == 512  # channel means and stds of relu3_1's 256 channels


def test_shipped_decoder_stylizes_far_more_than_the_inverter(tmp_path, fern_dir, styles_dir, vgg_relu3_path,
                                                              decoder_relu3_path):
    """On 2 fern views x 2 styles at 64 px (CPU): AdaIN through the shipped decoder leaves well
    under half the inverter's style loss (0.136x on the GPU at 256 px, 20 views x 6 styles)."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import decoder_recipe
    out = tmp_path / "d.json"
    assert decoder_recipe.main([
        "--decoders", f"inverter={decoder_relu3_path}", f"shipped={os.path.join(WEIGHTS, 'adain_decoder_relu3_1.pkl')}",
        "--vgg", vgg_relu3_path, "--views", os.path.join(fern_dir, "images_8"), "--n_views", "2",
        "--style_dir", styles_dir, "--styles", "la_muse,sketch", "--size", "64", "--out", str(out),
        "--grid", str(tmp_path / "g.jpg"), "--device", "cpu"]) == 0
    rows = {r["decoder"]: r for r in json.load(open(out))["rows"]}
    print({k: (round(r["style_ratio"], 3), round(r["content_ratio"], 2)) for k, r in rows.items()})
    assert rows["inverter"]["style_ratio"] == 1.0
    assert rows["shipped"]["style_ratio"] < 0.5
    assert rows["shipped"]["content_ratio"] < 6.0  # the scene stays readable
    assert (tmp_path / "g.jpg").stat().st_size > 0


def test_decoder_recipe_reads_checkpoint_folders(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import decoder_recipe
    (tmp_path / "decoder_train_000500.pkl").write_bytes(b"x")
    (tmp_path / "decoder_train_001000.pkl").write_bytes(b"x")
    assert decoder_recipe.decoder_files(f"r={tmp_path}") == [
        ("r@500", str(tmp_path / "decoder_train_000500.pkl")), ("r@1000", str(tmp_path / "decoder_train_001000.pkl"))]
    with pytest.raises(SystemExit, match="takes label=path"):
        decoder_recipe.decoder_files("nolabel")
