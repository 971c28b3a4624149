"""Real matrices from ``$SPARSEDISK_REAL_DATASETS`` (the project's ``../shared/datasets/real``, with
its CATALOG.tsv): imported with ``import_file`` and compared with scipy's reading of the same file.

Skipped with a reason when the variable is unset; failed instead when SPARSEDISK_REQUIRE_DATASETS=1."""

from __future__ import annotations

import csv
import os
import pathlib

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import sparsedisk
from conftest import assert_product, assert_same_sparse

#: A handful of small Matrix Market files (< 2 MB) of every field and symmetry the importer reads:
#: real general and symmetric, integer general and symmetric, pattern general and symmetric, a
#: skew-symmetric one, a rectangular one and an array (dense) one.
NAMES = [
    "debian_r-cran-matrix/pores_1.mtx",
    "debian_r-cran-matrix/jgl009.mtx",
    "cugraph/datasets/karate.mtx",
    "derived/pypi_pyamg/airfoil.mtx",
    "ginkgo/matrices/test/1138_bus.mtx",
    "ginkgo/examples/simple-solver/data/A.mtx",
    "networkit/input/Ragusa16.mtx",
    "lagraph/data/west0067.mtx",
    "lagraph/data/lp_afiro.mtx",
    "lagraph/data/zenios.mtx",
    "derived/networkit/4elt.mtx",
    "suitesparse/Mongoose/Matrix/GD97_b.mtx",
    "fast_matrix_market/tests/matrices/symmetry/coordinate_skew_symmetric_row.mtx",
    "fast_matrix_market/tests/matrices/2col_array.mtx",
]

MAX_BYTES = 2_000_000


def _root() -> pathlib.Path:
    root = os.environ.get("SPARSEDISK_REAL_DATASETS")
    if not root:
        message = "SPARSEDISK_REAL_DATASETS is not set (point it at ../shared/datasets/real)"
        if os.environ.get("SPARSEDISK_REQUIRE_DATASETS") == "1":
            pytest.fail(message + " and SPARSEDISK_REQUIRE_DATASETS=1 requires the real matrices")
        pytest.skip(message)
    path = pathlib.Path(root)
    if not (path / "CATALOG.tsv").is_file():
        pytest.fail(f"SPARSEDISK_REAL_DATASETS={root} holds no CATALOG.tsv")
    return path


@pytest.fixture(scope="module")
def catalog():
    root = _root()
    with open(root / "CATALOG.tsv", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f, delimiter="\t")}
    return root, rows


def _read_oracle(path: pathlib.Path) -> sp.csr_array:
    try:
        import fast_matrix_market as fmm

        m = fmm.mmread(str(path))
    except ImportError:
        m = scipy.io.mmread(path)
    if not sp.issparse(m):  # array format
        m = sp.coo_array(np.asarray(m))
    return sp.csr_array(m)


@pytest.mark.parametrize("name", NAMES)
def test_real_matrix_product(catalog, tmp_path, name):
    root, rows = catalog
    assert name in rows, f"{name} is not in CATALOG.tsv"
    entry = rows[name]
    path = root / name
    assert path.is_file(), f"{path} is listed in the catalog but missing"
    assert int(entry["size_bytes"]) < MAX_BYTES
    oracle = _read_oracle(path)
    assert oracle.shape == (int(entry["rows"]), int(entry["cols"]))

    for layout in ("csr", "csc"):
        a = sparsedisk.import_file(path, tmp_path / layout, layout=layout, threads=2)
        assert a.shape == oracle.shape and a.format == layout
        field = entry["field"]
        expected_type = {"real": "float64", "integer": "int64", "pattern": "pattern"}.get(field)
        if expected_type:
            assert a.value_type == expected_type, f"{name}: field {field} read as {a.value_type}"
        # Structure: the importer expands symmetric storage and keeps explicit zeros, as mmread does
        # (fast_matrix_market keeps them too).
        o64 = oracle.astype(np.float64)
        assert a.nnz == o64.nnz, f"{name}: {a.nnz} entries, scipy reads {o64.nnz}"
        assert_same_sparse(a.to_scipy().astype(np.float64), o64, what=name)
        rng = np.random.default_rng(0)
        x = rng.standard_normal(oracle.shape[1])
        y = rng.standard_normal(oracle.shape[0])
        assert_product(a @ x, o64, x, exact=False, what=f"{name} A @ x")
        assert_product(a.T @ y, o64.T, y, exact=False, what=f"{name} A.T @ y")
        x8 = rng.standard_normal((oracle.shape[1], 8))
        assert_product(a @ x8, o64, x8, exact=False, what=f"{name} A @ X")
        a.verify()
