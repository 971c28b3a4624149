#!/usr/bin/env python3
"""Check that a sparsedisk matrix directory reads, segment by segment, with the Python Binsparse and
Zarr packages, and equals the scipy matrix built from the same entries.

  check_segments.py MATRIX_DIR ENTRIES_FILE [--lap2d N]

ENTRIES_FILE is plain text: a first line `rows cols value_type layout` (value_type one of float64,
float32, int64, pattern; layout csr or csc), then one line `row col value` per stored entry (0-based,
no duplicates; the value is omitted for pattern).

For every segment listed in MATRIX_DIR/manifest.json, in order:

* the manifest tiles the outer dimension and agrees with the entries file;
* `zarr.open_group(segment, mode="r")` opens the segment; its `binsparse` attribute holds the
  Binsparse JSON descriptor `{"binsparse": {...}}` (version 0.1.0, CSR/CSC, band shape, number of stored values, data types) and its
  `sparsedisk` attributes the placement (`row_offset` / `col_offset`, `global_shape`);
* `binsparse.BinsparseTensor.parse(binsparse.ZarrBinsparseContainer(group))` parses it, and
  `binsparse.conversions.scipy.to_scipy` turns it into a scipy array that equals the band of the
  expected matrix exactly: the same row pointers, indices and values (pattern: the same structure,
  every value true); `binsparse.load_binsparse` reads it too through a `.zarr` symlink;
* each array's `zarr.json` is a one-chunk, uncompressed, little-endian array, and its chunk file
  `<array>/c/0` (absent when the array is empty) mapped with `numpy.memmap` equals what zarr read.

Then the bands, stacked (vstack for CSR, hstack for CSC), equal the whole expected matrix. With
`--lap2d N` and the environment variable SPARSEDISK_ANCHORS naming `anchors.py` (the shared
reference tools), the whole matrix must also equal anchors' `lap2d(N)`.

Prints one JSON line describing what was checked; exits 1 with a message on stderr at the first
mismatch, 2 on a usage error.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np
import scipy.sparse as sp
import zarr

import binsparse
from binsparse.conversions.scipy import to_scipy

BINSPARSE_VERSION = "0.1.0"
VALUE_DTYPES = {"float64": np.float64, "float32": np.float32, "int64": np.int64}
ARRAYS = ("pointers_to_1", "indices_1", "values")


class Mismatch(Exception):
    """A check failed: the message says what was expected and what was found."""


def usage(msg):
    print(f"check_segments: {msg}", file=sys.stderr)
    sys.exit(2)


def check(cond, msg):
    if not cond:
        raise Mismatch(msg)


# ---------------------------------------------------------------- the expected matrix

def read_entries(path):
    """The entries file as (shape, value_type, layout, expected scipy CSR with sorted indices)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().split()
        if len(header) != 4:
            usage(f"{path}: first line must be `rows cols value_type layout`, got {header}")
        rows, cols, value_type, layout = int(header[0]), int(header[1]), header[2], header[3]
        if value_type not in (*VALUE_DTYPES, "pattern") or layout not in ("csr", "csc"):
            usage(f"{path}: unknown value type {value_type!r} or layout {layout!r}")
        r, c, v = [], [], []
        for lineno, line in enumerate(f, start=2):
            parts = line.split()
            if not parts:
                continue
            want = 2 if value_type == "pattern" else 3
            if len(parts) != want:
                usage(f"{path}:{lineno}: expected {want} fields, got {len(parts)}")
            r.append(int(parts[0]))
            c.append(int(parts[1]))
            if value_type == "int64":
                v.append(int(parts[2]))  # exact beyond 2^53, unlike a float parse
            elif value_type != "pattern":
                v.append(float(parts[2]))
    n = len(r)
    dtype = np.bool_ if value_type == "pattern" else VALUE_DTYPES[value_type]
    data = np.ones(n, dtype=dtype) if value_type == "pattern" else np.array(v, dtype=dtype)
    coo = sp.coo_array((data, (np.array(r, dtype=np.int64), np.array(c, dtype=np.int64))), shape=(rows, cols))
    whole = coo.tocsr()
    whole.sort_indices()
    if whole.nnz != n:
        usage(f"{path}: {n} entries but {whole.nnz} distinct positions: duplicates are not allowed")
    return (rows, cols), value_type, layout, whole


