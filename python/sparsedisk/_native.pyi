"""Type stubs of ``sparsedisk._native``, the Rust half of the sparsedisk package (PyO3, abi3).

Every function releases the GIL while Rust computes. Long calls (builders, import, operations,
algorithms, verify) stop on Ctrl-C: the library cleans up, nothing is published, and
``KeyboardInterrupt`` is raised. ``threads=None`` uses one thread per core; ``threads=n`` runs the
call in a pool of ``n`` threads (built once per ``n``).
"""

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class Error(Exception):
    """Base class of every error sparsedisk raises. Its message is the library's, naming the file at fault."""

class NotFoundError(Error, FileNotFoundError):
    """The path is not a sparsedisk matrix, or an input file does not exist."""

class InvalidInputError(Error, ValueError):
    """The arguments cannot be used: shape or dtype mismatch, entry outside the matrix, unknown option."""

class CorruptError(Error):
    """A file of a matrix does not hold what the format requires (structure, checksum, version)."""

class IoError(Error, OSError):
    """An operating-system I/O error on the file the message names."""

class ParseError(Error, ValueError):
    """A text input could not be parsed; the message gives the file and line."""

class InterruptedError(Error):
    """The call stopped because cancellation was requested by another call's Ctrl-C; nothing was published."""

class Matrix:
    """A sparse matrix stored on disk as CSR or CSC segments (memory-mapped on demand)."""

    @staticmethod
    def open(path: str | os.PathLike[str]) -> Matrix:
        """Opens the matrix in directory ``path`` (reads the manifest; maps nothing)."""
    @property
    def shape(self) -> Tuple[int, int]: ...
    @property
    def value_type(self) -> str:
        """"float64", "float32", "int64" or "pattern"."""
    @property
    def index_type(self) -> str:
        """"uint32" or "uint64"."""
    @property
    def nnz(self) -> int: ...
    @property
    def layout(self) -> str:
        """"csr" or "csc"."""
    @property
    def nbytes(self) -> int:
        """Bytes of the arrays on disk."""
    @property
    def path(self) -> str: ...
    @property
    def segment_count(self) -> int: ...
    def segments(self) -> List[Dict[str, Any]]:
        """One dict per segment: start, end, nnz, sparse_nnz, dense, indptr, indices, values (absolute
        file paths; values None for pattern), indptr_dtype ("uint64"), index_dtype, value_dtype
        (None for pattern)."""
    def segment_arrays(
        self, i: int
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
        """(indptr int64, indices int64, data) of segment ``i`` with dense blocks merged in; data in
        the stored dtype, float64 ones for pattern."""
    def matvec(
        self,
        x: npt.NDArray[np.float64],
        transposed: bool = False,
        threads: Optional[int] = None,
        out: Optional[npt.NDArray[np.float64]] = None,
    ) -> npt.NDArray[np.float64]:
        """``A @ x`` (``A.T @ x`` when transposed); ``x`` C-contiguous 1-D float64. Written into
        ``out`` (writable C-contiguous 1-D float64 of the result's length, sharing no memory with
        ``x``) and ``out`` returned when given, else a new array."""
    def matmat(
        self,
        x: npt.NDArray[np.float64],
        transposed: bool = False,
        threads: Optional[int] = None,
        out: Optional[npt.NDArray[np.float64]] = None,
    ) -> npt.NDArray[np.float64]:
        """``A @ X`` (``A.T @ X`` when transposed); ``X`` C-contiguous 2-D float64 of shape (n, k).
        ``out`` as for matvec, of shape (rows, k) ((cols, k) when transposed)."""
    def verify(self, threads: Optional[int] = None) -> Dict[str, int]:
        """Checks every checksum and every segment's structure: {segments, files, bytes, nnz}."""
    def info(self) -> Dict[str, Any]:
        """The summary ``sparsedisk info --json`` prints."""
    def diagonal(self, k: int = 0) -> npt.NDArray[Any]:
        """The k-th diagonal of the stored matrix in the stored dtype (float64 ones for pattern),
        scipy's length (empty beyond the matrix); one streaming pass, GIL released."""
    def line_sums(self, rows: bool) -> npt.NDArray[Any]:
        """Sums of each row (``rows=True``) or column: float64 for float matrices, exact int64 for
        int64 (InvalidInputError beyond the int64 range) and pattern (counts) matrices."""
    def total(self) -> Union[float, int]:
        """Sum of all entries: float for float matrices, exact int for int64 and pattern ones."""
    @property
    def fingerprint(self) -> str:
        """Digest of the manifest's shape, types, generation and file checksums."""

class Builder:
    """Builds a matrix from triplets in any order, sorted out of core within ``memory`` bytes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        shape: Tuple[int, int],
        value_type: str = "float64",
        layout: str = "csr",
        memory: Optional[int] = None,
        duplicates: str = "sum",
        threads: Optional[int] = None,
        overwrite: bool = False,
    ) -> None: ...
    def add(
        self,
        rows: npt.NDArray[np.integer[Any]],
        cols: npt.NDArray[np.integer[Any]],
        values: Optional[npt.NDArray[Any]] = None,
    ) -> None:
        """Adds triplets: rows/cols of any integer dtype (non-negative), values of the builder's
        value type (None for pattern)."""
    @property
    def triplets(self) -> int: ...
    @property
    def shape(self) -> Tuple[int, int]: ...
    @property
    def value_type(self) -> str: ...
    @property
    def stats(self) -> Optional[Dict[str, Any]]:
        """What finish did (None before finish)."""
    def finish(self) -> Matrix:
        """Sorts, merges, publishes and returns the matrix; the builder is closed afterwards."""
    def abort(self) -> None:
        """Removes everything the builder made; no-op after finish or abort."""

def parse_size(text: str) -> int:
    """Reads "64M", "1.5G", "4096" as bytes (K, M, G, T are powers of 1024), as ``--memory`` does."""

def import_file(
    input: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    format: Optional[str] = None,
    value_type: Optional[str] = None,
    layout: str = "csr",
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    duplicates: str = "sum",
    index_base: Optional[int] = None,
    square: Optional[bool] = None,
    shape: Optional[Tuple[int, int]] = None,
    symmetrize: bool = False,
    drop_zeros: bool = False,
    overwrite: bool = False,
) -> Matrix:
    """Imports a Matrix Market, edge-list or CSV file (plain or .gz), as ``sparsedisk import``."""

def write_csr(
    path: str | os.PathLike[str],
    shape: Tuple[int, int],
    layout: str,
    indptr: npt.NDArray[np.integer[Any]],
    indices: npt.NDArray[np.integer[Any]],
    data: Optional[npt.NDArray[Any]],
    value_type: str,
    overwrite: bool = False,
) -> Matrix:
    """Writes canonical CSR/CSC arrays (sorted, unique indices per row) as a matrix."""

def spgemm(
    a: Matrix,
    b: Matrix,
    path: str | os.PathLike[str],
    *,
    semiring: str = "plus-times",
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    drop_zeros: bool = False,
    overwrite: bool = False,
) -> Tuple[Matrix, Dict[str, Any]]:
    """``A @ B`` written to ``path``; semiring "plus-times", "min-plus" or "pattern"."""

def spgemm_in_memory(
    a: Matrix,
    b: Matrix,
    *,
    semiring: str = "plus-times",
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    drop_zeros: bool = False,
) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.unsignedinteger[Any]], Optional[npt.NDArray[Any]]]:
    """``A @ B`` in memory: row pointers, inner indices (uint32 below 2**31, else uint64) and values
    (float64 or int64; None for a pattern product), in A's layout."""

def transpose(
    a: Matrix,
    path: str | os.PathLike[str],
    *,
    layout: Optional[str] = None,
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    overwrite: bool = False,
) -> Tuple[Matrix, Dict[str, Any]]:
    """``A.T`` written to ``path`` in ``layout`` (default: A's)."""

def convert(
    a: Matrix,
    path: str | os.PathLike[str],
    layout: str,
    *,
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    overwrite: bool = False,
) -> Tuple[Matrix, Dict[str, Any]]:
    """A written to ``path`` in ``layout``."""

def add(
    a: Matrix,
    b: Matrix,
    path: str | os.PathLike[str],
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    value_type: Optional[str] = None,
    memory: Optional[int] = None,
    threads: Optional[int] = None,
    drop_zeros: bool = False,
    overwrite: bool = False,
) -> Tuple[Matrix, Dict[str, Any]]:
    """``alpha * A + beta * B`` written to ``path``."""

def pagerank(
    a: Matrix,
    *,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
    threads: Optional[int] = None,
) -> Tuple[npt.NDArray[np.float64], Dict[str, Any]]:
    """PageRank ranks and {iterations, delta, converged}."""

def bfs(a: Matrix, source: int, *, threads: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Hop distances from ``source``; -1 where unreachable."""

def components(a: Matrix, *, threads: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Weakly connected component labels (each vertex's smallest component member)."""

def cg(
    a: Matrix,
    b: npt.NDArray[np.float64],
    *,
    tol: float = 1e-8,
    max_iter: Optional[int] = None,
    preconditioner: str = "none",
    x0: Optional[npt.NDArray[np.float64]] = None,
    threads: Optional[int] = None,
) -> Tuple[npt.NDArray[np.float64], Dict[str, Any]]:
    """Conjugate gradients: x and {iterations, residual, converged}."""
