"""Compares sparsedisk's SpMV, transposed SpMV and SpMM with scipy's on the same matrices.

    check_spmv.py CASES.json

CASES.json lists objects {"mtx": FILE.mtx, "dir": DIR}; DIR holds the operands x.npy (cols), xt.npy
(rows), X.npy (cols x k) and, for each layout L sparsedisk computed with, y_L.npy = A x,
yt_L.npy = A^T xt and Y_L.npy = A X. Each result must agree with scipy's within the rounding bound of
a sum: |ours - ref| <= 1e-12 * (|A| |x|) elementwise (plus the smallest normal number); NaN and
infinite elements must match exactly. Prints one
JSON line per case ("skipped" when scipy cannot read the file) and exits 1 if any case fails.
"""
import json
import os
import sys

import numpy as np
import scipy.io
import scipy.sparse as sp

cases = json.load(open(sys.argv[1]))
failed = 0
for case in cases:
    try:
        a = sp.csr_matrix(scipy.io.mmread(case["mtx"]), dtype=np.float64)
    except (ValueError, OverflowError) as e:
        # A file sparsedisk reads and scipy does not (tests/real_invalid_lines.tsv lists why).
        print(json.dumps({"mtx": case["mtx"], "skipped": f"scipy cannot read it: {e}", "ok": True}), flush=True)
        continue
    d = case["dir"]
    x, xt, xk = (np.load(os.path.join(d, f)) for f in ("x.npy", "xt.npy", "X.npy"))
    ab = abs(a)
    refs = {
        "y": (a @ x, ab @ np.abs(x)),
        "yt": (a.T @ xt, ab.T @ np.abs(xt)),
        "Y": (a @ xk, ab @ np.abs(xk)),
    }
    worst = 0.0
    ok = True
    checked = 0
    for layout in ("csr", "csc"):
        for name, (ref, bound) in refs.items():
            path = os.path.join(d, f"{name}_{layout}.npy")
            if not os.path.exists(path):
                continue
            ours = np.load(path)
            checked += 1
            if ours.shape != ref.shape:
                ok = False
                continue
            # NaN and infinite results (some files store NaN or inf values) must match exactly.
            special = ~np.isfinite(ref) | ~np.isfinite(ours)
            if not np.array_equal(ours[special], ref[special], equal_nan=True):
                ok = False
            err = np.where(special, 0.0, np.abs(ours - ref))
            bound = np.where(special, 0.0, bound)
            limit = 1e-12 * bound + np.finfo(np.float64).tiny
            if not np.all(err <= limit):
                ok = False
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bound > 0, err / bound, 0.0)
            worst = max(worst, float(ratio.max()) if ratio.size else 0.0)
    failed += not ok
    print(json.dumps({"mtx": case["mtx"], "shape": list(a.shape), "nnz": int(a.nnz), "results": checked,
                      "max_error_over_bound": worst, "ok": bool(ok)}), flush=True)
sys.exit(1 if failed else 0)
