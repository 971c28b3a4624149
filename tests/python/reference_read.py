#!/usr/bin/env python3
"""Reference reading of Matrix Market files for tests/real_datasets.rs.

    reference_read.py LIST OUTDIR

LIST holds one input path per line. For the k-th path (0-based) this prints one JSON line to standard
output and, when the file is readable, writes OUTDIR/k.bin. One process reads every file, so the test
pays the interpreter start-up once.

A file is *readable* iff fast_matrix_market reads it (the reader is recorded in the JSON line). What
is written is the matrix as sparsedisk's documented import defines it, computed independently:

* coordinate files: the entries fast_matrix_market reads (``read_coo(generalize_symmetry=False)``,
  in file order); a symmetric, skew-symmetric or hermitian off-diagonal entry ``(i, j, v)`` is
  followed by its mirror ``(j, i, v)`` (skew: ``-v``; hermitian with real values: ``v``), the diagonal
  is not doubled. Duplicates are then summed in that order (sequential summation, exactly as a
  streaming reader adds them: scipy's ``tocsr`` sorts column indices with an unstable sort, so with
  three or more duplicates of a cell its summation order is unspecified) and explicit zeros are kept;
* array files: ``fast_matrix_market.mmread`` gives a dense ndarray; every stored value is an entry,
  zeros included (general: every cell; symmetric/hermitian: every cell, the upper triangle mirrored
  from the lower; skew-symmetric: every off-diagonal cell -- its diagonal is not stored in the file
  and is structurally zero, so it is no entry).

Independently, ``fast_matrix_market.mmread(file).tocsr()`` (scipy's duplicate summation) is compared
with that result: same structure, and the largest value difference is reported (expected 0).

OUTDIR/k.bin: rows (int64 LE), then cols (int64 LE), then values (float64 LE for real, int64 LE for
integer, nothing for pattern), each ``nnz`` long, entries sorted by (row, col), 0-based.

JSON line fields: index, path, status (``ok``, ``complex``, ``error``), reader, and for ``ok``/
``complex`` the header (object, format, field, symmetry, shape) -- for ``ok`` also nnz, kind
(real/integer/pattern), scipy_structure_equal, scipy_values_equal (and scipy_max_abs_diff, a repr, when
the structures agree); for ``error`` the message. The output is strict JSON (no NaN or Infinity).
"""

import gzip
import json
import os
import sys
import traceback

import numpy as np
import fast_matrix_market as fmm


def expand_file_order(rows, cols, vals, symmetry):
    """Entries in file order with each off-diagonal mirror right after its entry."""
    if symmetry == "general":
        return rows, cols, vals
    off = rows != cols
    n = len(rows)
    # Position of entry k in the expanded sequence: k + (off-diagonal entries before k).
    before = np.concatenate(([0], np.cumsum(off)[:-1])) if n else np.zeros(0, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64) + before
    total = n + int(off.sum())
    r = np.empty(total, dtype=np.int64)
    c = np.empty(total, dtype=np.int64)
    r[pos], c[pos] = rows, cols
    r[pos[off] + 1], c[pos[off] + 1] = cols[off], rows[off]
    v = None
    if vals is not None:
        v = np.empty(total, dtype=vals.dtype)
        v[pos] = vals
        v[pos[off] + 1] = -vals[off] if symmetry == "skew-symmetric" else vals[off]
    return r, c, v


def sum_duplicates_in_order(rows, cols, vals):
    """Sorted by (row, col), duplicates summed sequentially in the given order; zeros kept."""
    order = np.lexsort((cols, rows))  # stable: equal keys stay in file order
    r, c = rows[order], cols[order]
    v = vals[order] if vals is not None else None
    if len(r) == 0:
        return r, c, v
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    starts = np.flatnonzero(first)
    if v is not None and len(starts) < len(r):
        ends = np.append(starts[1:], len(r))
        out = v[starts].copy()
        for g in np.flatnonzero(ends - starts > 1):
            acc = v[starts[g]]
            for k in range(starts[g] + 1, ends[g]):
                acc = acc + v[k]  # numpy scalar arithmetic: float64 or int64, as in the file's field
            out[g] = acc
        v = out
    elif v is not None:
        v = v[starts]
    return r[starts], c[starts], v


