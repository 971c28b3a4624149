"""Checks a sample of rows of a product C = A @ B written by sparsedisk against scipy in memory.

    check_rows.py A.mtx C_DIR [--b B.mtx] [--samples N] [--seed S]

Reads C's rows straight from its segment files (numpy.memmap through manifest.json), computes the same
rows as A[rows] @ B with scipy, and prints one JSON line; exits 1 on a mismatch.
"""
import argparse
import json
import os
import sys

import numpy as np
import scipy.io
import scipy.sparse as sp

p = argparse.ArgumentParser()
p.add_argument("a")
p.add_argument("c")
p.add_argument("--b")
p.add_argument("--samples", type=int, default=200)
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()
try:
    import fast_matrix_market as fmm
    a = sp.csr_matrix(fmm.mmread(args.a))
    b = sp.csr_matrix(fmm.mmread(args.b)) if args.b else a
except ImportError:
    a = sp.csr_matrix(scipy.io.mmread(args.a))
    b = sp.csr_matrix(scipy.io.mmread(args.b)) if args.b else a
with open(os.path.join(args.c, "manifest.json")) as f:
    man = json.load(f)
assert man["layout"] == "csr"
dtypes = {"float64": "<f8", "float32": "<f4", "int64": "<i8"}
rng = np.random.default_rng(args.seed)
rows = sorted(set(rng.integers(0, a.shape[0], args.samples).tolist()))
checked, entries, bad = 0, 0, []
for r in rows:
    seg = next(s for s in man["segments"] if s["start"] <= r < s["end"])
    ip = np.memmap(os.path.join(args.c, seg["indptr"]["path"]), dtype="<u8", mode="r")
    lo, hi = int(ip[r - seg["start"]]), int(ip[r - seg["start"] + 1])
    idx_t = "<u4" if man["index_type"] == "uint32" else "<u8"
    cols = np.memmap(os.path.join(args.c, seg["indices"]["path"]), dtype=idx_t, mode="r")[lo:hi] if hi > lo else np.zeros(0)
    vals = np.memmap(os.path.join(args.c, seg["values"]["path"]), dtype=dtypes[man["value_type"]], mode="r")[lo:hi] \
        if hi > lo and seg["values"] else np.ones(hi - lo)
    ref = sp.csr_matrix(a[r] @ b)
    ref.sort_indices()
    keep = np.asarray(vals) != 0
    ok = np.array_equal(np.asarray(cols)[keep], ref.indices[ref.data != 0]) and \
        np.allclose(np.asarray(vals)[keep], ref.data[ref.data != 0], rtol=1e-12, atol=0)
    checked += 1
    entries += hi - lo
    if not ok:
        bad.append(r)
print(json.dumps({"rows_checked": checked, "entries_checked": int(entries), "mismatched_rows": bad[:10], "ok": not bad}))
sys.exit(1 if bad else 0)
