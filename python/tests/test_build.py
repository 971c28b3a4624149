"""Making matrices from Python: ``from_scipy`` round trips, the triplet ``builder`` (any order,
duplicates, spilling past its memory budget, nothing left behind on error) and ``import_file``."""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import sparsedisk
from conftest import assert_same_sparse, oracle_of, random_triplets

# -- from_scipy -----------------------------------------------------------------------------------


def _random(rng, shape=(30, 20), density=0.2, dtype=np.float64):
    m = sp.random_array(shape, density=density, format="csr", rng=rng)
    if dtype == np.int64:
        m.data = rng.integers(-50, 50, size=m.nnz).astype(np.float64)
    return m.astype(dtype)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "bsr"])
@pytest.mark.parametrize("matrix_or_array", ["array", "matrix"])
def test_from_scipy_formats(tmp_path, fmt, matrix_or_array):
    rng = np.random.default_rng(0)
    m = _random(rng)
    if matrix_or_array == "matrix":
        m = sp.csr_matrix(m)
    src = m.asformat(fmt)
    a = sparsedisk.from_scipy(src, tmp_path / "m")
    assert a.format == (fmt if fmt in ("csr", "csc") else "csr")
    assert a.shape == m.shape and a.nnz == m.nnz and a.value_type == "float64"
    assert_same_sparse(a.to_scipy(), m, what=f"from_scipy({fmt})")
    assert os.path.isfile(tmp_path / "m" / "manifest.json")
    a.verify()


@pytest.mark.parametrize(
    "dtype,value_type",
    [(np.float64, "float64"), (np.float32, "float32"), (np.int64, "int64"), (bool, "pattern")],
)
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_from_scipy_value_types(tmp_path, dtype, value_type, layout):
    rng = np.random.default_rng(1)
    m = _random(rng, dtype=np.int64 if dtype == np.int64 else np.float64)
    m = (m != 0) if dtype is bool else m.astype(dtype)
    a = sparsedisk.from_scipy(m.asformat(layout), tmp_path / "m")
    assert a.value_type == value_type
    assert a.format == layout
    back = a.to_scipy()
    assert back.format == layout
    if value_type == "pattern":
        assert back.dtype == np.float64 and np.all(back.data == 1)
        assert_same_sparse(back, m.astype(np.float64), what="bool -> pattern")
    else:
        assert back.dtype == dtype
        assert_same_sparse(back, m, what=f"{value_type} round trip")


def test_from_scipy_layout_option_converts(tmp_path):
    m = _random(np.random.default_rng(2))
    a = sparsedisk.from_scipy(m, tmp_path / "c", layout="csc")
    assert a.format == "csc"
    assert_same_sparse(a.to_scipy(), m, what="csr written as csc")


def test_from_scipy_sums_duplicates(tmp_path):
    rows = np.array([0, 2, 0, 1, 2, 0])
    cols = np.array([1, 0, 1, 1, 0, 1])
    vals = np.array([1.5, 2.0, 2.5, -1.0, 3.0, 1.0])
    coo = sp.coo_array((vals, (rows, cols)), shape=(3, 2))
    a = sparsedisk.from_scipy(coo, tmp_path / "d")
    assert a.nnz == 3
    np.testing.assert_array_equal(a.toarray(), [[0, 5.0], [0, -1.0], [5.0, 0]])
    # The caller's matrix is not modified.
    assert coo.nnz == 6
    # Also a CSR matrix that holds duplicates in its arrays.
    csr = sp.csr_array((np.array([1.0, 2.0, 4.0]), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 2))
    assert not csr.has_canonical_format
    b = sparsedisk.from_scipy(csr, tmp_path / "d2")
    np.testing.assert_array_equal(b.toarray(), [[0, 3.0], [4.0, 0]])
    assert csr.nnz == 3  # not summed in place


def test_from_scipy_unsorted_indices(tmp_path):
    indptr = np.array([0, 3, 3, 5])
    indices = np.array([4, 0, 2, 3, 1])
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    m = sp.csr_array((data, indices, indptr), shape=(3, 5))
    m.has_sorted_indices = False
    a = sparsedisk.from_scipy(m, tmp_path / "u")
    expected = np.zeros((3, 5))
    expected[0, [4, 0, 2]] = [1, 2, 3]
    expected[2, [3, 1]] = [4, 5]
    np.testing.assert_array_equal(a.toarray(), expected)
    out = a.to_scipy()
    assert np.all(np.diff(out.indices[:3]) > 0)
    a.verify()
    np.testing.assert_array_equal(indices, [4, 0, 2, 3, 1])  # the input is left as it was