def compressed(m, layout):
    """`m` as a canonical CSR (layout csr) or CSC (layout csc) array with int64 index arrays."""
    m = sp.csr_array(m) if layout == "csr" else sp.csc_array(m)
    m = m.copy()
    m.sort_indices()
    return m


def band(whole_c, start, end):
    """Outer indices start..end of a compressed array, sliced by hand so nothing (explicit zeros
    included) is dropped: (indptr rebased to 0, indices, data)."""
    lo, hi = int(whole_c.indptr[start]), int(whole_c.indptr[end])
    indptr = whole_c.indptr[start : end + 1].astype(np.int64) - lo
    return indptr, whole_c.indices[lo:hi].astype(np.int64), whole_c.data[lo:hi]


def same_matrix(what, got, want, value_type, layout):
    """Exact equality of two sparse arrays: shape, structure, and values (pattern: all true)."""
    check(tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    g, w = compressed(got, layout), compressed(want, layout)
    check(g.nnz == w.nnz, f"{what}: {g.nnz} stored values, expected {w.nnz}")
    check(np.array_equal(g.indptr, w.indptr), f"{what}: {layout} pointers differ")
    check(np.array_equal(g.indices, w.indices), f"{what}: indices differ")
    same_values(what, g.data, w.data, value_type)


def same_values(what, got, want, value_type):
    if value_type == "pattern":
        check(got.size == want.size, f"{what}: {got.size} values, expected {want.size}")
        check(bool(np.all(got == 1)), f"{what}: a pattern value is not true/1")
        return
    check(got.dtype == np.dtype(VALUE_DTYPES[value_type]), f"{what}: values are {got.dtype}, expected {value_type}")
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)
        i = int(bad[0]) if bad.size else 0
        raise Mismatch(f"{what}: {bad.size} values differ, first at position {i}: {got[i]!r} != {want[i]!r}")


# ---------------------------------------------------------------- binsparse

def parse_binsparse(group, seg_name):
    """Parse the segment with binsparse's own Zarr container, exactly as a user would."""
    try:
        return binsparse.BinsparseTensor.parse(binsparse.ZarrBinsparseContainer(group))
    except binsparse.BinsparseParseError as e:
        raise Mismatch(f"{seg_name}: binsparse cannot parse the segment: {e}") from e


def try_load_binsparse(seg_path):
    """`binsparse.load_binsparse` on a `.zarr` symlink to the segment, as docs/FORMAT.md suggests."""
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "segment.zarr")
        os.symlink(os.path.abspath(seg_path), link)
        try:
            t = binsparse.load_binsparse(link)
        except binsparse.BinsparseParseError as e:
            return None, str(e)
        # Materialise before the symlink goes away.
        return (t.format, tuple(t.shape), np.array(t.pointers_to_1), np.array(t.indices_1), np.array(t.values)), None


# ---------------------------------------------------------------- zarr arrays and chunk files

