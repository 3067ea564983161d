"""scripts/get_assets.py's install of the project's own weights into pretrained/."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module(monkeypatch, root):
    spec = importlib.util.spec_from_file_location("get_assets", os.path.join(ROOT, "scripts", "get_assets.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "ROOT", str(root))
    return mod


def _tree(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "adain_decoder_relu3_1.pkl").write_bytes(b"decoder")
    (tmp_path / "weights" / "style_vae_relu3_1.pkl").write_bytes(b"vae")
    return tmp_path


def test_installs_missing_weights_and_keeps_a_users_own(monkeypatch, tmp_path):
    mod = _module(monkeypatch, _tree(tmp_path))
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "vae.pkl").write_bytes(b"mine")
    assert mod.install_project_weights() == ["decoder_finetuned.pkl"]
    assert (tmp_path / "pretrained" / "decoder_finetuned.pkl").read_bytes() == b"decoder"
    assert (tmp_path / "pretrained" / "vae.pkl").read_bytes() == b"mine"
    assert mod.install_project_weights() == []  # nothing left to place


def test_nothing_installed_beside_the_full_vgg(monkeypatch, tmp_path):
    mod = _module(monkeypatch, _tree(tmp_path))
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "vgg_normalised.pth").write_bytes(b"relu4_1 encoder")
    assert mod.install_project_weights() == []
    assert not (tmp_path / "pretrained" / "decoder_finetuned.pkl").exists()
