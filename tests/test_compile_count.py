"""core/compile_count.py: the count of compiled kernels in Jittor's cache folder."""

from core.compile_count import jit_kernels


def test_the_kernel_count_reads_jittors_cache_folder(tmp_path):
    for name in ("a_op.so", "b_op.so", "c_op.cc", "d.so.lock"):
        (tmp_path / name).write_text("")
    assert jit_kernels(str(tmp_path)) == 2
    assert jit_kernels(str(tmp_path / "missing")) == 0
    import jittor as jt
    (jt.array([1.0, 2.0]) * 3.0 + 1.0).numpy()  # at least one fused kernel is in the cache now
    assert jit_kernels() > 0
