"""requirements.txt: what the project imports at run time is the standard library, the project
itself and the packages it lists - no torch, no pytorch3d (PyTorch appears only in bench/, as a
yardstick, and in tests that skip without it)."""
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME_DIRS = ("backend", "core", "dataset", "evaluation", "models", "pipeline", "render", "scripts")
IMPORT_NAMES = {"opencv-python-headless": "cv2", "imageio-ffmpeg": "imageio_ffmpeg", "jittor-offline": "jittor"}


def listed_packages():
    names = set()
    for line in open(os.path.join(ROOT, "requirements.txt")):
        line = line.split("#")[0].strip()
        if line:
            name = re.split(r"[<>=! ]", line)[0].lower()
            names.add(IMPORT_NAMES.get(name, name.replace("-", "_")))
    return names - {"pytest"}


def runtime_files():
    files = [os.path.join(ROOT, f) for f in os.listdir(ROOT) if f.endswith(".py")]
    for d in RUNTIME_DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            files += [os.path.join(dirpath, f) for f in names if f.endswith(".py")]
    return files


def top_level_imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_runtime_code_imports_only_listed_packages():
    own = {d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d))}
    own |= {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}
    allowed = listed_packages() | set(sys.stdlib_module_names) | own
    files = runtime_files()
    assert len(files) > 50  # the scan reaches the project's modules
    strays = {f"{os.path.relpath(p, ROOT)}: {name}" for p in files for name in top_level_imports(p)
              if name not in allowed}
    assert not strays, sorted(strays)


def test_the_scan_would_see_a_torch_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef f():\n    from torch import nn\n    import pytorch3d.ops\n")
    assert set(top_level_imports(str(bad))) == {"os", "torch", "pytorch3d"}
    assert "torch" not in listed_packages() and "jittor" in listed_packages() and "cv2" in listed_packages()