def check_array(seg_path, seg_name, group, name, length, data_type, manifest_file):
    """The array's metadata, zarr's read, and the memory-mapped chunk file agree; returns the array."""
    what = f"{seg_name}/{name}"
    with open(os.path.join(seg_path, name, "zarr.json"), encoding="utf-8") as f:
        meta = json.load(f)
    check(meta.get("zarr_format") == 3 and meta.get("node_type") == "array", f"{what}: not a Zarr v3 array")
    check(meta.get("shape") == [length], f"{what}: shape {meta.get('shape')}, expected [{length}]")
    check(meta.get("data_type") == data_type, f"{what}: data_type {meta.get('data_type')!r}, expected {data_type!r}")
    chunk_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    check(chunk_shape == [max(length, 1)], f"{what}: chunk_shape {chunk_shape}, expected one chunk")
    check(
        meta.get("codecs") == [{"name": "bytes", "configuration": {"endian": "little"}}],
        f"{what}: codecs {meta.get('codecs')}, expected only little-endian bytes (no compression)",
    )
    arr = group[name]
    check(tuple(arr.shape) == (length,), f"{what}: zarr shape {arr.shape}, expected ({length},)")
    read = np.asarray(arr[...])
    dtype = np.dtype(data_type).newbyteorder("<")
    check(read.dtype == dtype, f"{what}: zarr read {read.dtype}, expected {dtype}")
    chunk = os.path.join(seg_path, name, "c", "0")
    if length == 0:
        # Zarr writes no chunk for an empty array; sparsedisk leaves none.
        check(not os.path.exists(chunk) or os.path.getsize(chunk) == 0, f"{what}: an empty array has a chunk file")
        mapped = 0
    else:
        size = os.path.getsize(chunk)
        check(size == length * dtype.itemsize, f"{what}: chunk holds {size} bytes, expected {length * dtype.itemsize}")
        mm = np.memmap(chunk, dtype=dtype, mode="r", shape=(length,))
        check(np.array_equal(np.asarray(mm), read), f"{what}: the memory-mapped chunk differs from zarr's read")
        del mm
        mapped = 1
    if manifest_file is not None:
        rel = os.path.relpath(chunk, os.path.dirname(seg_path)).replace(os.sep, "/")
        check(manifest_file["path"] == rel, f"{what}: manifest lists {manifest_file['path']!r}, expected {rel!r}")
        check(manifest_file["bytes"] == length * dtype.itemsize, f"{what}: manifest says {manifest_file['bytes']} bytes")
    return read, mapped


# ---------------------------------------------------------------- main

