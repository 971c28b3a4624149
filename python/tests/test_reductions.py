"""Reductions, copies and pickles of matrices on disk against scipy: ``A.diagonal(k)`` for every
``k`` from below the matrix to beyond it, ``A.sum(axis)`` and ``A.mean(axis)`` for every axis, on
random matrices of every value type and layout (empty rows and columns, many segments, dense blocks)
and their transposed views; exact int64 sums and their limit; ``pickle`` round trips in this process
and in another one, ``copy.copy`` / ``copy.deepcopy``, and the errors."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedisk
from conftest import Case, standard_cases

SHAPES = ((0, 5), (5, 0), (1, 1), (1, 9), (8, 1), (37, 23), (23, 37))

CASES = standard_cases(SHAPES)


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def built(request, case_store):
    return case_store.get(request.param)


def _views(built):
    """``(matrix, oracle)`` for the stored matrix and its transposed view."""
    a = sparsedisk.open(built.path)
    return [(a, built.oracle), (a.T, built.oracle.T)]


def _dtype(kind):
    return {"float64": np.float64, "float32": np.float32, "int64": np.int64, "pattern": np.float64}[kind]


def _sum_dtype(kind):
    return np.int64 if kind in ("int64", "pattern") else np.float64


def _assert_sums(got, oracle, axis, kind, what):
    """``got`` against scipy's sum of the float64 (int64) oracle: equal for integer and pattern
    matrices; for float ones within the rounding of two summation orders (each sum has at most ``t``
    terms: ``2 gamma_t sum |a|``)."""
    expected = oracle.sum(axis=axis)
    assert np.shape(got) == np.shape(expected), f"{what}: shape {np.shape(got)}"
    assert np.asarray(got).dtype == _sum_dtype(kind), f"{what}: dtype {np.asarray(got).dtype}"
    if kind in ("int64", "pattern"):
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    t = max(oracle.shape) if oracle.nnz else 0
    if axis is None:
        t = oracle.nnz
    u = np.finfo(np.float64).eps / 2
    bound = 2 * (t + 1) * u * abs(oracle).sum(axis=axis) + np.finfo(np.float64).tiny
    assert np.all(np.abs(np.asarray(got) - expected) <= bound), f"{what}: {got} vs {expected}"


# -- diagonal ---------------------------------------------------------------------------------------


def test_diagonal_against_scipy(built):
    kind = built.case.kind
    for a, o in _views(built):
        m, n = a.shape
        for k in range(-m - 2, n + 3):
            got = a.diagonal(k)
            expected = o.diagonal(k)
            what = f"{built.case.id}{' (T)' if a.format != built.case.layout else ''} k={k}"
            assert isinstance(got, np.ndarray), what
            assert got.dtype == _dtype(kind), f"{what}: dtype {got.dtype}"
            assert got.shape == expected.shape, f"{what}: shape {got.shape}, scipy {expected.shape}"
            np.testing.assert_array_equal(got, expected, err_msg=what)
        np.testing.assert_array_equal(a.diagonal(), o.diagonal())


def test_diagonal_far_outside_and_of_numpy_ints(case_store):
    built = case_store.get(Case((37, 23), "int64", "csr", density=0.2))
    a = sparsedisk.open(built.path)
    for k in (10**30, -(10**30), 2**63, -(2**63) - 1):
        got = a.diagonal(k)
        assert got.shape == (0,) and got.dtype == np.int64
    np.testing.assert_array_equal(a.diagonal(np.int64(-3)), built.oracle.diagonal(-3))
    with pytest.raises(TypeError):
        a.diagonal(1.5)


def test_diagonal_of_a_laplacian_many_segments(laplacian):
    path, oracle = laplacian
    a = sparsedisk.open(path)
    assert len(a.segments) > 4
    for k in (0, 1, -1, 24, -24, 2):
        np.testing.assert_array_equal(a.diagonal(k), oracle.diagonal(k))


# -- sum and mean -----------------------------------------------------------------------------------


def test_sum_and_mean_against_scipy(built):
    kind = built.case.kind
    for a, o in _views(built):
        oracle = o.astype(np.int64) if kind in ("int64", "pattern") else o.astype(np.float64)
        for axis in (None, 0, 1, -1, -2):
            what = f"{built.case.id} {a.format} axis={axis}"
            got = a.sum(axis=axis)
            if axis is None:
                assert np.isscalar(got) or np.ndim(got) == 0, what
            _assert_sums(got, oracle, axis, kind, what)
            mean = a.mean(axis=axis)
            if 0 in a.shape:
                assert np.all(np.isnan(mean)), what
                continue
            # scipy's own mean multiplies by 1/count (an exact zero sum can come out as 5e-17):
            # compared with the sum divided by the count, up to the sums' rounding.
            m, n = a.shape
            count = m * n if axis is None else (m if axis in (0, -2) else n)
            o64 = oracle.astype(np.float64)
            expected = np.asarray(o64.sum(axis=axis), dtype=np.float64) / count
            atol = 1e-12 * abs(o64).sum(axis=axis) / count + 1e-300
            assert np.asarray(mean).dtype == np.float64, what
            assert np.all(np.abs(mean - expected) <= 1e-12 * np.abs(expected) + atol), f"{what}: {mean} vs {expected}"


def test_sum_dtype_and_out(case_store):
    built = case_store.get(Case((37, 23), "int64", "csc", density=0.2))
    a = sparsedisk.open(built.path)
    got = a.sum(axis=0, dtype=np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, built.oracle.sum(axis=0).astype(np.float32))
    out = np.empty(37, dtype=np.int64)
    assert a.sum(axis=1, out=out) is out
    np.testing.assert_array_equal(out, built.oracle.sum(axis=1))
    with pytest.raises(sparsedisk.InvalidInputError, match="out must be"):
        a.sum(axis=1, out=np.empty(3))
    assert a.sum(dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("axis", [2, -3, "rows", 1.0, (0, 1)])
def test_sum_refuses_other_axes(case_store, axis):
    a = sparsedisk.open(case_store.get(Case((8, 1), "float64", "csr", density=0.2)).path)
    with pytest.raises(ValueError, match="axis"):
        a.sum(axis=axis)
    with pytest.raises(ValueError, match="axis"):
        a.mean(axis=axis)


def test_int64_sums_are_exact_beyond_float64(tmp_path):
    """Values near 2^62: float64 (2^53 significant bits) would round every sum; the engine's are
    exact, and a sum outside int64 is refused instead of wrapping around."""
    big = 2**62 + 1
    m = sp.csr_array(
        (np.array([big, 3, big, -big, 1], dtype=np.int64), (np.array([0, 0, 1, 2, 2]), np.array([0, 2, 0, 1, 2]))),
        shape=(3, 3),
    )
    a = sparsedisk.from_scipy(m, tmp_path / "big")
    assert a.sum() == big + 4 and a.sum().dtype == np.int64  # partial sums pass 2^63 on the way
    np.testing.assert_array_equal(a.sum(axis=1), np.array([big + 3, big, -big + 1], dtype=np.int64))
    assert a.T.sum(axis=0).tolist() == [big + 3, big, -big + 1]
    assert a.mean() == (big + 4) / 9
    over = sparsedisk.from_scipy(
        sp.csr_array((np.array([2**62, 2**62], dtype=np.int64), (np.array([0, 1]), np.array([0, 0]))), shape=(2, 2)),
        tmp_path / "over",
    )
    np.testing.assert_array_equal(over.sum(axis=1), [2**62, 2**62])
    with pytest.raises(sparsedisk.InvalidInputError, match="int64 range"):
        over.sum()
    with pytest.raises(sparsedisk.InvalidInputError, match="column 0 exceeds the int64 range"):
        over.sum(axis=0)


# -- copies and pickles -----------------------------------------------------------------------------


def test_pickle_round_trip_in_process(case_store):
    built = case_store.get(Case((150, 120), "float64", "csr", density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path, threads=2)
    x = np.random.default_rng(3).standard_normal(120)
    for view in (a, a.T):
        b = pickle.loads(pickle.dumps(view))
        assert isinstance(b, sparsedisk.Matrix)
        assert (b.shape, b.format, b.threads, b.nnz) == (view.shape, view.format, 2, view.nnz)
        assert os.path.samefile(b.path, built.path)
        np.testing.assert_array_equal(b.diagonal(1), view.diagonal(1))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)) @ x, a @ x)


def test_pickle_records_an_absolute_path(case_store, tmp_path, monkeypatch):
    built = case_store.get(Case((37, 23), "pattern", "csc", density=0.2))
    monkeypatch.chdir(built.path.parent)
    a = sparsedisk.open(built.path.name)  # relative
    data = pickle.dumps(a.T)
    monkeypatch.chdir(tmp_path)
    b = pickle.loads(data)
    assert b.format == "csr" and b.shape == (23, 37)
    np.testing.assert_array_equal(b.sum(axis=0), built.oracle.T.sum(axis=0))


def test_pickle_round_trip_in_a_subprocess(case_store, tmp_path):
    built = case_store.get(Case((150, 120), "int64", "csc", density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path, threads=1).T
    (tmp_path / "m.pickle").write_bytes(pickle.dumps(a))
    script = (
        "import pickle, sys, numpy as np\n"
        "a = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "np.save(sys.argv[2], np.concatenate([a.diagonal(-2), a.sum(axis=0), [a.sum(), a.threads]]))\n"
        "print(a.shape, a.format)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.pickle"), str(tmp_path / "out.npy")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(120, 150) csr"
    o = built.oracle.T
    expected = np.concatenate([o.diagonal(-2), o.sum(axis=0), [o.sum(), 1]])
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_unpickle_when_the_matrix_is_gone_or_replaced(tmp_path):
    rng = np.random.default_rng(5)
    m = sp.random_array((20, 20), density=0.2, format="csr", rng=rng)
    a = sparsedisk.from_scipy(m, tmp_path / "m")
    data = pickle.dumps(a)
    # Rewritten with other contents at the same path.
    sparsedisk.from_scipy(m * 2, tmp_path / "m", overwrite=True)
    with pytest.raises(sparsedisk.NotFoundError, match="now holds another matrix"):
        pickle.loads(data)
    # Removed.
    data = pickle.dumps(sparsedisk.open(tmp_path / "m"))
    shutil.rmtree(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="cannot unpickle the sparsedisk matrix"):
        pickle.loads(data)


def test_copy_and_deepcopy(case_store):
    built = case_store.get(Case((37, 23), "float32", "csr", density=0.2))
    a = sparsedisk.open(built.path, threads=1)
    for c in (copy.copy(a), copy.deepcopy(a), copy.deepcopy(a.T).T):
        assert c is not a
        assert (c.shape, c.format, c.path, c.threads) == (a.shape, a.format, a.path, 1)
        np.testing.assert_array_equal(c.diagonal(), built.oracle.diagonal().astype(np.float32))
    c = copy.copy(a)
    c.threads = 2  # independent settings
    assert a.threads == 1
    holder = copy.deepcopy({"m": a.T})
    assert holder["m"].shape == (23, 37)
