"""Whole-matrix operations and graph algorithms against scipy and numpy oracles: spgemm, transpose,
convert, add, pagerank, bfs, components; verify and info."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

import sparsedisk
from conftest import Case, assert_same_sparse


def _matrix(rng, shape, density, kind):
    """A random scipy CSR matrix of ``kind`` with empty rows and columns and a few explicit zeros."""
    m = sp.random_array(shape, density=density, format="csr", rng=rng)
    if m.shape[0] > 3:
        m = sp.csr_array(sp.diags_array((rng.random(shape[0]) > 0.2).astype(float)) @ m)  # empty rows
        m.eliminate_zeros()
    if kind == "int64":
        m.data = rng.integers(-4, 5, size=m.nnz).astype(np.float64)  # zeros among them: explicit
        return m.astype(np.int64)
    if kind == "pattern":
        m.data[:] = 1.0
        return m.astype(bool)
    m.data[rng.random(m.nnz) < 0.05] = 0.0
    return m.astype(np.float32) if kind == "float32" else m


def _structure(m) -> sp.csr_array:
    """The stored structure of ``m`` as a float64 0/1 matrix (explicit zeros count as entries)."""
    s = sp.csr_array(m, copy=True).astype(np.float64)
    s.sum_duplicates()
    s.data[:] = 1.0
    return s


# -- spgemm ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float64", "int64", "pattern", "float32"])
@pytest.mark.parametrize("layouts", [("csr", "csr"), ("csc", "csc"), ("csr", "csc")])
def test_spgemm_against_scipy(tmp_path, kind, layouts):
    rng = np.random.default_rng(21)
    am = _matrix(rng, (40, 30), 0.1, kind)
    bm = _matrix(rng, (30, 25), 0.12, kind)
    a = sparsedisk.from_scipy(am.asformat(layouts[0]), tmp_path / "a")
    b = sparsedisk.from_scipy(bm.asformat(layouts[1]), tmp_path / "b")
    c = sparsedisk.spgemm(a, b, tmp_path / "c", threads=2)
    assert c.shape == (40, 25)
    assert c.format == layouts[0]  # A's layout
    got = c.to_scipy()
    # Structure: every (i, j) with a k where A[i, k] and B[k, j] are stored, computed zeros included
    # (scipy's own product drops computed zeros, so compare with the product of the structures).
    structure = _structure(_structure(am) @ _structure(bm))  # sorted, entries 1
    g = sp.csr_array(got)
    assert g.nnz == structure.nnz, f"{g.nnz} stored entries, the structural product has {structure.nnz}"
    np.testing.assert_array_equal(g.indptr, structure.indptr)
    np.testing.assert_array_equal(g.indices, structure.indices)
    # Values: scipy's product, on dense (zeros dropped by scipy are zeros here).
    expected = (am.astype(np.float64) @ bm.astype(np.float64)).toarray()
    if kind in ("int64", "pattern"):
        np.testing.assert_array_equal(got.toarray(), expected)
    else:
        # Sums of at most 30 products: the two orders agree to ~30 ulp of the sum of magnitudes;
        # float32 inputs are exact in float64 and the result type (float32 or float64) bounds it.
        tol = 1e-6 if kind == "float32" else 1e-12
        mag = (abs(am.astype(np.float64)) @ abs(bm.astype(np.float64))).toarray()
        assert np.all(np.abs(got.toarray() - expected) <= tol * mag + 1e-300)
    c.verify()


@pytest.mark.parametrize("kind", ["float64", "int64", "pattern", "float32"])
@pytest.mark.parametrize("layouts", [("csr", "csr"), ("csc", "csc"), ("csr", "csc")])
@pytest.mark.parametrize("semiring", ["plus-times", "pattern"])
def test_spgemm_in_memory_is_the_written_product(tmp_path, kind, layouts, semiring):
    """Without a path the product comes back as a scipy array in A's layout: entry for entry the
    product written to disk (structural zeros included), with int32 indices, against scipy's
    product for the values."""
    rng = np.random.default_rng(23)
    am = _matrix(rng, (45, 33), 0.1, kind)
    bm = _matrix(rng, (33, 28), 0.12, kind)
    a = sparsedisk.from_scipy(am.asformat(layouts[0]), tmp_path / "a")
    b = sparsedisk.from_scipy(bm.asformat(layouts[1]), tmp_path / "b")
    mem = sparsedisk.spgemm(a, b, threads=2, semiring=semiring)
    disk = sparsedisk.spgemm(a, b, tmp_path / "c", semiring=semiring).to_scipy()
    assert isinstance(mem, sp.csr_array if layouts[0] == "csr" else sp.csc_array)
    assert mem.shape == (45, 28)
    assert mem.indices.dtype == np.int32 and mem.indptr.dtype == np.int32
    assert mem.has_sorted_indices
    expected_dtype = np.int64 if kind in ("int64", "pattern") and semiring == "plus-times" else np.float64
    assert mem.dtype == expected_dtype
    assert_same_sparse(mem, disk, what="in memory against written", exact=True)
    assert mem.nnz == disk.nnz
    structure = _structure(_structure(am) @ _structure(bm))
    assert_same_sparse(_structure(mem), structure, what="structure", exact=True)
    if semiring == "plus-times":
        expected = (am.astype(np.float64) @ bm.astype(np.float64)).toarray()
        np.testing.assert_allclose(mem.toarray(), expected, rtol=1e-6 if kind == "float32" else 1e-12, atol=1e-12)
    # drop_zeros: what scipy's A @ B stores.
    dropped = sparsedisk.spgemm(a, b, drop_zeros=True)
    assert not np.any(dropped.data == 0)


def test_spgemm_in_memory_errors(tmp_path):
    rng = np.random.default_rng(24)
    a = sparsedisk.from_scipy(_matrix(rng, (30, 20), 0.2, "float64"), tmp_path / "a")
    with pytest.raises(sparsedisk.InvalidInputError, match="A has 20 columns but B has 30 rows"):
        sparsedisk.spgemm(a, a)
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.spgemm(a.T, a)  # views are refused, as for the written product
    b = sparsedisk.from_scipy(sp.csr_array(np.ones((20, 5))), tmp_path / "b")
    with pytest.raises(sparsedisk.InvalidInputError, match="overwrite"):
        sparsedisk.spgemm(a, b, overwrite=True)
    # A column of ones times a row of ones: 9 M entries (108 MB) from 6,000, beyond what a budget at
    # the minimum (64 MiB) leaves for the product.
    n = 3000
    col = sparsedisk.from_scipy(sp.csr_array(np.ones((n, 1))), tmp_path / "col")
    row = sparsedisk.from_scipy(sp.csr_array(np.ones((1, n))), tmp_path / "row")
    with pytest.raises(sparsedisk.InvalidInputError, match="memory budget"):
        sparsedisk.spgemm(col, row, memory="64M")
    full = sparsedisk.spgemm(col, row)
    assert full.nnz == n * n and float(full.sum()) == n * n


def test_spgemm_semirings(tmp_path):
    rng = np.random.default_rng(22)
    am = _matrix(rng, (20, 15), 0.2, "float64")
    bm = _matrix(rng, (15, 18), 0.2, "float64")
    am.data = np.abs(am.data) + 0.25
    bm.data = np.abs(bm.data) + 0.25
    a = sparsedisk.from_scipy(am, tmp_path / "a")
    b = sparsedisk.from_scipy(bm, tmp_path / "b")
    # min-plus: C[i, j] = min over stored k of A[i, k] + B[k, j].
    c = sparsedisk.spgemm(a, b, tmp_path / "mp", semiring="min-plus")
    ad = np.full(am.shape, np.inf)
    bd = np.full(bm.shape, np.inf)
    r, k = am.nonzero()
    ad[r, k] = am.toarray()[r, k]
    k2, j = bm.nonzero()
    bd[k2, j] = bm.toarray()[k2, j]
    expected = (ad[:, :, None] + bd[None, :, :]).min(axis=1)
    got = c.to_scipy()
    structure = _structure(_structure(am) @ _structure(bm))
    assert got.nnz == structure.nnz
    rr, cc = structure.nonzero()
    np.testing.assert_array_equal(got.toarray()[rr, cc], expected[rr, cc])
    # pattern: the structure only.
    p = sparsedisk.spgemm(a, b, tmp_path / "pat", semiring="pattern")
    assert p.value_type == "pattern"
    assert_same_sparse(p.to_scipy(), structure, what="pattern semiring")


def test_spgemm_on_generated_laplacian(laplacian, tmp_path):
    """A A on the CLI's many-segment Laplacian against scipy, with scipy's zeros eliminated on both."""
    path, oracle = laplacian
    a = sparsedisk.open(path)
    c = sparsedisk.spgemm(a, a, tmp_path / "a2", memory=128 << 20)
    got = c.to_scipy().tocsr()
    got.eliminate_zeros()
    expected = (oracle @ oracle).tocsr()
    expected.eliminate_zeros()
    assert_same_sparse(got, expected, what="A A", exact=True)  # small integers: exact


def test_spgemm_shape_mismatch(tmp_path):
    a = sparsedisk.from_scipy(sp.csr_array(np.ones((3, 4))), tmp_path / "a")
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        sparsedisk.spgemm(a, a, tmp_path / "c")
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "c" / "manifest.json").exists()
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.spgemm(a.T, a, tmp_path / "c2")  # a view is refused with advice
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.spgemm(a, a, tmp_path / "c3", semiring="max-times")


# -- transpose, convert, add ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float64", "float32", "int64", "pattern"])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_transpose_and_convert(case_store, tmp_path, kind, layout):
    built = case_store.get(Case((150, 120), kind, layout, density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    other = "csc" if layout == "csr" else "csr"
    t = sparsedisk.transpose(a, tmp_path / "t", memory=128 << 20)
    assert t.format == layout and t.shape == (120, 150) and t.value_type == kind
    assert_same_sparse(t.to_scipy(), built.oracle.T, what="transpose, same layout")
    t2 = sparsedisk.transpose(a, tmp_path / "t2", layout=other)
    assert t2.format == other
    assert_same_sparse(t2.to_scipy(), built.oracle.T, what="transpose, other layout")
    c = sparsedisk.convert(a, tmp_path / "c", other)
    assert c.format == other and c.shape == a.shape and c.value_type == kind
    assert_same_sparse(c.to_scipy(), built.oracle, what="convert")
    back = sparsedisk.convert(c, tmp_path / "back", layout)
    assert_same_sparse(back.to_scipy(), built.oracle, what="convert back")
    for m in (t, t2, c, back):
        m.verify()


def _union_oracle(am, bm, alpha, beta):
    """alpha A + beta B on the union of the structures, explicit zeros kept (scipy's + drops them)."""
    a = sp.coo_array(am.astype(np.float64))
    b = sp.coo_array(bm.astype(np.float64))
    data = np.concatenate([alpha * a.data, beta * b.data])
    out = sp.coo_array((data, (np.concatenate([a.row, b.row]), np.concatenate([a.col, b.col]))), shape=am.shape)
    out = out.tocsr()
    out.sum_duplicates()
    return out


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (2.0, -0.5), (0.0, 3.0)])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_add_against_scipy(tmp_path, alpha, beta, layout):
    rng = np.random.default_rng(31)
    am = _matrix(rng, (50, 40), 0.1, "float64")
    bm = _matrix(rng, (50, 40), 0.1, "float64")
    a = sparsedisk.from_scipy(am.asformat(layout), tmp_path / "a")
    b = sparsedisk.from_scipy(bm.asformat(layout), tmp_path / "b")
    c = sparsedisk.add(a, b, tmp_path / "c", alpha=alpha, beta=beta)
    assert c.format == layout and c.shape == (50, 40)
    # One multiply and one add per entry: within 2 ulp (a fused multiply-add rounds once less).
    assert_same_sparse(c.to_scipy(), _union_oracle(am, bm, alpha, beta), what="add", exact=False)
    np.testing.assert_allclose(c.toarray(), alpha * am.toarray() + beta * bm.toarray(), rtol=1e-15, atol=1e-300)


