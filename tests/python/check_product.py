"""Compares a product written by sparsedisk (exported as Matrix Market) with scipy's.

    check_product.py A.mtx OP OURS.mtx       OP: AA (A @ A), AAT (A @ A.T), ApAT (A + A.T)

Prints one JSON line; exits 1 when the structure differs or a value differs by more than 1e-12
relative to the largest magnitude of the reference.
"""
import json
import sys

import numpy as np
import scipy.io
import scipy.sparse as sp

a = sp.csr_matrix(scipy.io.mmread(sys.argv[1]), dtype=np.float64)
op = sys.argv[2]
ref = {"AA": lambda: a @ a, "AAT": lambda: a @ a.T, "ApAT": lambda: a + a.T}[op]()
ref = sp.csr_matrix(ref)
ref.eliminate_zeros()
ref.sort_indices()
ours = sp.csr_matrix(scipy.io.mmread(sys.argv[3]), dtype=np.float64)
ours.eliminate_zeros()
ours.sort_indices()
scale = max(1.0, float(np.abs(ref.data).max()) if ref.nnz else 1.0)
same_structure = ours.shape == ref.shape and ours.nnz == ref.nnz and \
    np.array_equal(ours.indptr, ref.indptr) and np.array_equal(ours.indices, ref.indices)
max_diff = float(np.abs(ours.data - ref.data).max()) if same_structure and ref.nnz else 0.0
ok = same_structure and max_diff <= 1e-12 * scale
print(json.dumps({"op": op, "nnz": int(ref.nnz), "same_structure": bool(same_structure),
                  "max_rel_diff": max_diff / scale, "ok": bool(ok)}))
sys.exit(0 if ok else 1)
