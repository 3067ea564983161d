"""Fill the project's git-ignored data folders: data/, pretrained/, style/, all_styles/, all_contents/.

From a local folder laid out like shared/assets (links by default, --copy to copy):

    python scripts/get_assets.py --from ../shared/assets

or, where a network exists, from the official sources (NeRF example data,
pytorch-AdaIN's weights and style images):

    python scripts/get_assets.py --download

Existing files are kept.  Exits non-zero with a list of what is missing.
"""
import argparse
import os
import shutil
import sys
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_EXTS = (".jpg", ".jpeg", ".png")

# official locations (used only with --download)
NERF_DATA_URL = "http://cseweb.ucsd.edu/~viscomp/projects/LF/papers/ECCV20/nerf/nerf_example_data.zip"
ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"
ADAIN_STYLES = "https://raw.githubusercontent.com/naoto0804/pytorch-AdaIN/master/input/style/"
ADAIN_STYLE_NAMES = ["antimonocromatismo.jpg", "asheville.jpg", "brushstrokes.jpg", "contrast_of_forms.jpg",
                     "en_campo_gris.jpg", "flower_of_life.jpg", "goeritz.jpg", "impronte_d_artista.jpg",
                     "la_muse.jpg", "mondrian.jpg", "picasso_self_portrait.jpg", "scene_de_rue.jpg",
                     "sketch.png", "the_resevoir_at_poitiers.jpg", "trial.jpg", "woman_in_peasant_dress.jpg",
                     "woman_with_hat_matisse.jpg"]


def place(src, dst, copy):
    """Link (or copy) src to dst unless dst exists; returns True if dst is there afterwards."""
    if os.path.lexists(dst):
        if os.path.exists(dst):
            return True
        os.remove(dst)  # a dangling link from an older run
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if copy:
        (shutil.copytree if os.path.isdir(src) else shutil.copyfile)(src, dst)
    else:
        os.symlink(os.path.abspath(src), dst)
    return True


def from_folder(src_root, copy):
    """Link/copy everything a folder laid out like shared/assets offers; return the missing items."""
    missing = []
    src_root = os.path.abspath(src_root)
    if not os.path.isdir(src_root):
        return [f"{src_root} (the --from folder does not exist)"]
    scenes = os.path.join(src_root, "nerf_llff_data")
    if os.path.isdir(scenes) and os.listdir(scenes):
        for scene in sorted(os.listdir(scenes)):
            place(os.path.join(scenes, scene), os.path.join(ROOT, "data", "nerf_llff_data", scene), copy)
    else:
        missing.append(f"{scenes}/<scene> (LLFF scenes such as fern)")
    pre = os.path.join(src_root, "pretrained")
    found = [f for f in sorted(os.listdir(pre)) if f.endswith(".pth")] if os.path.isdir(pre) else []
    for f in found:
        place(os.path.join(pre, f), os.path.join(ROOT, "pretrained", f), copy)
    if not any(f.startswith("vgg_normalised") for f in found):
        missing.append(f"{pre}/vgg_normalised*.pth (VGG-19 encoder)")
    if not any(f.startswith(("decoder", "feature_invertor")) for f in found):
        missing.append(f"{pre}/decoder*.pth or feature_invertor*.pth (AdaIN decoder)")
    styles = os.path.join(src_root, "styles")
    images = [f for f in sorted(os.listdir(styles)) if f.lower().endswith(IMAGE_EXTS)] if os.path.isdir(styles) else []
    if not images:
        missing.append(f"{styles}/*.jpg|png (style images)")
    for f in images:
        for folder in ("style", "all_styles"):
            place(os.path.join(styles, f), os.path.join(ROOT, folder, f), copy)
    # content images for decoder training: the scenes' own views, unless a contents/ folder is given
    contents = os.path.join(src_root, "contents")
    if os.path.isdir(contents):
        for f in sorted(os.listdir(contents)):
            if f.lower().endswith(IMAGE_EXTS):
                place(os.path.join(contents, f), os.path.join(ROOT, "all_contents", f), copy)
    elif os.path.isdir(scenes):
        for scene in sorted(os.listdir(scenes)):
            for sub in ("images_4", "images_8", "images"):
                d = os.path.join(scenes, scene, sub)
                if os.path.isdir(d):
                    for f in sorted(os.listdir(d)):
                        if f.lower().endswith(IMAGE_EXTS):
                            place(os.path.join(d, f), os.path.join(ROOT, "all_contents", f"{scene}_{f}"), copy)
                    break
    return missing


def _fetch(url, dst):
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    print(f"downloading {url}", flush=True)
    tmp = dst + ".part"
    with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f)
    os.replace(tmp, dst)


def download():
    missing = []
    jobs = [(ADAIN_RELEASE + "vgg_normalised.pth", os.path.join(ROOT, "pretrained", "vgg_normalised.pth")),
            (ADAIN_RELEASE + "decoder.pth", os.path.join(ROOT, "pretrained", "decoder.pth"))]
    for name in ADAIN_STYLE_NAMES:
        for folder in ("style", "all_styles"):
            jobs.append((ADAIN_STYLES + name, os.path.join(ROOT, folder, name)))
    for url, dst in jobs:
        try:
            _fetch(url, dst)
        except OSError as e:
            missing.append(f"{dst} ({url}: {e})")
    scene_dir = os.path.join(ROOT, "data", "nerf_llff_data")
    if not os.path.isdir(os.path.join(scene_dir, "fern")):
        zpath = os.path.join(ROOT, "data", "nerf_example_data.zip")
        try:
            _fetch(NERF_DATA_URL, zpath)
            with zipfile.ZipFile(zpath) as z:
                z.extractall(os.path.join(ROOT, "data"))
        except (OSError, zipfile.BadZipFile) as e:
            missing.append(f"{scene_dir}/fern ({NERF_DATA_URL}: {e})")
    return missing


# the project's own trained weights (weights/README.md), for the relu3_1 encoder of shared/assets
PROJECT_WEIGHTS = {"adain_decoder_relu3_1.pkl": "decoder_finetuned.pkl", "style_vae_relu3_1.pkl": "vae.pkl"}


def install_project_weights():
    """Copy weights/ into pretrained/ where no file of that name is there and the encoder in use is
    the relu3_1 one (AdaIN's full vgg_normalised.pth wants relu4_1 weights: its decoder.pth and a
    VAE trained on its statistics). A user's own files are never replaced."""
    pre = os.path.join(ROOT, "pretrained")
    if os.path.exists(os.path.join(pre, "vgg_normalised.pth")):
        return []
    placed = []
    for src, dst in PROJECT_WEIGHTS.items():
        src_path, dst_path = os.path.join(ROOT, "weights", src), os.path.join(pre, dst)
        if os.path.isfile(src_path) and not os.path.lexists(dst_path):
            os.makedirs(pre, exist_ok=True)
            shutil.copyfile(src_path, dst_path)
            placed.append(dst)
    return placed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="src", help="folder laid out like shared/assets")
    src.add_argument("--download", action="store_true", help="download the official files")
    ap.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    args = ap.parse_args(argv)
    missing = download() if args.download else from_folder(args.src, args.copy)
    for name in install_project_weights():
        print(f"pretrained/{name}: the project's trained weights (weights/README.md)")
    for folder in ("data", "pretrained", "style", "all_styles", "all_contents"):
        path = os.path.join(ROOT, folder)
        n = len(os.listdir(path)) if os.path.isdir(path) else 0
        print(f"{folder + '/':14s} {n} entries")
    if missing:
        print("MISSING:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
