"""core/original_ckpt.py: the original release's NeRF `<step>.tar` (as jt.save writes it) and its
VAE `vae.pth` (as torch.save writes it), on small files written in those formats."""
import collections
import pickle

import jittor as jt
import numpy as np
import pytest

from core.checkpoint import CheckpointError
from core.original_ckpt import (OriginalCheckpointError, newest_original_nerf, read_jittor_pickle,
                                read_original_nerf, vae_from_original)
from tests.test_pth import FakeTensor, fake_torch, write_legacy, write_zip  # noqa: F401 (fixture)

RNG = np.random.default_rng(7)


def original_nerf_state(D=5, W=8, in_ch=9, views_ch=6, seed=0):
    """A state dict as the original's `Nerf`/`StyleNerf` names it (MLP_style, skip after layer 4)."""
    rng = np.random.default_rng(seed)
    shapes = collections.OrderedDict()
    dims = [in_ch] + [W + in_ch if i == 4 else W for i in range(D - 1)]
    for i, d in enumerate(dims):
        shapes[f"net.base_layers.{i}.weight"], shapes[f"net.base_layers.{i}.bias"] = (W, d), (W,)
    shapes.update({"net.sigma_layer.weight": (1, W), "net.sigma_layer.bias": (1,),
                   "net.base_remap_layer.weight": (256, W), "net.base_remap_layer.bias": (256,),
                   "net.rgb_layers.0.weight": (W // 2, 256 + views_ch), "net.rgb_layers.0.bias": (W // 2,),
                   "net.rgb_layers.1.weight": (3, W // 2), "net.rgb_layers.1.bias": (3,)})
    return collections.OrderedDict((k, rng.standard_normal(s).astype(np.float32)) for k, s in shapes.items())


def our_name(key):
    """This project's name for each of the original's weights (models/nerf.py), written out."""
    _, layer, *rest = key.split(".")
    if layer == "base_layers":
        return f"pts_linears.{rest[0]}.{rest[1]}"
    heads = {"sigma_layer": "alpha_linear", "base_remap_layer": "feature_linear"}
    if layer in heads:
        return f"{heads[layer]}.{rest[0]}"
    return f"{'views_linear' if rest[0] == '0' else 'rgb_linear'}.{rest[1]}"


def jt_save_file(path, coarse, fine, step, as_vars=True):
    """A NeRF checkpoint as the original's run_stylenerf.py saves it, through the real jt.save."""
    wrap = (lambda sd: {k: jt.array(v) for k, v in sd.items()}) if as_vars else dict
    obj = {"global_step": step, "model": wrap(coarse), "model_fine": wrap(fine),
           "optimizer": {"defaults": {"lr": 5e-4, "betas": (0.9, 0.999)}}, "style_optimizer": {}}
    jt.save(obj, str(path))
    return str(path)


@pytest.mark.parametrize("as_vars", [True, False])
def test_nerf_tar_from_jt_save_is_renamed(tmp_path, as_vars):
    coarse, fine = original_nerf_state(seed=1), original_nerf_state(seed=2)
    path = jt_save_file(tmp_path / "000120.tar", coarse, fine, 120, as_vars)
    assert open(path, "rb").read().endswith(b"HCAJSLHD")  # Jittor's checksum trailer is there
    step, c, f = read_original_nerf(path)
    assert step == 120
    for ours, orig in ((c, coarse), (f, fine)):
        assert sorted(ours) == sorted(our_name(k) for k in orig)
        for k, v in orig.items():
            np.testing.assert_array_equal(ours[our_name(k)], v, err_msg=k)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickles_of_numpy_arrays_and_the_step_from_the_name(tmp_path, protocol):
    coarse = original_nerf_state(seed=3)
    path = tmp_path / "005000.tar"
    path.write_bytes(pickle.dumps({"model": coarse, "model_fine": coarse}, protocol))  # no global_step
    step, c, _ = read_original_nerf(str(path))
    assert step == 5000
    np.testing.assert_array_equal(c["pts_linears.4.weight"], coarse["net.base_layers.4.weight"])


_EFFECTS = []


def _side_effect(*args):
    _EFFECTS.append(args)
    return "ran"


class _Evil:
    def __reduce__(self):
        return _side_effect, ("boom",)


def test_foreign_classes_are_inert_and_run_nothing(tmp_path):
    path = tmp_path / "000001.tar"
    coarse = original_nerf_state()
    path.write_bytes(pickle.dumps({"global_step": 1, "model": coarse, "model_fine": coarse,
                                   "optimizer": _Evil()}, 4))
    step, _, _ = read_original_nerf(str(path))
    assert step == 1 and _EFFECTS == []


def test_bad_files_say_what_is_wrong(tmp_path, fake_torch):  # noqa: F811
    coarse = original_nerf_state()
    good = jt_save_file(tmp_path / "000010.tar", coarse, coarse, 10, as_vars=False)
    data = open(good, "rb").read()
    bad = tmp_path / "000011.tar"
    bad.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(OriginalCheckpointError, match="000011.tar: Jittor checkpoint whose checksum does not match"):
        read_jittor_pickle(str(bad))
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(OriginalCheckpointError, match="000011.tar is not a readable Jittor checkpoint"):
        read_original_nerf(str(bad))
    zip_path = tmp_path / "000012.tar"
    write_zip(str(zip_path), {"w": FakeTensor("0", 0, (2,), (1,))}, {"0": np.zeros(2, np.float32)}, fake_torch)
    with pytest.raises(OriginalCheckpointError, match="000012.tar is a zip archive .a PyTorch file."):
        read_original_nerf(str(zip_path))
    bad.write_bytes(pickle.dumps({"global_step": 3, "model": coarse}))
    with pytest.raises(OriginalCheckpointError, match="without a fine network"):
        read_original_nerf(str(bad))
    bad.write_bytes(pickle.dumps({"global_step": 3, "train_set": {}}))
    with pytest.raises(OriginalCheckpointError, match="not the original's NeRF checkpoint .no 'model'; has global_step, train_set"):
        read_original_nerf(str(bad))
    no_views = {k: v for k, v in coarse.items() if "remap" not in k and "rgb_layers.0" not in k}
    bad.write_bytes(pickle.dumps({"global_step": 3, "model": no_views, "model_fine": no_views}))
    with pytest.raises(OriginalCheckpointError, match="without view directions"):
        read_original_nerf(str(bad))
    odd = dict(coarse, **{"net.extra.weight": np.zeros(2, np.float32)})
    bad.write_bytes(pickle.dumps({"global_step": 3, "model": odd, "model_fine": coarse}))
    with pytest.raises(OriginalCheckpointError, match="unexpected weight 'net.extra.weight'"):
        read_original_nerf(str(bad))
    with pytest.raises(CheckpointError, match="nothere.tar: cannot read"):
        read_original_nerf(str(tmp_path / "nothere.tar"))


def test_newest_original_nerf_by_step(tmp_path):
    assert newest_original_nerf(str(tmp_path)) is None
    for name in ("005000.tar", "120001.tar", "style_130000.tar", "latent_130000.tar", "nerf_000007.pkl"):
        (tmp_path / name).write_bytes(b"")
    assert newest_original_nerf(str(tmp_path)) == str(tmp_path / "120001.tar")


# ---- VAE -------------------------------------------------------------------------------------

def original_vae_state(in_dim=20, hidden=16, latent=4, depth=4, seed=0):
    """The original's VAE state dict (torch names) as NumPy arrays."""
    rng = np.random.default_rng(seed)
    sd = collections.OrderedDict()
    dims = [in_dim] + [hidden] * (depth - 1)
    for i in range(depth - 1):
        sd[f"encoder.fc_layers.{i}.weight"] = rng.standard_normal((dims[i + 1], dims[i])) * 0.3
        sd[f"encoder.fc_layers.{i}.bias"] = rng.standard_normal(dims[i + 1]) * 0.1
    for name in ("fc_layer_mu", "fc_layer_log_var"):
        sd[f"encoder.{name}.weight"] = rng.standard_normal((latent, hidden)) * 0.3
        sd[f"encoder.{name}.bias"] = rng.standard_normal(latent) * 0.1
    dims = [latent] + [hidden] * (depth - 1)
    for i in range(depth - 1):
        sd[f"decoder.fc_layers.{i}.weight"] = rng.standard_normal((dims[i + 1], dims[i])) * 0.3
        sd[f"decoder.fc_layers.{i}.bias"] = rng.standard_normal(dims[i + 1]) * 0.1
    sd["decoder.output_layer.weight"] = rng.standard_normal((in_dim, hidden)) * 0.3
    sd["decoder.output_layer.bias"] = rng.standard_normal(in_dim) * 0.1
    return collections.OrderedDict((k, v.astype(np.float32)) for k, v in sd.items())


def write_torch_state(path, sd, writer, torch):
    """A state dict as torch.save writes it (one storage per tensor)."""
    storages = {str(i): v.reshape(-1) for i, v in enumerate(sd.values())}
    obj = collections.OrderedDict(
        (k, FakeTensor(str(i), 0, v.shape, tuple(int(np.prod(v.shape[j + 1:])) for j in range(v.ndim))))
        for i, (k, v) in enumerate(sd.items()))
    writer(path, obj, storages, torch)


def numpy_encode(sd, x):
    """The original VAE's encoder, in NumPy: ReLU linears, then the mu and log-variance heads."""
    h = x.astype(np.float64)
    i = 0
    while f"encoder.fc_layers.{i}.weight" in sd:
        h = np.maximum(h @ sd[f"encoder.fc_layers.{i}.weight"].T + sd[f"encoder.fc_layers.{i}.bias"], 0)
        i += 1
    return (h @ sd["encoder.fc_layer_mu.weight"].T + sd["encoder.fc_layer_mu.bias"],
            h @ sd["encoder.fc_layer_log_var.weight"].T + sd["encoder.fc_layer_log_var.bias"])


def numpy_decode(sd, z):
    h = z.astype(np.float64)
    i = 0
    while f"decoder.fc_layers.{i}.weight" in sd:
        h = np.maximum(h @ sd[f"decoder.fc_layers.{i}.weight"].T + sd[f"decoder.fc_layers.{i}.bias"], 0)
        i += 1
    return h @ sd["decoder.output_layer.weight"].T + sd["decoder.output_layer.bias"]


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_original_vae_pth_loads_and_computes_as_the_original(tmp_path, fake_torch, writer):  # noqa: F811
    from models.vae import StyleVAE
    sd = original_vae_state()
    path = str(tmp_path / "vae.pth")
    write_torch_state(path, sd, writer, fake_torch)
    vae = StyleVAE.load(path)
    assert (vae.in_dim, vae.latent, vae.config["hidden"], vae.config["depth"]) == (20, 4, 16, 4)
    x = RNG.standard_normal((3, 20)).astype(np.float32)
    mu, logvar = vae.encode(jt.array(x))
    want_mu, want_logvar = numpy_encode(sd, x)
    np.testing.assert_allclose(mu.numpy(), want_mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar.numpy(), want_logvar, rtol=1e-5, atol=1e-5)
    z = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(vae.decode(jt.array(z)).numpy(), numpy_decode(sd, z), rtol=1e-5, atol=1e-5)


def test_vae_layout_errors_name_the_file():
    sd = original_vae_state()
    del sd["decoder.output_layer.weight"]
    with pytest.raises(OriginalCheckpointError, match="v.pth: not the original's style VAE"):
        vae_from_original(sd, "v.pth")
    with pytest.raises(OriginalCheckpointError, match="decoder.0.weight"):  # our own names are not it
        vae_from_original({"decoder.0.weight": np.zeros((2, 2))}, "v.pth")
