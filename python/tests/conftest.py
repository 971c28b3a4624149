"""Fixtures of the sparsedisk Python suite: random matrices written to disk (through the
``sparsedisk`` command line, independent of the Python write path), their scipy oracles, and the
helpers every test module uses to compare products.

The CLI binary is ``$SPARSEDISK_BIN`` if set, else ``<repo>/target/release/sparsedisk``; the
fixtures that need it skip with a message saying so when it is absent.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import scipy.sparse as sp

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCE = REPO / "python"


def _prefer_installed_package() -> None:
    """``python -m pytest`` run from ``python/`` puts that directory first on ``sys.path``, where
    ``sparsedisk/`` is the source package without its compiled ``_native`` (``pip install .`` puts the
    extension only in site-packages). Unless the extension was built in place (``maturin develop``),
    drop the source directory from the path so that ``import sparsedisk`` finds the installed one."""
    import importlib.machinery
    import sys

    package = SOURCE / "sparsedisk"
    if any(any(package.glob(f"_native*{suffix}")) for suffix in importlib.machinery.EXTENSION_SUFFIXES):
        return
    here = os.getcwd()
    sys.path[:] = [
        p for p in sys.path if pathlib.Path(p or here).resolve() != SOURCE.resolve()
    ]


_prefer_installed_package()

#: Value types the engine stores, with the CLI's names for them.
CLI_VALUE_TYPE = {"float64": "f64", "float32": "f32", "int64": "i64", "pattern": "pattern"}

#: Value types whose products are exact in float64 when the operand holds small integers: every
#: partial sum is an integer far below 2^53, so any summation order gives the same float64.
EXACT_KINDS = ("int64", "pattern")


def cli_path() -> pathlib.Path:
    env = os.environ.get("SPARSEDISK_BIN")
    return pathlib.Path(env) if env else REPO / "target" / "release" / "sparsedisk"


def run_cli(*args: object) -> subprocess.CompletedProcess:
    """Runs ``sparsedisk --quiet ARGS``; fails the test with the command's stderr if it fails."""
    path = cli_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"the sparsedisk command is not at {path}: build it (cargo build --release) or set SPARSEDISK_BIN"
        )
    cmd = [str(path), "--quiet", *(str(a) for a in args)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@pytest.fixture(scope="session")
def cli():
    """The ``sparsedisk`` command runner (skips when the binary is absent)."""
    path = cli_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"the sparsedisk command is not at {path}: build it (cargo build --release) or set SPARSEDISK_BIN"
        )
    return run_cli


# -- random triplets and their oracles ------------------------------------------------------------