def test_add_types_and_layouts(tmp_path):
    rng = np.random.default_rng(32)
    ai = _matrix(rng, (20, 20), 0.2, "int64")
    bi = _matrix(rng, (20, 20), 0.2, "int64")
    a = sparsedisk.from_scipy(ai, tmp_path / "a")
    b = sparsedisk.from_scipy(bi, tmp_path / "b")
    c = sparsedisk.add(a, b, tmp_path / "c", alpha=2, beta=-3)
    assert c.value_type == "int64", "integers with integer coefficients stay integers"
    np.testing.assert_array_equal(c.toarray(), 2 * ai.toarray() - 3 * bi.toarray())
    h = sparsedisk.add(a, b, tmp_path / "h", alpha=0.5)
    assert h.value_type == "float64"
    np.testing.assert_array_equal(h.toarray(), 0.5 * ai.toarray() + bi.toarray())
    # Mixed layouts (B converted) and mixed types (float32 + float64 -> float64).
    f = _matrix(rng, (20, 20), 0.2, "float32")
    fm = sparsedisk.from_scipy(f.tocsc(), tmp_path / "f")
    m = sparsedisk.add(a, fm, tmp_path / "m")
    assert m.format == "csr" and m.value_type == "float64"
    np.testing.assert_array_equal(m.toarray(), ai.toarray() + f.toarray().astype(np.float64))
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.add(a, sparsedisk.from_scipy(sp.csr_array((20, 21)), tmp_path / "w"), tmp_path / "bad")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.add(a, b, tmp_path / "nan", alpha=float("nan"))


