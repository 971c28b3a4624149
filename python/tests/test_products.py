"""Products of matrices on disk against scipy: ``A @ x``, ``A.dot(X)``, ``A.T @ y``, ``x @ A``,
``matvec``/``rmatvec``/``matmat``/``rmatmat``, on random matrices of every shape class (0 x n, n x 0,
1 x 1, thin, with empty rows and columns), every value type, both layouts, one and many segments
(and segments with dense blocks), on one and two threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import sparsedisk
from conftest import EXACT_KINDS, Case, assert_product, operand, standard_cases

KINDS = ("float64", "float32", "int64", "pattern")
LAYOUTS = ("csr", "csc")
SHAPES = ((0, 5), (5, 0), (0, 0), (1, 1), (1, 9), (8, 1), (37, 23), (64, 80))
KS = (1, 2, 3, 8, 17)

CASES = standard_cases(SHAPES)


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def built(request, case_store):
    return case_store.get(request.param)


def test_case_matrices_are_what_was_asked(built):
    """The fixtures themselves: shape, layout, value type, nnz and (for the segmented cases) several
    segments, so that the products below really cover those cases."""
    case = built.case
    a = sparsedisk.open(built.path)
    assert a.shape == case.shape
    assert a.ndim == 2
    assert a.format == case.layout
    assert a.value_type == case.kind
    assert a.dtype == (np.int64 if case.kind == "int64" else np.float32 if case.kind == "float32" else np.float64)
    assert a.nnz == built.oracle.nnz
    assert len(a.segments) == built.segments
    if case.segment_size == "1K":
        assert built.segments >= 4, f"{case.id}: expected many segments, got {built.segments}"
    if case.dense_block and case.kind != "pattern":  # pattern matrices store no dense blocks
        assert any(s.dense for s in a.segments), f"{case.id}: the 64 x 64 block was not stored dense"


@pytest.mark.parametrize("threads", [1, 2])
def test_products_against_scipy(built, threads):
    case = built.case
    o = built.oracle
    m, n = case.shape
    exact = case.kind in EXACT_KINDS
    rng = np.random.default_rng(1000 + threads)
    a = sparsedisk.open(built.path, threads=threads)
    assert a.threads == threads

    x = operand(rng, n, exact)
    y = operand(rng, m, exact)
    assert_product(a @ x, o, x, exact=exact, what="A @ x")
    assert_product(a.dot(x), o, x, exact=exact, what="A.dot(x)")
    assert_product(a.dot(x, threads=threads), o, x, exact=exact, what="A.dot(x, threads)")
    assert_product(a.matvec(x), o, x, exact=exact, what="A.matvec(x)")
    assert_product(a.matvec(x[:, None]), o, x[:, None], exact=exact, what="A.matvec(x as (n, 1))")
    assert_product(a.T @ y, o.T, y, exact=exact, what="A.T @ y")
    assert_product(a.rmatvec(y), o.T, y, exact=exact, what="A.rmatvec(y)")
    assert_product(a.T.matvec(y), o.T, y, exact=exact, what="A.T.matvec(y)")
    assert_product(a.T.rmatvec(x), o, x, exact=exact, what="A.T.rmatvec(x)")
    assert_product(a.T.T @ x, o, x, exact=exact, what="A.T.T @ x")
    # x @ A is (A^T x^T)^T.
    assert_product(y @ a, o.T, y, exact=exact, what="y @ A")

    for k in KS:
        xk = operand(rng, (n, k), exact)
        yk = operand(rng, (m, k), exact)
        assert_product(a.dot(xk), o, xk, exact=exact, what=f"A.dot(X), k={k}")
        assert_product(a @ xk, o, xk, exact=exact, what=f"A @ X, k={k}")
        assert_product(a.matmat(xk), o, xk, exact=exact, what=f"A.matmat(X), k={k}")
        assert_product(a.rmatmat(yk), o.T, yk, exact=exact, what=f"A.rmatmat(Y), k={k}")
        assert_product(a.T @ yk, o.T, yk, exact=exact, what=f"A.T @ Y, k={k}")
        assert_product(a.T.dot(yk, threads=threads), o.T, yk, exact=exact, what=f"A.T.dot(Y), k={k}")
        # (k, m) @ A -> (k, n)
        got = yk.T @ a
        expected_t = o.T.astype(np.float64) @ yk  # (n, k)
        assert got.shape == (k, n), f"Y.T @ A, k={k}: shape {got.shape}"
        assert_product(np.ascontiguousarray(got.T), o.T, yk, exact=exact, what=f"Y.T @ A, k={k}")
        assert expected_t.shape == (n, k)


@pytest.mark.parametrize("kind", KINDS)
def test_threads_do_not_change_exact_results(case_store, kind):
    """On a matrix with many segments, 1 and 2 threads give the same integer products bit for bit
    (exact cases), and agree within rounding otherwise."""
    built = case_store.get(Case((150, 120), kind, "csr", density=0.05, segment_size="1K"))
    rng = np.random.default_rng(5)
    x = operand(rng, 120, True)
    x8 = operand(rng, (120, 8), True)
    a = sparsedisk.open(built.path)
    one, two = a.dot(x, threads=1), a.dot(x, threads=2)
    one8, two8 = a.dot(x8, threads=1), a.dot(x8, threads=2)
    if kind in EXACT_KINDS:
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(one8, two8)
    assert_product(two, built.oracle, x, exact=kind in EXACT_KINDS, what="threads=2")
    assert_product(two8, built.oracle, x8, exact=kind in EXACT_KINDS, what="threads=2, k=8")
    # The threads property applies to later products and to views.
    a.threads = 2
    assert a.T.threads == 2
    y = operand(rng, 150, True)
    assert_product(a.T @ y, built.oracle.T, y, exact=kind in EXACT_KINDS, what="threads property, A.T @ y")
    with pytest.raises(sparsedisk.InvalidInputError):
        a.threads = 0


def test_operand_conversions(case_store):
    """Operands of other types and layouts: int, float32 and bool arrays, Python lists, strided and
    Fortran-ordered views are converted and give the same product as the float64 copy."""
    built = case_store.get(Case((37, 23), "float64", "csr", density=0.2))
    o = built.oracle
    a = sparsedisk.open(built.path)
    rng = np.random.default_rng(7)
    base = rng.standard_normal(46)
    strided = base[::2]
    assert not strided.flags.c_contiguous
    assert_product(a @ strided, o, strided.copy(), exact=False, what="strided x")
    xi = rng.integers(-4, 5, size=23)
    assert_product(a @ xi, o, xi.astype(np.float64), exact=False, what="int64 x")
    xi32 = xi.astype(np.int32)
    assert_product(a @ xi32, o, xi.astype(np.float64), exact=False, what="int32 x")
    x32 = rng.standard_normal(23).astype(np.float32)
    assert_product(a @ x32, o, x32.astype(np.float64), exact=False, what="float32 x")
    xb = rng.random(23) < 0.5
    assert_product(a @ xb, o, xb.astype(np.float64), exact=False, what="bool x")
    assert_product(a @ xi.tolist(), o, xi.astype(np.float64), exact=False, what="list x")
    xf = np.asfortranarray(rng.standard_normal((23, 5)))
    assert_product(a @ xf, o, np.ascontiguousarray(xf), exact=False, what="Fortran-ordered X")
    xs = rng.standard_normal((23, 12))[:, ::3]
    assert_product(a @ xs, o, np.ascontiguousarray(xs), exact=False, what="column-strided X")
    # The operand is not modified.
    before = xs.copy()
    a @ xs
    np.testing.assert_array_equal(xs, before)


def test_zero_columns_operand(case_store):
    built = case_store.get(Case((37, 23), "float64", "csr", density=0.2))
    a = sparsedisk.open(built.path)
    got = a @ np.zeros((23, 0))
    assert got.shape == (37, 0) and got.dtype == np.float64
    assert (a.T @ np.zeros((37, 0))).shape == (23, 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_out_receives_the_product(case_store, layout):
    """``out=``: every product method writes the right result into the given array (whatever it held
    before, NaN included) and returns that very object; the native methods too."""
    built = case_store.get(Case((150, 120), "float64", layout, density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    o = built.oracle.astype(np.float64)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(120), rng.standard_normal(150)
    xk, yk = rng.standard_normal((120, 4)), rng.standard_normal((150, 4))
    calls = [
        (lambda out: a.matvec(x, out=out), (150,), o @ x),
        (lambda out: a.rmatvec(y, out=out), (120,), o.T @ y),
        (lambda out: a.matmat(xk, out=out), (150, 4), o @ xk),
        (lambda out: a.rmatmat(yk, out=out), (120, 4), o.T @ yk),
        (lambda out: a.dot(x, out=out), (150,), o @ x),
        (lambda out: a.dot(xk, out=out, threads=2), (150, 4), o @ xk),
        (lambda out: a.matvec(x[:, None], out=out), (150, 1), o @ x[:, None]),
        (lambda out: a.T.matvec(y, out=out), (120,), o.T @ y),
        (lambda out: a.T.rmatmat(xk, out=out), (150, 4), o @ xk),
        (lambda out: a.matmat(np.zeros((120, 0)), out=out), (150, 0), np.zeros((150, 0))),
        (lambda out: a._native.matvec(x, False, 1, out), (150,), o @ x),
        (lambda out: a._native.matvec(y, True, None, out), (120,), o.T @ y),
        (lambda out: a._native.matmat(xk, False, 2, out), (150, 4), o @ xk),
        (lambda out: a._native.matmat(yk, True, None, out), (120, 4), o.T @ yk),
    ]
    for i, (call, shape, expected) in enumerate(calls):
        out = np.full(shape, np.nan)
        got = call(out)
        assert got is out, f"call {i} returned another object"
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=f"call {i}")
        # Again into the same array: the old result does not leak into the new one.
        assert call(out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=f"call {i}, again")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_new_results_show_no_old_memory(case_store, layout):
    """A product without ``out=`` writes into an uninitialized new array: every element, empty rows
    and columns and the rows between segments included. Memory just freed full of NaN (which numpy's
    allocator hands back for the next array of the same size) must not show through."""
    built = case_store.get(Case((150, 120), "float64", layout, density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    o = built.oracle.astype(np.float64)
    assert (np.diff(o.tocsr().indptr) == 0).any() and (np.diff(o.tocsc().indptr) == 0).any()
    rng = np.random.default_rng(9)
    x, y, xk, yk = (rng.standard_normal(s) for s in ((120,), (150,), (120, 3), (150, 3)))
    for call, shape, expected in (
        (lambda: a @ x, (150,), o @ x),
        (lambda: a.T @ y, (120,), o.T @ y),
        (lambda: a @ xk, (150, 3), o @ xk),
        (lambda: a.T @ yk, (120, 3), o.T @ yk),
    ):
        for _ in range(3):
            junk = np.full(shape, np.nan)
            del junk
            np.testing.assert_allclose(call(), expected, rtol=1e-12, atol=1e-12)


def test_out_of_the_wrong_kind_is_refused(case_store):
    """``out=`` is never converted or reshaped behind the caller's back: a wrong shape, dtype, layout,
    a read-only array, a non-array, or an out that is the operand itself are refused with
    InvalidInputError, by the package and by the native methods, and nothing is written."""
    built = case_store.get(Case((37, 23), "float64", "csr", density=0.2))
    a = sparsedisk.open(built.path)
    x, xk = np.ones(23), np.ones((23, 3))
    readonly = np.zeros(37)
    readonly.flags.writeable = False
    wrong_1d = [
        np.zeros(36),
        np.zeros(38),
        np.zeros((37, 1)),
        np.zeros(37, dtype=np.float32),
        np.zeros(37, dtype=np.int64),
        np.zeros(74)[::2],
        readonly,
        [0.0] * 37,
    ]
    wrong_2d = [
        np.zeros((37, 2)),
        np.zeros((36, 3)),
        np.zeros(111),
        np.zeros((37, 3), dtype=np.float32),
        np.zeros((37, 3), order="F"),
        np.zeros((37, 6))[:, ::2],
    ]
    for out in wrong_1d:
        before = np.array(out, copy=True)
        for call in (lambda: a.matvec(x, out=out), lambda: a.dot(x, out=out)):
            with pytest.raises(sparsedisk.InvalidInputError, match="out"):
                call()
        with pytest.raises(sparsedisk.InvalidInputError, match="out"):
            a._native.matvec(x, False, None, out)
        np.testing.assert_array_equal(np.asarray(out), before)
    for out in wrong_2d:
        for call in (lambda: a.matmat(xk, out=out), lambda: a._native.matmat(xk, False, None, out)):
            with pytest.raises(sparsedisk.InvalidInputError, match="out"):
                call()
    with pytest.raises(sparsedisk.InvalidInputError, match="out"):
        a.matvec(np.ones(23), out=np.zeros((37, 1)))  # (n, 1) only for an (n, 1) operand
    with pytest.raises(sparsedisk.InvalidInputError, match="out"):
        a.matvec(np.ones((23, 1)), out=np.zeros(37))
    # The operand itself (a square matrix: same length) cannot be the output: the kernel would read
    # what it has already overwritten.
    sq = sparsedisk.open(case_store.get(Case((64, 64), "float64", "csr", density=0.2)).path)
    v = np.ones(64)
    with pytest.raises(sparsedisk.InvalidInputError, match="out"):
        sq._native.matvec(v, False, None, v)
    with pytest.raises(sparsedisk.InvalidInputError, match="out"):
        sq.matvec(v, out=v)
    np.testing.assert_array_equal(v, np.ones(64))


def test_concurrent_products_from_python_threads(case_store):
    """Products from several Python threads at once (the GIL is released while Rust computes) give
    the single-threaded results."""
    built = case_store.get(Case((150, 120), "int64", "csc", density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path, threads=1)
    rng = np.random.default_rng(11)
    xs = [operand(rng, (120, 3), True) for _ in range(8)]
    expected = [built.oracle.astype(np.float64) @ x for x in xs]
    results = [None] * len(xs)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = a @ xs[i]
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, exp in zip(results, expected):
        np.testing.assert_array_equal(got, exp)


def test_from_scipy_matrices_multiply_too(tmp_path):
    """Products on matrices written by from_scipy (not the CLI), every value type and layout."""
    rng = np.random.default_rng(3)
    for kind in ("float64", "float32", "int64", "pattern"):
        for layout in ("csr", "csc"):
            m = sp_random(rng, (41, 29), kind)
            a = sparsedisk.from_scipy(m if layout == "csr" else m.tocsc(), tmp_path / f"{kind}-{layout}")
            assert a.format == layout and a.value_type == kind
            exact = kind in EXACT_KINDS
            oracle = m.astype(np.float64)
            x = operand(rng, 29, exact)
            y = operand(rng, (41, 3), exact)
            assert_product(a @ x, oracle, x, exact=exact, what=f"{kind} {layout} A @ x")
            assert_product(a.T @ y, oracle.T, y, exact=exact, what=f"{kind} {layout} A.T @ Y")


def sp_random(rng, shape, kind):
    import scipy.sparse as sp

    m = sp.random_array(shape, density=0.2, format="csr", rng=rng)
    if kind == "pattern":
        return (m != 0).astype(bool)
    if kind == "int64":
        m.data = rng.integers(-9, 10, size=m.nnz).astype(np.float64)
        return m.astype(np.int64)
    if kind == "float32":
        return m.astype(np.float32)
    return m


def _sweep_case(seed: int) -> Case:
    """A random case: shape, density, value type, layout and segment bound drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
    return Case(
        shape,
        KINDS[int(rng.integers(0, 4))],
        LAYOUTS[int(rng.integers(0, 2))],
        density=float(rng.choice([0.01, 0.05, 0.2, 0.6])),
        segment_size=[None, "1K", "3K"][int(rng.integers(0, 3))],
        seed=seed,
    )


SWEEP = [_sweep_case(seed) for seed in range(120)]


@pytest.mark.parametrize("case", SWEEP, ids=[f"seed{c.seed}-{c.id}" for c in SWEEP])
def test_random_sweep(case_store, case):
    """120 random matrices (shapes up to 89 x 89, densities 1% to 60%, every type, layout and
    segmenting): A @ x, A @ X (k = 5), A.T @ y and to_scipy against scipy, on two threads."""
    built = case_store.get(case)
    o = built.oracle
    m, n = case.shape
    exact = case.kind in EXACT_KINDS
    rng = np.random.default_rng(case.seed)
    a = sparsedisk.open(built.path, threads=2)
    x = operand(rng, n, exact)
    xk = operand(rng, (n, 5), exact)
    y = operand(rng, m, exact)
    assert_product(a @ x, o, x, exact=exact, what="A @ x")
    assert_product(a @ xk, o, xk, exact=exact, what="A @ X")
    assert_product(a.T @ y, o.T, y, exact=exact, what="A.T @ y")
    got = a.to_scipy()
    assert got.nnz == o.nnz
    np.testing.assert_array_equal(got.toarray(), o.toarray())
