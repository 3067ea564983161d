"""backend/patches.py: the header edits of the installed Jittor (on copies), the NumPy 2 jt.array
fix, and that nothing else in the project changes Jittor."""
import ast
import os

import numpy as np
import pytest

from backend import patches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADER = """#pragma once
inline int gpuDeviceInit(int devID) {
  cudaDeviceProp deviceProp;
  checkCudaErrors(cudaGetDeviceProperties(&deviceProp, devID));
  if (deviceProp.computeMode == cudaComputeModeProhibited) { return -1; }
  return devID;
}
inline int best() {
  int current_device = 0; cudaDeviceProp deviceProp;
  cudaGetDeviceProperties(&deviceProp, current_device);
  uint64_t perf = deviceProp.multiProcessorCount * deviceProp.clockRate;
  return perf;
}
"""


def test_patch_rewrites_removed_fields_once(tmp_path):
    path = tmp_path / "helper_cuda.h"
    path.write_text(HEADER)
    assert patches.patch_helper_cuda(str(path)) is True
    text = path.read_text()
    assert "deviceProp.computeMode" not in text and "deviceProp.clockRate" not in text
    assert "stylenerf_dev_attr(cudaDevAttrComputeMode, devID)" in text
    assert "stylenerf_dev_attr(cudaDevAttrClockRate, current_device)" in text
    # the helper is defined before its first use
    assert text.index("static inline int stylenerf_dev_attr") < text.index("gpuDeviceInit")
    assert (tmp_path / "helper_cuda.h.orig").read_text() == HEADER
    # idempotent
    assert patches.patch_helper_cuda(str(path)) is False
    assert path.read_text() == text


def test_patch_of_installed_header_is_well_formed(tmp_path):
    src = os.path.join(patches.jittor_src_dir(), "extern", "cuda", "inc", "helper_cuda.h")
    original = open(src + ".orig").read() if os.path.exists(src + ".orig") else open(src).read()
    path = tmp_path / "h.h"
    path.write_text(original)
    patches.patch_helper_cuda(str(path))
    text = path.read_text()
    assert "deviceProp.computeMode" not in text and "deviceProp.clockRate" not in text
    assert text.count("{") == original.count("{") + 1


def test_numpy2_patch_moves_elsize_behind_64bit_flags(tmp_path):
    src = os.path.join(patches.jittor_src_dir(), "src", "pyjt", "numpy.h")
    original = open(src + ".orig").read() if os.path.exists(src + ".orig") else open(src).read()
    path = tmp_path / "numpy.h"
    path.write_text(original)
    assert patches.patch_numpy_header(str(path)) is True
    text = path.read_text()
    body = text[text.index("struct PyArrayDescr_Proxy"):text.index("};", text.index("struct PyArrayDescr_Proxy"))]
    # NumPy 2: ... int type_num; npy_uint64 flags; npy_intp elsize; npy_intp alignment; ...
    assert body.index("int type_num") < body.index("unsigned long long") < body.index("Py_ssize_t elsize")
    assert "int elsize" not in body
    assert patches.patch_numpy_header(str(path)) is False
    assert (tmp_path / "numpy.h.orig").read_text() == original


def test_jittor_numpy_roundtrip_is_exact():
    import numpy as np
    import jittor as jt
    for dtype in (np.float32, np.int32, np.uint8, np.float64):
        x = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
        np.testing.assert_array_equal(jt.array(x).numpy(), x)


def test_strided_arrays_convert_exactly():
    """Under NumPy 2 a strided array reaches Jittor's converter only as a C-contiguous copy."""
    import jittor as jt
    x = np.random.default_rng(0).random((2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(jt.array(x.transpose(0, 3, 1, 2)).numpy(), x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(jt.array(x[:, ::2, ::-1]).numpy(), x[:, ::2, ::-1])
    if patches.numpy_major() >= 2:
        assert getattr(jt.array, "_stylenerf_contiguous", False)
        wrapped = jt.array
        patches.contiguous_arrays_only(jt)  # once only
        assert jt.array is wrapped


def _project_sources():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tests", "data", "__pycache__")]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT), ast.parse(open(path).read(), path)


def _jittor_attribute(node):
    """The dotted name of an attribute chain on jt/jittor (jt.Var.permute -> "jt.Var.permute"), or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if parts and isinstance(node, ast.Name) and node.id in ("jt", "jittor"):
        return ".".join([node.id] + parts[::-1])
    return None


def _jittor_changes(tree):
    """(line, name) of each assignment to, or setattr on, an attribute of Jittor but its flags."""
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and node.args:
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for t in targets:
            name = _jittor_attribute(t)
            if name and not name.startswith(("jt.flags.", "jittor.flags.")):
                found.append((node.lineno, name))
    return found


def test_jittor_is_changed_in_patches_py_only():
    """Every replacement of a Jittor function is in backend/patches.py (listed there with its
    reason); Jittor's flags are settings, not patches."""
    changes = {path: found for path, tree in _project_sources() if (found := _jittor_changes(tree))}
    assert set(changes) == {"backend/patches.py"}, changes
    assert [name for _, name in changes["backend/patches.py"]] == ["jt.array"]
    example = "jt = setup()\njt.Var.permute = f\nsetattr(jt, 'transpose', f)\njt.flags.use_cuda = 1"
    assert sorted(_jittor_changes(ast.parse(example))) == [(2, "jt.Var.permute"), (3, "jt.?")]


def test_jittor_files_are_found_in_patches_py_only():
    """Only backend/patches.py looks up Jittor's installed sources (the header edits)."""
    users = {path for path, tree in _project_sources()
             if any(isinstance(n, ast.Name) and n.id == "jittor_src_dir" or
                    isinstance(n, ast.Attribute) and n.attr == "jittor_src_dir" or
                    isinstance(n, ast.FunctionDef) and n.name == "jittor_src_dir" for n in ast.walk(tree))}
    assert users == {"backend/patches.py"}
