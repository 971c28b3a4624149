#!/usr/bin/env python3
"""Reads a sparsedisk matrix with dense blocks through zarr alone, as docs/FORMAT.md describes it.

    read_dense.py MATRIX_DIR EXPORT.mtx

For every segment listed by the manifest: the CSR arrays (``pointers_to_1``, ``indices_1``,
``values``) and, when the segment has them, the dense blocks (``dense/origins``, ``dense/mask``,
``dense/values``): each block's marked positions inside its window are entries. The band is rebuilt
as a scipy matrix, the bands stacked (CSR row bands or CSC column bands), and the result compared
exactly (structure, explicit zeros included, and values) with fast_matrix_market's reading of the
export. Prints one JSON object: segments, dense blocks, entries read from blocks, and ``equal``.
"""

import json
import sys

import numpy as np
import scipy.sparse as sp
import zarr
import fast_matrix_market as fmm


def main():
    mdir, export = sys.argv[1], sys.argv[2]
    manifest = json.load(open(f"{mdir}/manifest.json"))
    rows, cols = manifest["shape"]
    csr = manifest["layout"] == "csr"
    inner_dim = cols if csr else rows
    coo_r, coo_c, coo_v = [], [], []
    blocks_total = dense_entries = 0
    for seg in manifest["segments"]:
        g = zarr.open_group(f"{mdir}/{seg['name']}", mode="r")
        start, end = seg["start"], seg["end"]
        ptr = g["pointers_to_1"][:]
        idx = g["indices_1"][:] if g["indices_1"].shape[0] else np.zeros(0, dtype=np.int64)
        val = g["values"][:] if g["values"].shape[0] else np.zeros(0)
        outer = np.repeat(np.arange(start, end, dtype=np.int64), np.diff(ptr).astype(np.int64))
        coo_r.append(outer)
        coo_c.append(idx.astype(np.int64))
        coo_v.append(val.astype(np.float64))
        if "dense" in seg:
            attrs = dict(g.attrs)["sparsedisk"]["dense_blocks"]
            d = zarr.open_group(f"{mdir}/{seg['name']}/{attrs['group']}", mode="r")
            origins, masks, values = d["origins"][:], d["mask"][:], d["values"][:]
            bo, bi = values.shape[1], values.shape[2]
            band = end - start
            for k in range(origins.shape[0]):
                o, i, count = (int(v) for v in origins[k])
                # The window: to the next block-grid line of the whole matrix, or the band's end.
                h = min((start + o) // bo * bo + bo, end) - (start + o)
                w = min(bi, inner_dim - i)
                bits = np.unpackbits(masks[k].view(np.uint8), bitorder="little")[: bo * bi].reshape(bo, bi)
                oo, ii = np.nonzero(bits[:h, :w])
                assert len(oo) == count, (seg["name"], k, len(oo), count)
                coo_r.append(start + o + oo.astype(np.int64))
                coo_c.append(i + ii.astype(np.int64))
                coo_v.append(values[k][oo, ii].astype(np.float64))
                blocks_total += 1
                dense_entries += count
            assert band > 0
    r, c, v = (np.concatenate(x) if x else np.zeros(0) for x in (coo_r, coo_c, coo_v))
    if not csr:
        r, c = c, r
    ours = sp.coo_matrix((v, (r, c)), shape=(rows, cols)).tocsr()
    theirs = fmm.mmread(export).tocsr()
    ours.sort_indices()
    theirs.sort_indices()
    equal = (
        ours.shape == theirs.shape
        and ours.nnz == theirs.nnz
        and np.array_equal(ours.indptr, theirs.indptr)
        and np.array_equal(ours.indices, theirs.indices)
        and np.array_equal(ours.data, theirs.data)
    )
    print(json.dumps({"segments": len(manifest["segments"]), "dense_blocks": blocks_total,
                      "dense_entries": dense_entries, "nnz": int(ours.nnz), "equal": bool(equal)}))


if __name__ == "__main__":
    main()