# -- graph algorithms -----------------------------------------------------------------------------


def _graph(rng, n, density, *, weighted=True):
    """A directed graph with dangling vertices (rows without edges), self-loops and isolated vertices."""
    g = sp.random_array((n, n), density=density, format="csr", rng=rng)
    keep = (rng.random(n) > 0.15).astype(float)
    g = sp.csr_array(sp.diags_array(keep) @ g)
    g.eliminate_zeros()
    g = (g + sp.diags_array((rng.random(n) < 0.1).astype(float) * 0.5)).tocsr()
    g.eliminate_zeros()
    if not weighted:
        g.data[:] = 1.0
    return g


def _pagerank_oracle(g, damping, tol=1e-15, max_iter=10_000):
    """Power iteration as documented (NetworkX's definition): rows normalised by their weight,
    dangling vertices spread uniformly, uniform teleport; in numpy on a dense matrix."""
    a = g.toarray()
    n = a.shape[0]
    out = a.sum(axis=1)
    dangling = out == 0
    p = np.divide(a, out[:, None], out=np.zeros_like(a), where=~dangling[:, None])
    r = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        nxt = damping * (p.T @ r + r[dangling].sum() / n) + (1 - damping) / n
        if np.abs(nxt - r).sum() < tol:
            return nxt
        r = nxt
    return r


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("weighted", [True, False])
def test_pagerank_against_power_iteration(tmp_path, layout, weighted):
    rng = np.random.default_rng(41)
    g = _graph(rng, 120, 0.04, weighted=weighted)
    src = g.asformat(layout) if weighted else (g != 0).asformat(layout)
    a = sparsedisk.from_scipy(src, tmp_path / "g")
    assert a.value_type == ("float64" if weighted else "pattern")
    for damping in (0.85, 0.5):
        ranks = sparsedisk.pagerank(a, damping=damping, tol=1e-13, max_iter=1000, threads=2)
        assert ranks.shape == (120,) and ranks.dtype == np.float64
        assert abs(ranks.sum() - 1) < 1e-12
        # Both stop at an L1 change below 1e-13; the contraction factor (damping) bounds the distance
        # to the fixed point by 1e-13 / (1 - damping).
        np.testing.assert_allclose(ranks, _pagerank_oracle(g, damping), rtol=0, atol=1e-11)