def dense_entries(dense, symmetry):
    nrows, ncols = dense.shape
    rr, cc = np.meshgrid(np.arange(nrows, dtype=np.int64), np.arange(ncols, dtype=np.int64), indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    vals = dense.ravel()
    if symmetry == "skew-symmetric":
        keep = rr != cc
        rr, cc, vals = rr[keep], cc[keep], vals[keep]
    return rr, cc, vals


def source(path):
    """What fast_matrix_market reads: the path, or for ``.gz`` a fresh decompressing file object."""
    return gzip.open(path, "rb") if path.endswith(".gz") else path


def read_one(path, out_path):
    header = fmm.read_header(source(path))
    info = {
        "object": header.object,
        "format": header.format,
        "field": header.field,
        "symmetry": header.symmetry,
        "shape": [int(header.shape[0]), int(header.shape[1])],
    }
    if header.field == "complex":
        # fast_matrix_market reads it (checked here); sparsedisk does not support complex values.
        fmm.read_coo(source(path))
        return "complex", info
    kind = {"real": "real", "double": "real", "integer": "integer", "pattern": "pattern"}[header.field]
    if header.format == "array":
        dense = fmm.mmread(source(path))
        shape = dense.shape
        r, c, v = dense_entries(dense, header.symmetry)
        reference = None  # the dense read is both the reader and the scipy form
    else:
        (data, (i, j)), shape = fmm.read_coo(source(path), generalize_symmetry=False)
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        vals = None if kind == "pattern" else np.asarray(data)
        r, c, v = sum_duplicates_in_order(*expand_file_order(i, j, vals, header.symmetry))
        reference = fmm.mmread(source(path)).tocsr()
    if kind == "real":
        v = np.asarray(v, dtype="<f8")
    elif kind == "integer":
        v = np.asarray(v, dtype="<i8")
    with open(out_path, "wb") as f:
        f.write(np.asarray(r, dtype="<i8").tobytes())
        f.write(np.asarray(c, dtype="<i8").tobytes())
        if v is not None:
            f.write(v.tobytes())
    info.update(shape=[int(shape[0]), int(shape[1])], nnz=int(len(r)), kind=kind)
    # The scipy reading: coo -> csr sums duplicates, keeps explicit zeros.
    if reference is not None:
        reference.sort_indices()
        indptr = np.searchsorted(r, np.arange(shape[0] + 1), side="left") if len(r) else np.zeros(shape[0] + 1)
        same = (
            tuple(reference.shape) == tuple(shape)
            and reference.nnz == len(r)
            and np.array_equal(reference.indptr, indptr)
            and np.array_equal(reference.indices, c)
        )
        info["scipy_structure_equal"] = bool(same)
        if same and v is not None:
            a = np.asarray(reference.data, dtype=np.float64)
            b = np.asarray(v, dtype=np.float64)
            both_nan = np.isnan(a) & np.isnan(b)
            with np.errstate(invalid="ignore"):
                d = np.where(both_nan | (a == b), 0.0, np.abs(a - b))
            info["scipy_values_equal"] = bool(not d.any())
            info["scipy_max_abs_diff"] = repr(float(d.max())) if len(d) else "0.0"
        else:
            info["scipy_values_equal"] = same
    else:
        info["scipy_structure_equal"] = True
        info["scipy_values_equal"] = True
    return "ok", info


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    list_file, out_dir = sys.argv[1], sys.argv[2]
    with open(list_file, encoding="utf-8") as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    for k, path in enumerate(paths):
        record = {"index": k, "path": path, "reader": "fast_matrix_market " + fmm.__version__}
        try:
            status, info = read_one(path, os.path.join(out_dir, f"{k}.bin"))
            record["status"] = status
            record.update(info)
        except Exception as e:  # noqa: BLE001 -- every reader failure is a verdict on the file
            record["status"] = "error"
            record["error"] = f"{type(e).__name__}: {e}"
            if not isinstance(e, (ValueError, OverflowError)):
                record["traceback"] = traceback.format_exc()
        print(json.dumps(record, allow_nan=False), flush=True)


if __name__ == "__main__":
    main()