def random_triplets(
    rng: np.random.Generator,
    shape: Tuple[int, int],
    density: float,
    kind: str,
    *,
    empty_lines: bool = True,
    duplicates: bool = True,
    explicit_zeros: bool = True,
    dense_block: bool = False,
):
    """Random ``(rows, cols, values)`` in ``shape`` (values ``None`` for a pattern matrix).

    Some rows and columns are left empty on purpose, a few entries are repeated once (never more, so
    that a float64 sum of duplicates is exact whatever the order: a + b == b + a), some values are
    explicit zeros (sparsedisk keeps them, as scipy does), and ``dense_block`` fills a 64 x 64 block
    completely (the writers store such a block dense)."""
    m, n = shape
    if m == 0 or n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), (None if kind == "pattern" else np.zeros(0))
    allowed_rows = np.arange(m)
    allowed_cols = np.arange(n)
    if empty_lines and m > 2:
        allowed_rows = np.sort(rng.choice(m, size=max(1, (3 * m) // 4), replace=False))
    if empty_lines and n > 2:
        allowed_cols = np.sort(rng.choice(n, size=max(1, (3 * n) // 4), replace=False))
    count = max(1, int(density * m * n))
    rows = rng.choice(allowed_rows, size=count)
    cols = rng.choice(allowed_cols, size=count)
    # Distinct positions first, then each duplicate repeats a distinct position at most once.
    lin = np.unique(rows * n + cols)
    rng.shuffle(lin)
    rows, cols = lin // n, lin % n
    if dense_block and m >= 64 and n >= 64:
        # Aligned to the writers' 64 x 64 tiling, so that one tile is full.
        r0 = 64 * int(rng.integers(0, m // 64))
        c0 = 64 * int(rng.integers(0, n // 64))
        br, bc = np.meshgrid(np.arange(r0, r0 + 64), np.arange(c0, c0 + 64), indexing="ij")
        block = br.ravel() * n + bc.ravel()
        lin = np.unique(np.concatenate([lin, block]))
        rng.shuffle(lin)
        rows, cols = lin // n, lin % n
    values = _random_values(rng, len(rows), kind)
    if values is not None and explicit_zeros and len(values) > 3:
        values[rng.choice(len(values), size=max(1, len(values) // 20), replace=False)] = 0
    if duplicates and len(rows) > 1:
        dup = rng.choice(len(rows), size=max(1, len(rows) // 10), replace=False)
        rows = np.concatenate([rows, rows[dup]])
        cols = np.concatenate([cols, cols[dup]])
        if values is not None:
            values = np.concatenate([values, _random_values(rng, len(dup), kind)])
        order = rng.permutation(len(rows))
        rows, cols = rows[order], cols[order]
        if values is not None:
            values = values[order]
    return rows.astype(np.int64), cols.astype(np.int64), values


def _random_values(rng: np.random.Generator, count: int, kind: str) -> Optional[np.ndarray]:
    if kind == "pattern":
        return None
    if kind == "int64":
        return rng.integers(-9, 10, size=count).astype(np.int64)
    if kind == "float32":
        return rng.standard_normal(count).astype(np.float32)
    return rng.standard_normal(count) * 10.0 ** rng.integers(-3, 4, size=count)


def oracle_of(rows, cols, values, shape, kind: str) -> sp.csr_array:
    """The scipy matrix the triplets mean: duplicates summed in the stored type (float32 sums are
    rounded to float32 exactly as the engine's are), pattern entries 1, explicit zeros kept; returned
    as a canonical float64 (or int64) CSR array."""
    if kind == "pattern":
        data = np.ones(len(rows), dtype=np.float64)
    else:
        data = np.asarray(values)
    m = sp.coo_array((data, (np.asarray(rows), np.asarray(cols))), shape=shape).tocsr()
    m.sum_duplicates()
    if kind == "pattern":
        m.data[:] = 1.0
    if kind == "int64":
        return m.astype(np.int64)
    return m.astype(np.float64)


def write_mtx(path: pathlib.Path, rows, cols, values, shape, kind: str) -> pathlib.Path:
    """A general coordinate Matrix Market file with the triplets in the given (random) order; values
    printed with 17 significant digits, so the file holds them exactly."""
    field = {"float64": "real", "float32": "real", "int64": "integer", "pattern": "pattern"}[kind]
    lines = [f"%%MatrixMarket matrix coordinate {field} general", "% written by the sparsedisk test suite",
             f"{shape[0]} {shape[1]} {len(rows)}"]
    r1 = np.asarray(rows) + 1
    c1 = np.asarray(cols) + 1
    if kind == "pattern":
        lines.extend(f"{r} {c}" for r, c in zip(r1.tolist(), c1.tolist()))
    elif kind == "int64":
        lines.extend(f"{r} {c} {v}" for r, c, v in zip(r1.tolist(), c1.tolist(), np.asarray(values).tolist()))
    else:
        vals = np.asarray(values, dtype=np.float64).tolist()
        lines.extend(f"{r} {c} {v:.17g}" for r, c, v in zip(r1.tolist(), c1.tolist(), vals))
    path.write_text("\n".join(lines) + "\n")
    return path


# -- matrices on disk, made once per session ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """A random matrix to write with the CLI: shape, density, value type, layout, segment bound."""

    shape: Tuple[int, int]
    kind: str
    layout: str
    density: float = 0.15
    segment_size: Optional[str] = None
    dense_block: bool = False
    seed: int = 0

    @property
    def id(self) -> str:
        seg = f"-seg{self.segment_size}" if self.segment_size else ""
        dense = "-dense" if self.dense_block else ""
        return f"{self.shape[0]}x{self.shape[1]}-{self.kind}-{self.layout}{seg}{dense}"


@dataclasses.dataclass
class Built:
    path: pathlib.Path
    oracle: sp.csr_array  # float64 (int64 for integer matrices)
    case: Case
    segments: int


class CaseStore:
    """Writes each :class:`Case` once per session (``sparsedisk import`` of a Matrix Market file)."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.built: Dict[Case, Built] = {}

    def get(self, case: Case) -> Built:
        if case not in self.built:
            self.built[case] = self._build(case)
        return self.built[case]

    def _build(self, case: Case) -> Built:
        seed = zlib.crc32(case.id.encode()) + case.seed  # deterministic (hash() of a str is salted)
        rng = np.random.default_rng(seed)
        rows, cols, vals = random_triplets(rng, case.shape, case.density, case.kind, dense_block=case.dense_block)
        oracle = oracle_of(rows, cols, vals, case.shape, case.kind)
        mtx = write_mtx(self.root / f"{case.id}.mtx", rows, cols, vals, case.shape, case.kind)
        out = self.root / case.id
        args = ["import", mtx, "-o", out, "--layout", case.layout, "--value-type", CLI_VALUE_TYPE[case.kind],
                "--memory", "128M"]
        if case.segment_size:
            args += ["--segment-size", case.segment_size]
        if not case.dense_block:
            args += ["--dense-threshold", "off"]
        run_cli(*args)
        import json

        segments = len(json.loads((out / "manifest.json").read_text())["segments"])
        return Built(out, oracle, case, segments)


def standard_cases(shapes, kinds=("float64", "float32", "int64", "pattern"), layouts=("csr", "csc")) -> List[Case]:
    """The suites' matrices: every shape of ``shapes`` at density 0.2, then the same many-segment
    (a 1 KiB payload bound cuts ~900 entries into a dozen segments or more) and dense-block (64 x 64
    blocks stored dense next to sparse entries) matrices, each in every kind and layout."""
    cases = [Case(shape, kind, layout, density=0.2) for shape in shapes for kind in kinds for layout in layouts]
    cases += [Case((150, 120), kind, layout, density=0.05, segment_size="1K") for kind in kinds for layout in layouts]
    cases += [
        Case((200, 170), kind, layout, density=0.02, segment_size="16K", dense_block=True)
        for kind in kinds
        for layout in layouts
    ]
    return cases


@pytest.fixture(scope="session")
def case_store(tmp_path_factory, cli) -> CaseStore:
    return CaseStore(tmp_path_factory.mktemp("cases"))


@pytest.fixture(scope="session")
def laplacian(tmp_path_factory, cli):
    """A 2-D Laplacian (24 x 24 grid: 576 rows, 2,784 nonzeros) generated by the CLI in CSR with
    many small segments, and its scipy oracle built independently with Kronecker products."""
    n = 24
    path = tmp_path_factory.mktemp("laplace") / "lap"
    run_cli("generate", "laplace2d", "--n", n, "-o", path, "--segment-size", "4K")
    return path, laplacian_oracle(n)


def laplacian_oracle(n: int) -> sp.csr_array:
    """The 5-point Laplacian on an n x n grid: 4 on the diagonal, -1 for each grid neighbour."""
    t = sp.diags_array([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(n)
    return (sp.kron(eye, t) + sp.kron(t, eye)).tocsr()


# -- comparing products ---------------------------------------------------------------------------


def assert_product(got: np.ndarray, oracle: sp.sparray, x: np.ndarray, *, exact: bool, what: str = "") -> None:
    """``got`` against ``oracle @ x`` computed by scipy in float64.

    Integer and pattern matrices times small-integer operands: every partial sum is an integer far
    below 2^53, so the products must be equal bit for bit. Floating-point matrices: each output is a
    sum of at most ``t`` products (``t``: the most entries in a row), and any summation order (scipy's
    sequential one, the engine's SIMD lanes and threads) has an error at most ``gamma_t = t u / (1 -
    t u)`` times ``sum |a_ij x_j|`` (Higham, Accuracy and Stability, 3.1); the two results may
    differ by twice that, elementwise. Anything beyond it is a wrong product, not rounding."""
    a64 = oracle.astype(np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    expected = a64 @ x64
    assert isinstance(got, np.ndarray), f"{what}: a product returns a numpy array, not {type(got).__name__}"
    assert got.dtype == np.float64, f"{what}: products are float64, got {got.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    if exact:
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    t = int(np.diff(a64.tocsr().indptr).max()) if a64.shape[0] and a64.nnz else 0
    u = np.finfo(np.float64).eps / 2
    gamma = (t + 1) * u / (1 - (t + 1) * u)
    bound = 2 * gamma * (abs(a64) @ np.abs(x64)) + np.finfo(np.float64).tiny
    err = np.abs(got - expected)
    if not np.all(err <= bound):
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{what}: product differs from scipy beyond rounding at {worst}: got {got[worst]!r}, "
            f"expected {expected[worst]!r} (bound {bound[worst]:.3g})"
        )


def operand(rng: np.random.Generator, shape, exact: bool) -> np.ndarray:
    """A random operand: small integers (as float64) for the exact cases, else normal floats."""
    if exact:
        return rng.integers(-5, 6, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


def assert_same_sparse(got, expected, *, what: str = "", exact: bool = True) -> None:
    """Same shape, same stored structure (explicit zeros count), same values: ``got`` and
    ``expected`` are brought to canonical CSR first."""
    g = sp.csr_array(got)
    e = sp.csr_array(expected)
    g.sum_duplicates()
    e.sum_duplicates()
    assert g.shape == e.shape, f"{what}: shape {g.shape}, expected {e.shape}"
    assert g.nnz == e.nnz, f"{what}: {g.nnz} stored entries, expected {e.nnz}"
    np.testing.assert_array_equal(g.indptr, e.indptr, err_msg=f"{what}: indptr")
    np.testing.assert_array_equal(g.indices, e.indices, err_msg=f"{what}: indices")
    if exact:
        np.testing.assert_array_equal(g.data, e.data, err_msg=f"{what}: values")
    else:
        np.testing.assert_allclose(g.data, e.data, rtol=1e-12, atol=0, err_msg=f"{what}: values")