def _levels_oracle(g, source):
    dist = csgraph.shortest_path(_structure(g), method="D", directed=True, unweighted=True, indices=source)
    return np.where(np.isinf(dist), -1, dist).astype(np.int64)


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("threads", [1, 2])
def test_bfs_against_csgraph(tmp_path, layout, threads):
    rng = np.random.default_rng(51)
    g = _graph(rng, 300, 0.006)
    a = sparsedisk.from_scipy(g.asformat(layout), tmp_path / "g")
    for source in (0, 7, 299, int(np.argmax(np.diff(g.indptr) == 0))):
        levels = sparsedisk.bfs(a, source, threads=threads)
        assert levels.dtype == np.int64 and levels.shape == (300,)
        np.testing.assert_array_equal(levels, _levels_oracle(g, source), err_msg=f"source {source}")
        # The order csgraph visits is consistent with the levels.
        order = csgraph.breadth_first_order(_structure(g), source, directed=True, return_predecessors=False)
        assert set(order.tolist()) == set(np.flatnonzero(levels >= 0).tolist())
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.bfs(a, 300)


def test_bfs_and_components_on_the_laplacian(laplacian):
    path, oracle = laplacian
    a = sparsedisk.open(path)
    levels = sparsedisk.bfs(a, 0)
    # Grid distance from a corner: i + j.
    i, j = np.divmod(np.arange(576), 24)
    np.testing.assert_array_equal(levels, i + j)
    labels = sparsedisk.components(a)
    assert np.all(labels == 0)


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_components_against_csgraph(tmp_path, layout):
    rng = np.random.default_rng(61)
    g = _graph(rng, 400, 0.003)
    a = sparsedisk.from_scipy(g.asformat(layout), tmp_path / "g")
    labels = sparsedisk.components(a, threads=2)
    assert labels.shape == (400,)
    count, theirs = csgraph.connected_components(_structure(g), directed=True, connection="weak")
    ours = np.asarray(labels).astype(np.int64)
    assert len(np.unique(ours)) == count
    # The same partition: a bijection between the two labelings.
    pairs = set(zip(ours.tolist(), theirs.tolist()))
    assert len(pairs) == count
    # Each label is the smallest vertex of its component (documented).
    for lab in np.unique(ours):
        members = np.flatnonzero(ours == lab)
        assert lab == members.min()