def test_from_scipy_keeps_explicit_zeros_and_empty_shapes(tmp_path):
    m = sp.csr_array((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 1, 2])), shape=(2, 2))
    a = sparsedisk.from_scipy(m, tmp_path / "z")
    assert a.nnz == 2
    assert_same_sparse(a.to_scipy(), m, what="explicit zero")
    for shape in [(0, 0), (0, 4), (4, 0), (3, 3)]:
        e = sparsedisk.from_scipy(sp.csr_array(shape), tmp_path / f"e{shape[0]}{shape[1]}")
        assert e.shape == shape and e.nnz == 0
        assert e.to_scipy().shape == shape
        np.testing.assert_array_equal(e @ np.ones(shape[1]), np.zeros(shape[0]))


def test_from_scipy_refuses_non_sparse(tmp_path):
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.from_scipy(np.eye(3), tmp_path / "x")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.from_scipy(sp.csr_array(np.eye(3, dtype=np.complex128)), tmp_path / "c")
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "c" / "manifest.json").exists()


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint16, np.uint64])
def test_from_scipy_other_dtypes_convert_or_refuse_clearly(tmp_path, dtype):
    """Other value dtypes are converted where that is exact (int32 -> int64, uint16 -> int64 or
    float64) or refused with a message naming the stored types (the issue allows either)."""
    m = sp.csr_array(np.array([[1, 0], [0, 3]], dtype=dtype))
    try:
        a = sparsedisk.from_scipy(m, tmp_path / "m")
    except sparsedisk.InvalidInputError as e:
        assert "int64" in str(e) and "float64" in str(e), str(e)
        assert not (tmp_path / "m" / "manifest.json").exists()
    else:
        np.testing.assert_array_equal(a.toarray(), m.toarray())


# -- builder --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float64", "float32", "int64", "pattern"])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_builder_chunks_in_random_order(tmp_path, kind, layout):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{layout}".encode()))
    shape = (300, 200)
    rows, cols, vals = random_triplets(rng, shape, 0.05, kind)
    oracle = oracle_of(rows, cols, vals, shape, kind)
    dtype = {"float64": np.float64, "float32": np.float32, "int64": np.int64, "pattern": "pattern"}[kind]
    cuts = np.sort(rng.choice(np.arange(1, len(rows)), size=6, replace=False))
    with sparsedisk.builder(tmp_path / "b", shape, dtype=dtype, layout=layout, threads=2) as b:
        for part in np.split(np.arange(len(rows)), cuts):
            b.add(rows[part], cols[part], None if vals is None else vals[part])
        b.add(np.zeros(0, np.int64), np.zeros(0, np.int64), None if vals is None else vals[:0])  # empty chunk
    a = b.matrix
    assert isinstance(a, sparsedisk.Matrix)
    assert a.format == layout and a.value_type == kind and a.shape == shape
    assert_same_sparse(a.to_scipy(), oracle, what=f"builder {kind} {layout}")
    assert a.verify()
    # The same matrix opens from its path.
    assert_same_sparse(sparsedisk.open(tmp_path / "b").to_scipy(), oracle, what="reopened")


def test_builder_index_types_and_finish_without_context(tmp_path):
    b = sparsedisk.builder(tmp_path / "m", (4, 3))
    b.add(np.array([3, 0], dtype=np.uint8), np.array([2, 0], dtype=np.int16), np.array([1, 2], dtype=np.int32))
    b.add([1], [1], [0.5])  # lists
    a = b.finish()
    assert b.finish() is a  # finishing twice returns the matrix
    np.testing.assert_array_equal(a.toarray(), [[2, 0, 0], [0, 0.5, 0], [0, 0, 0], [0, 0, 1]])
    with pytest.raises(sparsedisk.InvalidInputError):
        b.add([0], [0], [1.0])  # finished


@pytest.mark.parametrize(
    "mode,expected",
    [("sum", 6.0), ("min", 1.0), ("max", 3.0), ("first", 2.0), ("last", 3.0)],
)
def test_builder_duplicate_modes(tmp_path, mode, expected):
    with sparsedisk.builder(tmp_path / "m", (2, 2), duplicates=mode) as b:
        b.add([1], [0], [2.0])
        b.add([1, 1], [0, 0], [1.0, 3.0])
        b.add([0], [1], [7.0])
    np.testing.assert_array_equal(b.matrix.toarray(), [[0, 7.0], [expected, 0]])


