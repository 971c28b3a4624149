"""``to_scipy`` and ``bands``: the matrix on disk handed to scipy whole or band by band, equal to
the oracle in structure and values, zero-copy where the files hold every entry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedisk
from conftest import Case, assert_same_sparse

KINDS = ("float64", "float32", "int64", "pattern")
CASES = [
    Case(shape, kind, layout, density=0.2)
    for shape in ((0, 5), (5, 0), (1, 1), (37, 23))
    for kind in KINDS
    for layout in ("csr", "csc")
]
CASES += [Case((150, 120), kind, layout, density=0.05, segment_size="1K") for kind in KINDS for layout in ("csr", "csc")]
CASES += [
    Case((200, 170), kind, layout, density=0.02, segment_size="16K", dense_block=True)
    for kind in KINDS
    for layout in ("csr", "csc")
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def built(request, case_store):
    return case_store.get(request.param)


def _stored_dtype(kind):
    return {"float64": np.float64, "float32": np.float32, "int64": np.int64, "pattern": np.float64}[kind]


def test_to_scipy_equals_the_oracle(built):
    case = built.case
    a = sparsedisk.open(built.path)
    m = a.to_scipy()
    assert sp.issparse(m)
    assert m.format == case.layout
    assert m.shape == case.shape
    assert m.dtype == _stored_dtype(case.kind)
    assert m.has_canonical_format or (m.has_sorted_indices and m.nnz == built.oracle.nnz)
    # Structure (explicit zeros included) and values, exactly: the files hold the values as written.
    assert_same_sparse(m, built.oracle, what=f"{case.id} to_scipy")
    dense = a.toarray()
    np.testing.assert_array_equal(dense, built.oracle.toarray())


def test_transposed_view_to_scipy(built):
    case = built.case
    t = sparsedisk.open(built.path).T
    assert t.shape == case.shape[::-1]
    assert t.format == ("csc" if case.layout == "csr" else "csr")
    m = t.to_scipy()
    assert m.shape == case.shape[::-1]
    assert_same_sparse(m, built.oracle.T, what=f"{case.id} A.T.to_scipy")


def test_bands_cover_the_matrix(built):
    """Every band sits at its offset, bands follow the segments in order without overlap, and their
    sum placed at the offsets is the oracle."""
    case = built.case
    a = sparsedisk.open(built.path)
    segments = a.segments
    bands = list(a.bands())
    assert len(bands) == len(segments)
    m, n = case.shape
    csr = case.layout == "csr"
    acc = np.zeros((m, n), dtype=np.float64)
    previous_end = 0
    total = 0
    for (offset, block), seg in zip(bands, segments):
        assert offset == seg.start
        assert offset >= previous_end, "bands overlap or are out of order"
        width = seg.end - seg.start
        assert sp.issparse(block)
        if csr:
            assert block.format == "csr" and block.shape == (width, n)
            acc[offset : offset + width, :] += block.toarray()
        else:
            assert block.format == "csc" and block.shape == (m, width)
            acc[:, offset : offset + width] += block.toarray()
        assert block.nnz == seg.nnz
        total += block.nnz
        previous_end = seg.end
    assert total == built.oracle.nnz == a.nnz
    np.testing.assert_array_equal(acc, built.oracle.toarray())


def test_bands_of_a_transposed_view(built):
    case = built.case
    t = sparsedisk.open(built.path).T
    m, n = case.shape
    acc = np.zeros((n, m))
    for offset, block in t.bands():
        if case.layout == "csr":  # the view is CSC: column bands of A^T
            assert block.shape[0] == n
            acc[:, offset : offset + block.shape[1]] += block.toarray()
        else:
            assert block.shape[1] == m
            acc[offset : offset + block.shape[0], :] += block.toarray()
    np.testing.assert_array_equal(acc, built.oracle.T.toarray())


def _memory_mapped(array) -> bool:
    """Whether ``array`` is a view of a ``numpy.memmap`` or an ``mmap`` somewhere down its base chain
    (through the memoryview ``numpy.frombuffer`` keeps)."""
    import mmap

    a = array
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = a.obj if isinstance(a, memoryview) else getattr(a, "base", None)
    return False


@pytest.mark.parametrize("kind", ["float64", "float32", "int64"])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_bands_are_memory_mapped(case_store, kind, layout):
    """Segments without dense blocks: the band's values are the mapped file, not a copy."""
    built = case_store.get(Case((150, 120), kind, layout, density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    count = 0
    for (_, block), seg in zip(a.bands(), a.segments):
        assert not seg.dense
        if seg.nnz == 0:
            continue
        assert not block.data.flags.owndata, f"segment {seg.start}..{seg.end}: the values were copied"
        assert _memory_mapped(block.data), f"segment {seg.start}..{seg.end}: values are not a memory map"
        assert not block.data.flags.writeable, "a band over a published segment must be read-only"
        count += 1
    assert count >= 4


def test_band_index_arrays_are_memory_mapped(case_store):
    """The docstring promises zero-copy views of the files for the whole band. scipy accepts only
    int32/int64 index arrays, so uint64 pointers and uint32 indices cannot be passed through without
    a conversion; this test records whether the index arrays are copies."""
    built = case_store.get(Case((150, 120), "float64", "csr", density=0.05, segment_size="1K"))
    a = sparsedisk.open(built.path)
    offset, block = next(iter(a.bands()))
    assert _memory_mapped(block.indices), (
        "block.indices is a copy (uint32 file -> int32 array): bands() is zero-copy only for the values"
    )


def test_to_scipy_size_limit(case_store):
    built = case_store.get(Case((37, 23), "float64", "csr", density=0.2))
    a = sparsedisk.open(built.path)
    nnz = a.nnz
    need = (37 + 1) * 4 + nnz * (4 + 8)  # int32 pointers and indices, float64 values
    assert 1024 < need < 10 * 1024
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        a.to_scipy(max_bytes=10)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert f"{need / 1024:.2f} KiB" in message, message  # the size it would take
    assert "10 bytes" in message, message  # and the limit
    # At the exact size it is allowed; None lifts the limit.
    assert a.to_scipy(max_bytes=need).nnz == nnz
    assert a.to_scipy(max_bytes=None).nnz == nnz
    with pytest.raises(sparsedisk.InvalidInputError):
        a.to_scipy(max_bytes=need - 1)


def test_blockdiag_dense_blocks_to_scipy(tmp_path, cli):
    """A generated block-diagonal matrix stored in dense blocks reads back equal to the same matrix
    written as plain CSR (dense blocks off), and its bands are the blocks."""
    cli("generate", "blockdiag", "--n", 256, "--block", 64, "-o", tmp_path / "bd")
    cli("generate", "blockdiag", "--n", 256, "--block", 64, "-o", tmp_path / "plain", "--dense-threshold", "off")
    bd = sparsedisk.open(tmp_path / "bd")
    plain = sparsedisk.open(tmp_path / "plain")
    assert any(s.dense for s in bd.segments)
    assert not any(s.dense for s in plain.segments)
    m = plain.to_scipy()
    assert m.nnz == 4 * 64 * 64
    # Block diagonal: nothing outside the 64 x 64 diagonal blocks.
    r, c = m.nonzero()
    assert np.all(r // 64 == c // 64)
    assert_same_sparse(bd.to_scipy(), m, what="dense blocks vs plain")
    x = np.random.default_rng(0).standard_normal(256)
    np.testing.assert_allclose(bd @ x, m @ x, rtol=1e-12, atol=1e-12)