def check_matrix(matrix_dir, entries_path, lap2d_n):
    shape, value_type, layout, whole = read_entries(entries_path)
    rows, cols = shape
    with open(os.path.join(matrix_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)

    check(manifest.get("format") == "sparsedisk", "manifest: format is not 'sparsedisk'")
    check(manifest.get("shape") == [rows, cols], f"manifest: shape {manifest.get('shape')}, expected {[rows, cols]}")
    check(manifest.get("layout") == layout, f"manifest: layout {manifest.get('layout')}, expected {layout}")
    check(manifest.get("value_type") == value_type, f"manifest: value_type {manifest.get('value_type')}, expected {value_type}")
    check(manifest.get("nnz") == whole.nnz, f"manifest: nnz {manifest.get('nnz')}, expected {whole.nnz}")
    index_type = "uint32" if (cols if layout == "csr" else rows) < 1 << 32 else "uint64"
    check(manifest.get("index_type") == index_type, f"manifest: index_type {manifest.get('index_type')}, expected {index_type}")

    outer_dim = rows if layout == "csr" else cols
    whole_c = compressed(whole, layout)
    offset_key, other_key = ("row_offset", "col_offset") if layout == "csr" else ("col_offset", "row_offset")
    values_type = "iso[bint8]" if value_type == "pattern" else value_type

    segments = manifest["segments"]
    bands = []
    mapped = empty_segments = 0
    load_binsparse_ok = 0
    expected_start = 0
    for seg in segments:
        name, start, end, nnz = seg["name"], seg["start"], seg["end"], seg["nnz"]
        check(start == expected_start and start < end <= outer_dim, f"{name}: band {start}..{end} does not tile 0..{outer_dim}")
        expected_start = end
        b_indptr, b_indices, b_data = band(whole_c, start, end)
        check(nnz == b_indices.size, f"{name}: manifest nnz {nnz}, the entries give {b_indices.size}")
        empty_segments += nnz == 0
        band_shape = [end - start, cols] if layout == "csr" else [rows, end - start]
        seg_path = os.path.join(matrix_dir, name)

        group = zarr.open_group(seg_path, mode="r")
        attrs = group.attrs.asdict()
        outer_desc = attrs.get("binsparse")
        check(isinstance(outer_desc, dict) and set(outer_desc) == {"binsparse"}, f"{name}: the 'binsparse' attribute is not a descriptor {{'binsparse': ...}}")
        desc = outer_desc["binsparse"]
        check(isinstance(desc, dict), f"{name}: the descriptor's 'binsparse' member is not an object")
        check(desc.get("version") == BINSPARSE_VERSION, f"{name}: binsparse version {desc.get('version')!r}")
        check(desc.get("format") == layout.upper(), f"{name}: format {desc.get('format')!r}, expected {layout.upper()}")
        check(desc.get("shape") == band_shape, f"{name}: descriptor shape {desc.get('shape')}, expected {band_shape}")
        check(desc.get("number_of_stored_values") == nnz, f"{name}: number_of_stored_values {desc.get('number_of_stored_values')}, expected {nnz}")
        want_types = {"pointers_to_1": "uint64", "indices_1": index_type, "values": values_type}
        check(desc.get("data_types") == want_types, f"{name}: data_types {desc.get('data_types')}, expected {want_types}")
        place = attrs.get("sparsedisk")
        check(isinstance(place, dict), f"{name}: no 'sparsedisk' attribute")
        check(place.get(offset_key) == start, f"{name}: {offset_key} {place.get(offset_key)}, expected {start}")
        check(other_key not in place, f"{name}: a {layout} segment has {other_key}")
        check(place.get("global_shape") == [rows, cols], f"{name}: global_shape {place.get('global_shape')}, expected {[rows, cols]}")

        # The raw arrays: metadata, zarr, memmap; and the arrays equal the expected band.
        indptr, m1 = check_array(seg_path, name, group, "pointers_to_1", end - start + 1, "uint64", seg["indptr"])
        indices, m2 = check_array(seg_path, name, group, "indices_1", nnz, index_type, seg["indices"])
        if value_type == "pattern":
            check(seg["values"] is None, f"{name}: a pattern segment lists a values chunk in the manifest")
            values, m3 = check_array(seg_path, name, group, "values", 1, "bool", None)
            check(values.tolist() == [True], f"{name}: the iso pattern value is {values.tolist()}, expected [True]")
        else:
            values, m3 = check_array(seg_path, name, group, "values", nnz, value_type, seg["values"])
        mapped += m1 + m2 + m3
        check(np.array_equal(indptr.astype(np.int64), b_indptr), f"{name}: pointers_to_1 differs from the entries")
        check(np.array_equal(indices.astype(np.int64), b_indices), f"{name}: indices_1 differs from the entries")
        if value_type != "pattern":
            same_values(f"{name}: values", values, b_data, value_type)

        # Binsparse, then scipy.
        tensor = parse_binsparse(group, name)
        want_cls = binsparse.CSRMatrix if layout == "csr" else binsparse.CSCMatrix
        check(type(tensor) is want_cls, f"{name}: binsparse parsed a {type(tensor).__name__}, expected {want_cls.__name__}")
        check(tensor.format == layout.upper(), f"{name}: binsparse format {tensor.format}")
        check(tuple(tensor.shape) == tuple(band_shape), f"{name}: binsparse shape {tensor.shape}, expected {band_shape}")
        check(tensor.number_of_stored_values == nnz, f"{name}: binsparse number_of_stored_values {tensor.number_of_stored_values}")
        check(tensor.values.size == nnz, f"{name}: binsparse decoded {tensor.values.size} values, expected {nnz}")
        got = to_scipy(tensor)
        check(got.format == layout, f"{name}: to_scipy gave {got.format}, expected {layout}")
        want_band = (sp.csr_array if layout == "csr" else sp.csc_array)((b_data, b_indices, b_indptr), shape=tuple(band_shape))
        same_matrix(f"{name} (binsparse -> scipy)", got, want_band, value_type, layout)
        bands.append(got)

        loaded, err = try_load_binsparse(seg_path)
        check(err is None, f"{name}: binsparse.load_binsparse fails: {err}")
        if loaded is not None:
            fmt, lshape, lp, li, lv = loaded
            check(fmt == layout.upper() and lshape == tuple(band_shape), f"{name}: load_binsparse gave {fmt} {lshape}")
            check(np.array_equal(lp, indptr) and np.array_equal(li, indices), f"{name}: load_binsparse arrays differ")
            check(lv.size == nnz and (value_type == "pattern" or np.array_equal(lv, values)), f"{name}: load_binsparse values differ")
            load_binsparse_ok += 1

    check(expected_start == outer_dim, f"manifest: segments end at {expected_start}, the outer dimension is {outer_dim}")
    check(sum(s["nnz"] for s in segments) == whole.nnz, "manifest: segment nnz do not add up to the matrix nnz")

    # The bands, stacked, are the whole matrix.
    if bands:
        stacked = sp.vstack(bands, format="csr") if layout == "csr" else sp.hstack(bands, format="csc")
        same_matrix("stacked bands", stacked, whole, value_type, layout)
    else:
        check(outer_dim == 0, "manifest: no segments for a non-empty outer dimension")
        stacked = whole

    anchors = None
    if lap2d_n is not None:
        path = os.environ.get("SPARSEDISK_ANCHORS")
        if not path:
            usage("--lap2d needs SPARSEDISK_ANCHORS set to ../shared/tools/anchors/anchors.py")
        spec = importlib.util.spec_from_file_location("sparsedisk_anchors", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ref = sp.csr_array(module.lap2d(lap2d_n))
        # scipy's kron builds small grids (n <= 5) through BSR blocks and keeps their explicit zeros;
        # they are no entries of the Laplacian, which sparsedisk does not store.
        ref.eliminate_zeros()
        check(value_type != "pattern", "--lap2d compares values: the matrix must not be a pattern")
        same_matrix(f"entries vs anchors lap2d({lap2d_n})", whole.astype(np.float64), ref, "float64", "csr")
        same_matrix(f"segments vs anchors lap2d({lap2d_n})", stacked.astype(np.float64), ref, "float64", "csr")
        anchors = {"lap2d": lap2d_n, "path": os.path.abspath(path)}

    return {
        "matrix": os.path.abspath(matrix_dir),
        "shape": [rows, cols],
        "layout": layout,
        "value_type": value_type,
        "index_type": index_type,
        "nnz": int(whole.nnz),
        "segments": len(segments),
        "empty_segments": int(empty_segments),
        "binsparse_version": _dist_version("binsparse"),
        "zarr_version": zarr.__version__,
        "load_binsparse_segments": load_binsparse_ok,
        "memmapped_chunks": int(mapped),
        "checks": [
            "manifest",
            "descriptor",
            "placement",
            "zarr_metadata",
            "memmap_chunks",
            "binsparse_to_scipy_bands",
            "stacked_whole",
        ]
        + (["anchors_lap2d"] if anchors else []),
        "anchors": anchors,
    }


def _dist_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - the version is informative only
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix_dir")
    p.add_argument("entries_file")
    p.add_argument("--lap2d", type=int, metavar="N", help="also compare with anchors.py lap2d(N) (needs SPARSEDISK_ANCHORS)")
    a = p.parse_args()
    try:
        report = check_matrix(a.matrix_dir, a.entries_file, a.lap2d)
    except Mismatch as e:
        print(f"check_segments: MISMATCH in {a.matrix_dir}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