def test_algorithms_refuse_non_square(tmp_path):
    a = sparsedisk.from_scipy(sp.random_array((10, 12), density=0.3, format="csr", rng=0), tmp_path / "r")
    for call in (lambda: sparsedisk.pagerank(a), lambda: sparsedisk.bfs(a, 0), lambda: sparsedisk.components(a),
                 lambda: sparsedisk.cg(a, np.ones(10))):
        with pytest.raises(sparsedisk.InvalidInputError):
            call()
    sq = sparsedisk.from_scipy(sp.csr_array(np.eye(4)), tmp_path / "sq")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.pagerank(sq, damping=1.5)
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.cg(sq, np.ones(5))
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.cg(sq, np.ones(4), preconditioner="ilu")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.pagerank(sq.T)  # a view: refused with advice


# -- verify and info ------------------------------------------------------------------------------


def test_verify_and_info_report_the_facts(case_store):
    built = case_store.get(Case((150, 120), "float32", "csc", density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    report = a.verify()
    assert report["nnz"] == built.oracle.nnz
    assert report["segments"] == built.segments
    assert report["files"] >= 3 * built.segments
    assert report["bytes"] > 0
    assert sparsedisk.verify(built.path) == report
    info = sparsedisk.info(built.path)
    assert info == a.info()
    assert (info["rows"], info["cols"]) == (150, 120)
    assert info["nnz"] == built.oracle.nnz
    assert info["layout"] == "csc"
    assert info["value_type"] == "float32"
    assert info["index_type"] in ("uint32", "uint64") and info["index_type"] == a.index_type
    assert info["segments"] == built.segments == len(a.segments)
    assert info["bytes_on_disk"] >= info["payload_bytes"] > 0
    assert info["dense_blocks"] == 0
    assert a.nbytes == info["payload_bytes"] or a.nbytes > 0
    # Segments tile the columns in order.
    segs = a.segments
    assert segs[0].start == 0 and segs[-1].end <= 120
    assert all(s.end == t.start for s, t in zip(segs, segs[1:]))
    assert sum(s.nnz for s in segs) == a.nnz
    assert "150 x 120" in repr(a) and "CSC" in repr(a)


def test_pagerank_defaults_converge_on_a_slowly_mixing_graph(tmp_path):
    """A star (hub -> leaves, leaves -> hub) is periodic: the power iteration's error shrinks only
    by the damping factor per step, so tol=1e-10 needs ~150 iterations at damping 0.85. With its
    defaults, sparsedisk.pagerank must either converge or say it did not; returning an unconverged
    vector silently is a wrong answer."""
    k = 50
    rows = np.r_[np.zeros(k - 1, int), np.arange(1, k)]
    cols = np.r_[np.arange(1, k), np.zeros(k - 1, int)]
    g = sp.csr_array((np.ones(2 * (k - 1)), (rows, cols)), shape=(k, k))
    a = sparsedisk.from_scipy(g, tmp_path / "star")
    oracle = _pagerank_oracle(g, 0.85)
    try:
        ranks = sparsedisk.pagerank(a)
    except sparsedisk.Error as e:  # refusing to return an unconverged result is acceptable
        assert "converge" in str(e)
        return
    # Converged to tol=1e-10 (L1 change) means within ~1e-10 / (1 - 0.85) of the fixed point.
    assert np.abs(ranks - oracle).sum() < 1e-9, (
        f"L1 distance {np.abs(ranks - oracle).sum():.2e} from the fixed point: stopped before converging"
    )
    # full_output says whether it converged, and a small max_iter is reported, not hidden.
    ranks, stats = sparsedisk.pagerank(a, full_output=True)
    assert stats["converged"] is True and stats["delta"] < 1e-10 and stats["iterations"] > 100
    _, short = sparsedisk.pagerank(a, max_iter=5, full_output=True)
    assert short["converged"] is False and short["iterations"] == 5