def test_builder_duplicates_error(tmp_path):
    path = tmp_path / "dup"
    with pytest.raises(sparsedisk.Error) as info:
        with sparsedisk.builder(path, (3, 3), duplicates="error") as b:
            b.add([0, 1, 0], [2, 1, 2], [1.0, 2.0, 3.0])
    assert "(0, 2)" in str(info.value) or "duplicate" in str(info.value).lower(), str(info.value)
    assert not (path / "manifest.json").exists()
    with pytest.raises(sparsedisk.NotFoundError):
        sparsedisk.open(path)


def test_builder_context_manager_removes_everything_on_error(tmp_path):
    path = tmp_path / "never"

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with sparsedisk.builder(path, (10, 10)) as b:
            b.add(np.arange(10), np.arange(10), np.ones(10))
            raise Boom()
    assert not path.exists() or not any(path.iterdir()), sorted(os.listdir(path))
    assert b.matrix is None
    with pytest.raises(sparsedisk.InvalidInputError):
        b.finish()  # aborted
    # An aborted builder over an existing matrix leaves that matrix as it was.
    sparsedisk.from_scipy(sp.csr_array(np.eye(3)), tmp_path / "old")
    with pytest.raises(Boom):
        with sparsedisk.builder(tmp_path / "old", (3, 3), overwrite=True) as b2:
            b2.add([0], [1], [5.0])
            raise Boom()
    np.testing.assert_array_equal(sparsedisk.open(tmp_path / "old").toarray(), np.eye(3))


def test_builder_spills_past_its_budget(tmp_path):
    """Three million triplets (72 MB as (u64, u64, f64)) under an 80 MB budget, of which sorting
    gets a part: the builder must spill sorted runs and merge them, and still be exact."""
    n = 3_000_000
    shape = (20_000, 5_000)
    rng = np.random.default_rng(8)
    rows = rng.integers(0, shape[0], size=n)
    cols = rng.integers(0, shape[1], size=n)
    vals = rng.integers(-3, 4, size=n).astype(np.int64)
    b = sparsedisk.builder(tmp_path / "big", shape, dtype=np.int64, memory="80M", threads=2)
    native = b._native  # the stats live on the native builder
    for part in np.array_split(np.arange(n), 5):
        b.add(rows[part], cols[part], vals[part])
    a = b.finish()
    stats = native.stats
    assert stats["triplets"] == n
    assert stats["runs"] > 1 and stats["spilled_bytes"] > 0, stats
    oracle = sp.coo_array((vals, (rows, cols)), shape=shape).tocsr()
    oracle.sum_duplicates()
    assert a.nnz == oracle.nnz
    assert_same_sparse(a.to_scipy(), oracle, what="spilled build")


# -- import_file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
def test_import_file_mmwrite(tmp_path, symmetric):
    rng = np.random.default_rng(9)
    m = sp.random_array((40, 40), density=0.1, rng=rng, format="csr")
    if symmetric:
        m = (m + m.T).tocsr()
    scipy.io.mmwrite(tmp_path / "m.mtx", m)
    header = (tmp_path / "m.mtx").read_text().splitlines()[0]
    assert ("symmetric" in header) == symmetric
    a = sparsedisk.import_file(tmp_path / "m.mtx", tmp_path / "a")
    assert a.value_type == "float64" and a.format == "csr"
    # mmwrite prints values with enough digits to read them back exactly (as scipy.io.mmread does).
    assert_same_sparse(a.to_scipy(), scipy.io.mmread(tmp_path / "m.mtx"), what="import_file(mmwrite)")
    c = sparsedisk.import_file(tmp_path / "m.mtx", tmp_path / "c", layout="csc", value_type="float32")
    assert c.format == "csc" and c.value_type == "float32"
    assert_same_sparse(c.to_scipy(), m.astype(np.float32), what="import_file float32 csc")


def test_import_file_integer_and_gzip(tmp_path):
    m = sp.csr_array(np.array([[1, 0, -7], [0, 0, 0], [0, 12, 0]], dtype=np.int64))
    scipy.io.mmwrite(tmp_path / "i.mtx", m)
    a = sparsedisk.import_file(tmp_path / "i.mtx", tmp_path / "a")
    assert a.value_type == "int64"
    np.testing.assert_array_equal(a.toarray(), m.toarray())
    with open(tmp_path / "i.mtx", "rb") as src, gzip.open(tmp_path / "i.mtx.gz", "wb") as dst:
        dst.write(src.read())
    g = sparsedisk.import_file(tmp_path / "i.mtx.gz", tmp_path / "g")
    np.testing.assert_array_equal(g.toarray(), m.toarray())


