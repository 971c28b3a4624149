"""Compares sparsedisk's PageRank, BFS levels and component labels with scipy's on real graphs.

    check_algo.py ANCHORS.py CASES.json

CASES.json lists objects {"mtx": FILE.mtx, "dir": DIR, "source": S}; the graph is the file's
structure with every stored entry an edge of weight 1 (explicit zeros included), as sparsedisk's
pattern import reads it. DIR holds sparsedisk's pagerank.npy (damping 0.85, tol 1e-10), levels.npy
(BFS from S) and labels.npy (weakly connected components, smallest member). References: PageRank as
ANCHORS.py defines it (imported from there), scipy.sparse.csgraph for BFS and components. PageRank must
agree within 1e-8 in L1, levels and labels exactly. One JSON line per case; exit 1 if any fails.
"""
import importlib.util
import json
import os
import sys

import numpy as np
import scipy.io
import scipy.sparse as sp
from scipy.sparse import csgraph

spec = importlib.util.spec_from_file_location("anchors", sys.argv[1])
anchors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(anchors)

failed = 0
for case in json.load(open(sys.argv[2])):
    try:
        a = sp.csr_matrix(scipy.io.mmread(case["mtx"]))
    except (ValueError, OverflowError) as e:
        print(json.dumps({"mtx": case["mtx"], "skipped": f"scipy cannot read it: {e}", "ok": True}), flush=True)
        continue
    a.sum_duplicates()
    a = sp.csr_matrix((np.ones(a.nnz), a.indices, a.indptr), shape=a.shape)
    n = a.shape[0]
    d = case["dir"]
    ranks, _ = anchors.pagerank(a, 0.85, 1e-10)
    ours = np.load(os.path.join(d, "pagerank.npy"))
    l1 = float(np.abs(ours - ranks).sum())
    dist = csgraph.shortest_path(a, method="D", directed=True, unweighted=True, indices=case["source"])
    levels = np.where(np.isinf(dist), -1, dist).astype(np.int64)
    levels_ok = bool(np.array_equal(np.load(os.path.join(d, "levels.npy")), levels))
    count, comp = csgraph.connected_components(a, directed=True, connection="weak")
    smallest = np.full(count, n, dtype=np.int64)
    np.minimum.at(smallest, comp, np.arange(n, dtype=np.int64))
    labels_ok = bool(np.array_equal(np.load(os.path.join(d, "labels.npy")), smallest[comp]))
    ok = l1 <= 1e-8 and levels_ok and labels_ok
    failed += not ok
    print(json.dumps({"mtx": case["mtx"], "n": n, "nnz": int(a.nnz), "pagerank_l1": l1,
                      "levels_equal": levels_ok, "labels_equal": labels_ok, "components": int(count),
                      "ok": bool(ok)}), flush=True)
sys.exit(1 if failed else 0)
