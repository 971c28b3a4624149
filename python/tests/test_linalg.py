"""scipy's iterative solvers and eigensolvers on matrices opened from disk, through
``scipy.sparse.linalg.aslinearoperator``: cg, gmres, eigsh and svds, against direct solutions and
dense decompositions of the same matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import sparsedisk
from conftest import assert_same_sparse


def test_generated_laplacian_is_the_laplacian(laplacian):
    path, oracle = laplacian
    a = sparsedisk.open(path)
    assert a.shape == (576, 576)
    assert len(a.segments) > 3
    assert_same_sparse(a.to_scipy(), oracle, what="laplace2d --n 24")


def test_aslinearoperator_has_the_matrix_facts(laplacian):
    path, _ = laplacian
    op = spla.aslinearoperator(sparsedisk.open(path))
    assert op.shape == (576, 576)
    assert op.dtype == np.float64
    x = np.arange(576.0)
    np.testing.assert_array_equal(op.matvec(x), sparsedisk.open(path) @ x)


@pytest.mark.parametrize("view", ["stored", "transposed"])
def test_scipy_cg_on_disk(laplacian, view):
    path, oracle = laplacian
    a = sparsedisk.open(path, threads=2)
    op = spla.aslinearoperator(a if view == "stored" else a.T)  # symmetric: A.T is A
    b = np.random.default_rng(0).standard_normal(576)
    x, info = spla.cg(op, b, rtol=1e-12, maxiter=2000)
    assert info == 0
    direct = spla.spsolve(oracle.tocsc(), b)
    # Relative residual 1e-12 and cond(A) ~ 4 (n+1)^2 / pi^2 ~ 250 bound the relative error by ~3e-10.
    np.testing.assert_allclose(x, direct, rtol=0, atol=1e-8 * np.abs(direct).max())
    assert np.linalg.norm(oracle @ x - b) <= 1e-10 * np.linalg.norm(b)


def test_scipy_gmres_on_a_nonsymmetric_matrix(tmp_path):
    """Convection-diffusion (Laplacian plus an upwind first derivative): nonsymmetric, written by
    from_scipy with CSC layout so that A x is the column-wise (scatter) product."""
    n = 16
    lap = sp.csr_array(_lap(n))
    d = sp.diags_array([-np.ones(n * n - 1), np.ones(n * n)], offsets=[-1, 0])
    m = (lap + 3.0 * d).tocsc()
    a = sparsedisk.from_scipy(m, tmp_path / "cd")
    assert a.format == "csc"
    b = np.random.default_rng(1).standard_normal(n * n)
    x, info = spla.gmres(spla.aslinearoperator(a), b, rtol=1e-12, restart=60, maxiter=200)
    assert info == 0
    direct = spla.spsolve(m, b)
    np.testing.assert_allclose(x, direct, rtol=0, atol=1e-8 * np.abs(direct).max())


def test_scipy_eigsh_on_the_generated_laplacian(laplacian):
    """The square-grid Laplacian has double eigenvalues (lambda_i + lambda_j = lambda_j + lambda_i),
    which a Krylov method may return once or twice: check that what eigsh returns are eigenpairs of
    the oracle, not which copies it found."""
    path, oracle = laplacian
    op = spla.aslinearoperator(sparsedisk.open(path))
    vals, vecs = spla.eigsh(op, k=3, which="LA", tol=1e-12)
    dense = np.linalg.eigvalsh(oracle.toarray())
    for i in range(3):
        assert np.min(np.abs(dense - vals[i])) < 1e-9 * dense[-1]
        assert vals[i] >= dense[-8] - 1e-9  # among the largest
        r = oracle @ vecs[:, i] - vals[i] * vecs[:, i]
        assert np.linalg.norm(r) < 1e-7
    assert np.isclose(vals.max(), dense[-1], rtol=1e-10)


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_scipy_eigsh_on_disk(laplacian, tmp_path, layout):
    """k=3 largest of a symmetric matrix with distinct eigenvalues (the Laplacian plus a graded
    diagonal), against numpy's eigvalsh and scipy's eigsh on the scipy matrix."""
    _, lap = laplacian
    m = (lap + sp.diags_array(np.linspace(0.0, 0.5, 576))).asformat(layout)
    a = sparsedisk.from_scipy(m, tmp_path / "sym")
    vals, vecs = spla.eigsh(spla.aslinearoperator(a), k=3, which="LA", tol=1e-12)
    dense = np.linalg.eigvalsh(m.toarray())
    assert np.min(np.diff(dense[-4:])) > 1e-4  # distinct: the comparison is well posed
    # ARPACK at tol 1e-12 on eigenvalues of size ~8 and gaps > 1e-4: agreement to ~1e-9 relative.
    np.testing.assert_allclose(np.sort(vals), dense[-3:], rtol=1e-9)
    theirs = spla.eigsh(m, k=3, which="LA", tol=1e-12, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(vals), np.sort(theirs), rtol=1e-9)
    for i in range(3):
        assert np.linalg.norm(m @ vecs[:, i] - vals[i] * vecs[:, i]) < 1e-7


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_scipy_svds_on_disk(tmp_path, layout):
    """svds(k=2) of a rectangular matrix uses matvec and rmatvec (A and A^T products)."""
    rng = np.random.default_rng(2)
    m = sp.random_array((70, 45), density=0.15, rng=rng, format=layout)
    a = sparsedisk.from_scipy(m, tmp_path / "rect")
    u, s, vt = spla.svds(spla.aslinearoperator(a), k=2, tol=1e-12, rng=np.random.default_rng(0))
    dense = np.linalg.svd(m.toarray(), compute_uv=False)
    np.testing.assert_allclose(np.sort(s)[::-1], dense[:2], rtol=1e-9)
    # Singular triplets of the oracle: A v = s u.
    for i in range(2):
        np.testing.assert_allclose(m @ vt[i], s[i] * u[:, i], atol=1e-8)


def test_sparsedisk_cg_against_spsolve(laplacian):
    path, oracle = laplacian
    a = sparsedisk.open(path)
    b = np.random.default_rng(4).standard_normal(576)
    x, facts = sparsedisk.cg(a, b, tol=1e-12, threads=2)
    assert facts["converged"] is True
    assert facts["iterations"] > 0
    assert facts["residual"] <= 1e-12 * 10
    direct = spla.spsolve(oracle.tocsc(), b)
    np.testing.assert_allclose(x, direct, rtol=0, atol=1e-8 * np.abs(direct).max())
    # Starting at the solution converges at once; a Jacobi preconditioner reaches it too.
    x2, facts2 = sparsedisk.cg(a, b, tol=1e-10, x0=direct)
    assert facts2["iterations"] <= 1
    x3, facts3 = sparsedisk.cg(a, b, tol=1e-12, preconditioner="jacobi")
    assert facts3["converged"]
    np.testing.assert_allclose(x3, direct, rtol=0, atol=1e-8 * np.abs(direct).max())
    # max_iter stops it early: the binding raises (documented in _native.cg), naming the residual.
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        sparsedisk.cg(a, b, tol=1e-14, max_iter=3)
    assert "3 iterations" in str(info.value) and "residual" in str(info.value)


def _lap(n):
    t = sp.diags_array([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(n)
    return sp.kron(eye, t) + sp.kron(t, eye)


@pytest.mark.parametrize("value_type", ["i64", "f32"])
def test_scipy_cg_on_integer_and_float32_laplacians(tmp_path, cli, value_type):
    """A LinearOperator over an int64 or float32 matrix: the products are float64 whatever the
    stored type, so CG converges to the float64 solution."""
    cli("generate", "laplace2d", "--n", 12, "-o", tmp_path / "lap", "--value-type", value_type,
        "--segment-size", "1K")
    a = sparsedisk.open(tmp_path / "lap")
    assert a.dtype == (np.int64 if value_type == "i64" else np.float32)
    oracle = _lap(12).tocsc()
    b = np.random.default_rng(5).standard_normal(144)
    x, info = spla.cg(spla.aslinearoperator(a), b, rtol=1e-12, maxiter=1000)
    assert info == 0
    direct = spla.spsolve(oracle, b)
    np.testing.assert_allclose(x, direct, rtol=0, atol=1e-8 * np.abs(direct).max())