def test_import_file_edge_list(tmp_path):
    edges = tmp_path / "g.txt"
    edges.write_text("# a comment\n0 1\n1 2\n2 0\n4 3\n0 1\n")
    g = sparsedisk.import_file(edges, tmp_path / "g")
    assert g.shape == (5, 5)  # square: largest id + 1
    assert g.value_type == "pattern"
    expected = np.zeros((5, 5))
    expected[[0, 1, 2, 4], [1, 2, 0, 3]] = 1
    np.testing.assert_array_equal(g.toarray(), expected)
    # Weighted, 1-based, symmetrized, explicit shape.
    w = tmp_path / "w.txt"
    w.write_text("1 2 0.5\n2 3 1.5\n")
    h = sparsedisk.import_file(w, tmp_path / "h", index_base=1, symmetrize=True, shape=(4, 4))
    assert h.shape == (4, 4) and h.value_type == "float64"
    e = np.zeros((4, 4))
    e[0, 1] = e[1, 0] = 0.5
    e[1, 2] = e[2, 1] = 1.5
    np.testing.assert_array_equal(h.toarray(), e)
    # Rectangular edge list (a bipartite graph).
    r = sparsedisk.import_file(w, tmp_path / "r", index_base=1, square=False, format="edges")
    assert r.shape == (2, 3)


def test_import_file_options(tmp_path):
    src = tmp_path / "d.mtx"
    src.write_text("%%MatrixMarket matrix coordinate real general\n2 2 4\n1 1 1\n1 1 2\n2 2 3\n2 1 0\n")
    a = sparsedisk.import_file(src, tmp_path / "a", duplicates="max", drop_zeros=True, memory="128M", threads=1)
    np.testing.assert_array_equal(a.toarray(), [[2, 0], [0, 3]])
    assert a.nnz == 2
    both = sparsedisk.import_file(src, tmp_path / "both", layout="both")
    assert both.format == "csr"
    assert sparsedisk.open(tmp_path / "both" / "csc").format == "csc"
    np.testing.assert_array_equal(sparsedisk.open(tmp_path / "both" / "csc").toarray(), [[3, 0], [0, 3]])
    with pytest.raises(sparsedisk.Error):
        sparsedisk.import_file(src, tmp_path / "e", duplicates="error")
    assert not (tmp_path / "e" / "manifest.json").exists()


@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (4, 0), (3, 3)])
def test_builder_without_entries(tmp_path, shape):
    with sparsedisk.builder(tmp_path / "e", shape, layout="csc") as b:
        pass
    a = b.matrix
    assert a.shape == shape and a.nnz == 0 and a.format == "csc"
    assert a.to_scipy().shape == shape
    np.testing.assert_array_equal(a @ np.ones(shape[1]), np.zeros(shape[0]))
    a.verify()


def test_special_values_round_trip_bit_for_bit(tmp_path):
    """NaN, infinities, -0.0, subnormals and int64 extremes are stored as given."""
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, np.finfo(np.float64).max, 1 / 3])
    n = len(special)
    m = sp.csr_array((special, np.arange(n), np.arange(n + 1)), shape=(n, n))
    a = sparsedisk.from_scipy(m, tmp_path / "f")
    np.testing.assert_array_equal(a.to_scipy().data.view(np.uint64), special.view(np.uint64))
    with sparsedisk.builder(tmp_path / "b", (n, n)) as b:
        b.add(np.arange(n)[::-1], np.arange(n)[::-1], special[::-1])
    np.testing.assert_array_equal(b.matrix.to_scipy().data.view(np.uint64), special.view(np.uint64))
    extremes = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 2**53 + 1])
    mi = sp.csr_array((extremes, np.arange(4), np.arange(5)), shape=(4, 4))
    ai = sparsedisk.from_scipy(mi, tmp_path / "i")
    assert ai.value_type == "int64"
    np.testing.assert_array_equal(ai.to_scipy().data, extremes)
    # Products are float64: int64 values round to the nearest float64, as scipy's astype does.
    np.testing.assert_array_equal(ai @ np.ones(4), extremes.astype(np.float64))


def test_import_file_csv(tmp_path):
    src = tmp_path / "e.csv"
    src.write_text("src,dst,w\n0,1,2.5\n2,0,1\n0,1,0.5\n")
    a = sparsedisk.import_file(src, tmp_path / "c")
    assert a.shape == (3, 2)  # CSV: max row + 1 by max column + 1
    np.testing.assert_array_equal(a.toarray(), [[0, 3.0], [0, 0], [1.0, 0]])
    sq = sparsedisk.import_file(src, tmp_path / "s", square=True, layout="csc", value_type="float32")
    assert sq.shape == (3, 3) and sq.format == "csc" and sq.value_type == "float32"
