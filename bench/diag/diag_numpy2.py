"""Does jt.array survive a strided NumPy array under NumPy 2? (prints before each step)"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime
jt = runtime.setup()
import numpy as np
x = np.random.rand(2, 5, 6, 3).astype(np.float32)
print("STEP patched jt.array on a transposed array", flush=True)
ok = np.array_equal(jt.array(x.transpose(0, 3, 1, 2)).numpy(), x.transpose(0, 3, 1, 2))
print("STEP patched ok:", ok, flush=True)
print("STEP raw jittor on a transposed array", flush=True)
raw = getattr(jt.array, "__wrapped__", jt.array)
print("STEP raw ok:", np.array_equal(raw(x.transpose(0, 3, 1, 2)).numpy(), x.transpose(0, 3, 1, 2)), flush=True)
