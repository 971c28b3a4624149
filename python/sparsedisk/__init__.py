"""sparsedisk: sparse matrices larger than memory, from Python.

A matrix lives on disk as memory-mapped CSR or CSC segments (see the project's ``docs/FORMAT.md``);
``sparsedisk.open`` maps it, and the returned :class:`Matrix` behaves like a read-only
``scipy.sparse`` array for products: ``A @ x``, ``A.T @ y``, ``A.dot(X)``, and the ``matvec`` /
``rmatvec`` / ``matmat`` methods that ``scipy.sparse.linalg.aslinearoperator`` looks for, so scipy's
iterative solvers (``cg``, ``gmres``, ``eigsh``, ``svds``) run on a matrix that never fits in memory.
Products run in the Rust engine with the GIL released and return new float64 numpy arrays.
``A.diagonal(k)``, ``A.sum(axis)`` and ``A.mean(axis)`` are one streaming pass in the engine (int64
sums exact). A :class:`Matrix` pickles by reference (its path, view and threads): ``pickle.loads``
reopens the files, so matrices can be sent to other processes on the same file system.

Matrices are made by :func:`builder` (numpy triplet chunks in any order, sorted out of core within a
memory budget), :func:`import_file` (Matrix Market, edge lists, CSV), :func:`from_scipy`, and the
whole-matrix operations :func:`spgemm`, :func:`transpose`, :func:`convert` and :func:`add`. The
graph and PDE algorithms :func:`pagerank`, :func:`bfs`, :func:`components` and :func:`cg` stream the
matrix from disk.

Errors are :class:`Error` subclasses that are also the built-in exception a Python user expects:
:class:`NotFoundError` is a ``FileNotFoundError``, :class:`InvalidInputError` a ``ValueError``,
:class:`IoError` an ``OSError``.
"""

from __future__ import annotations

import mmap
import operator
import os
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    CorruptError,
    Error,
    InvalidInputError,
    IoError,
    NotFoundError,
    ParseError,
)

#: Raised when a call was cancelled by another call's interruption (a Ctrl-C during the call itself
#: raises ``KeyboardInterrupt``). Not in ``__all__``: its name would shadow the built-in one.
InterruptedError = _native.InterruptedError  # noqa: A001

__all__ = [
    "Matrix",
    "Segment",
    "Builder",
    "open",
    "builder",
    "import_file",
    "from_scipy",
    "spgemm",
    "transpose",
    "convert",
    "add",
    "pagerank",
    "bfs",
    "components",
    "cg",
    "verify",
    "info",
    "Error",
    "NotFoundError",
    "InvalidInputError",
    "CorruptError",
    "IoError",
    "ParseError",
]

PathLike = Union[str, "os.PathLike[str]"]
Size = Union[int, str, None]

#: numpy dtype of each stored value type; pattern matrices (structure only) take part in products
#: with every stored entry equal to 1, as float64.
_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
    "pattern": np.dtype(np.float64),
}

#: Default limit of :meth:`Matrix.to_scipy`: what the copy in memory may take.
DEFAULT_TO_SCIPY_LIMIT = 4 << 30


def _memory(memory: Size) -> Optional[int]:
    """A memory budget in bytes: an int, or a size string such as ``"2G"`` or ``"512 MiB"``."""
    if memory is None:
        return None
    if isinstance(memory, str):
        return _native.parse_size(memory)
    if isinstance(memory, (int, np.integer)) and not isinstance(memory, bool):
        if memory < 0:
            raise InvalidInputError(f"a memory budget cannot be negative: {memory}")
        return int(memory)
    raise TypeError(f"a memory budget is an int (bytes) or a size string like '2G', not {type(memory).__name__}")


def _threads(threads: Optional[int]) -> Optional[int]:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise InvalidInputError(f"threads must be a positive integer or None, not {threads!r}")
    return int(threads)


def _path(path: PathLike) -> str:
    return os.fspath(path)


def _vector_operand(x: Any, what: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 array, converted where that loses nothing."""
    a = np.asarray(x)
    if a.dtype == np.float64:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidInputError(f"{what} is complex; sparsedisk computes in float64 only (complex values are not supported yet)")
    if a.dtype == np.float32 or a.dtype == np.float16 or a.dtype == np.bool_:
        return np.ascontiguousarray(a, dtype=np.float64)
    if np.issubdtype(a.dtype, np.integer):
        converted = a.astype(np.float64)
        if a.size and a.dtype.itemsize > 4:
            if not np.array_equal(converted.astype(a.dtype), a):
                raise InvalidInputError(f"{what} holds integers beyond 2^53 that float64 cannot represent exactly")
        return np.ascontiguousarray(converted)
    raise InvalidInputError(f"{what} must hold numbers (float64, or a type that converts to it exactly), not {a.dtype}")


def _out_operand(out: Any, shape: Tuple[int, ...]) -> np.ndarray:
    """``out`` checked: a writable C-contiguous float64 numpy array of exactly ``shape`` (nothing is
    converted: the result must land in the caller's memory)."""
    if (
        not isinstance(out, np.ndarray)
        or out.dtype != np.float64
        or out.shape != shape
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        if isinstance(out, np.ndarray):
            flags = "" if out.flags.c_contiguous else ", not C-contiguous"
            flags += "" if out.flags.writeable else ", read-only"
            got = f"an array of {out.dtype}, shape {out.shape}{flags}"
        else:
            got = f"a {type(out).__name__}"
        raise InvalidInputError(f"out must be a writable C-contiguous float64 array of shape {shape}, not {got}")
    return out


class Segment(NamedTuple):
    """One segment of a matrix on disk: outer indices ``start..end`` (rows of a CSR matrix, columns of
    a CSC one) and the files that hold them."""

    start: int
    end: int
    nnz: int
    #: True when some entries are stored as dense blocks (then the CSR/CSC files do not hold them).
    dense: bool
    indptr: str
    indices: str
    values: Optional[str]
    index_dtype: str
    value_dtype: str


class Matrix:
    """A sparse matrix stored on disk, or the transposed view of one (``A.T``).

    Products stream the memory-mapped segments through the engine's kernels; nothing but the
    vectors is held in memory. Attributes follow ``scipy.sparse``: :attr:`shape`, :attr:`ndim`,
    :attr:`dtype`, :attr:`nnz`, :attr:`format`; ``A @ x`` and ``A.dot(x)`` take 1-D or 2-D numpy
    arrays and return float64 numpy arrays (integer and pattern matrices are multiplied in float64).
    ``x @ A`` is the transposed product. :meth:`diagonal`, :meth:`sum` and :meth:`mean` follow
    scipy. A matrix is read-only; operations write new matrices. It pickles by reference (see
    :meth:`__reduce__`); ``copy.copy`` and ``copy.deepcopy`` give new handles on the same files.
    """

    # numpy hands ``x @ A`` (and other binary operators with an ndarray) to this class.
    __array_ufunc__ = None

    def __init__(self, native: "_native.Matrix", *, transposed: bool = False, threads: Optional[int] = None):
        self._native = native
        self._transposed = transposed
        self._threads = _threads(threads)
        # What a pickle records: absolute now, while the working directory is (most likely) the one
        # the matrix was opened from.
        self._abspath = os.path.abspath(native.path)

    # -- what it is -----------------------------------------------------------------------------

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, columns)``."""
        rows, cols = self._native.shape
        return (cols, rows) if self._transposed else (rows, cols)

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of the stored values (float64 for a pattern matrix, whose entries are 1)."""
        return _DTYPES[self._native.value_type]

    @property
    def value_type(self) -> str:
        """The stored value type: ``"float64"``, ``"float32"``, ``"int64"`` or ``"pattern"``."""
        return self._native.value_type

    @property
    def index_type(self) -> str:
        """The stored index type: ``"uint32"`` or ``"uint64"``."""
        return self._native.index_type

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return self._native.nnz

    @property
    def format(self) -> str:
        """``"csr"`` or ``"csc"``: how the entries are laid out (a transposed view swaps them)."""
        layout = self._native.layout
        if self._transposed:
            return "csc" if layout == "csr" else "csr"
        return layout

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix's arrays on disk."""
        return self._native.nbytes

    @property
    def path(self) -> str:
        """The matrix directory."""
        return self._native.path

    @property
    def threads(self) -> Optional[int]:
        """Threads the products use (``None``: all cores). Set it, or pass ``threads=`` per call."""
        return self._threads

    @threads.setter
    def threads(self, threads: Optional[int]) -> None:
        self._threads = _threads(threads)

    @property
    def segments(self) -> List[Segment]:
        """The segments, in order of their outer indices (of the stored matrix, not of a view)."""
        return [
            Segment(
                s["start"],
                s["end"],
                s["nnz"],
                s["dense"],
                s["indptr"],
                s["indices"],
                s["values"],
                s["index_dtype"],
                s["value_dtype"],
            )
            for s in self._native.segments()
        ]

    @property
    def T(self) -> "Matrix":
        """The transpose, as a view: its products run the transposed kernels on the same files."""
        return Matrix(self._native, transposed=not self._transposed, threads=self._threads)

    def transpose(self) -> "Matrix":
        """The transpose, as a view (see :attr:`T`); :func:`transpose` writes one to disk."""
        return self.T

    def __repr__(self) -> str:
        view = ", transposed view" if self._transposed else ""
        rows, cols = self.shape
        return (
            f"<sparsedisk.Matrix {rows} x {cols}, {self.nnz} stored {self.value_type} entries, "
            f"{self.format.upper()}{view}, at {self.path!r}>"
        )

    def __len__(self) -> int:
        raise TypeError("sparse matrix length is ambiguous; use .shape or .nnz")

    # -- copies and pickles ---------------------------------------------------------------------

    def __copy__(self) -> "Matrix":
        """A new handle on the same matrix (same view and threads; the files are shared)."""
        return Matrix(self._native, transposed=self._transposed, threads=self._threads)

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Matrix":
        """As :meth:`__copy__`: a matrix on disk is read-only, so nothing needs copying (use
        :func:`convert` or :func:`transpose` to write a copy of the files)."""
        return self.__copy__()

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        """Pickles the matrix by reference: its absolute path, whether this is a transposed view,
        the threads setting and a fingerprint of its manifest (no data). Unpickling reopens the
        path and raises :class:`NotFoundError` when it no longer holds this matrix (removed,
        moved, or rewritten since)."""
        return (_unpickle, (self._abspath, self._transposed, self._threads, self._native.fingerprint))

    # -- reductions -----------------------------------------------------------------------------

    def diagonal(self, k: int = 0) -> np.ndarray:
        """The ``k``-th diagonal, as ``scipy.sparse`` returns it: entries ``A[i, i + k]`` (``k > 0``
        above the main diagonal, ``k < 0`` below), of length ``min(rows + min(k, 0), cols -
        max(k, 0))``, empty when ``k`` lies outside the matrix; zeros where nothing is stored. A new
        numpy array of :attr:`dtype` (float64 ones for a pattern matrix). One streaming pass over
        the segments in the engine, GIL released."""
        k = operator.index(k)
        if self._transposed:
            k = -k
        rows, cols = self._native.shape
        if k <= -rows or k >= cols:
            return np.zeros(0, dtype=self.dtype)
        return self._native.diagonal(k)

    def sum(self, axis: Optional[int] = None, dtype: Any = None, out: Optional[np.ndarray] = None) -> Any:
        """Sum of the entries (``axis=None``: a numpy scalar), of each column (``axis=0`` or ``-2``:
        an array of ``cols`` values) or of each row (``axis=1`` or ``-1``: ``rows`` values), as
        ``scipy.sparse`` arrays give it. One streaming pass over the segments in the engine.

        The type: float64 for float matrices (float32 values are summed in float64, where scipy keeps
        float32), int64 for int64 matrices, computed exactly (an :class:`InvalidInputError` when a
        sum leaves the int64 range, where numpy would wrap around), and for pattern matrices the
        number of stored entries, as int64 (as scipy sums a bool matrix). ``dtype`` converts the
        result; ``out`` receives it (of the result's shape)."""
        axis = _axis(axis)
        if axis is None:
            total = self._native.total()
            result: Any = np.float64(total) if isinstance(total, float) else np.int64(total)
        else:
            stored_axis = 1 - axis if self._transposed else axis
            result = self._native.line_sums(stored_axis == 1)
        return _deliver(result, dtype, out)

    def mean(self, axis: Optional[int] = None, dtype: Any = None, out: Optional[np.ndarray] = None) -> Any:
        """The mean over ``axis`` (as :meth:`sum`), counting every position, stored or not, as
        ``scipy.sparse`` does: float64 (an int64 total is divided exactly; int64 line sums are
        converted to float64 first). ``nan`` for an empty matrix. ``dtype`` and ``out`` as for
        :meth:`sum`."""
        axis = _axis(axis)
        rows, cols = self.shape
        count = rows * cols if axis is None else (rows if axis == 0 else cols)
        total = self.sum(axis)
        if axis is None:
            if count == 0:
                result: Any = np.float64(np.nan)
            elif isinstance(total, np.integer):
                result = np.float64(int(total) / count)  # Python's int division rounds once
            else:
                result = np.float64(total / count)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                result = np.asarray(total, dtype=np.float64) / (count if count else np.nan)
        return _deliver(result, dtype, out)

    # -- products -------------------------------------------------------------------------------

    def _product(
        self, x: Any, transposed: bool, threads: Optional[int], what: str, out: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """``op(A) x`` where op is the transpose when ``transposed`` (relative to the stored matrix),
        written into ``out`` when given."""
        threads = _threads(threads) if threads is not None else self._threads
        rows, cols = self._native.shape
        inner, outer = (rows, cols) if transposed else (cols, rows)
        a = _vector_operand(x, what)
        if a.ndim == 1:
            if a.shape[0] != inner:
                raise InvalidInputError(f"{what} has length {a.shape[0]}; the product needs {inner}")
            if out is not None:
                _out_operand(out, (outer,))
            return self._native.matvec(a, transposed, threads, out)
        if a.ndim == 2:
            if a.shape[0] != inner:
                raise InvalidInputError(f"{what} has {a.shape[0]} rows; the product needs {inner}")
            k = a.shape[1]
            if out is not None:
                _out_operand(out, (outer, k))
            if k == 0:
                return np.zeros((outer, 0)) if out is None else out
            if k == 1:
                y = None if out is None else out.reshape(outer)  # a view: out is C-contiguous
                y = self._native.matvec(np.ascontiguousarray(a[:, 0]), transposed, threads, y)
                return y.reshape(outer, 1) if out is None else out
            return self._native.matmat(a, transposed, threads, out)
        raise InvalidInputError(f"{what} must be a 1-D or 2-D array, not {a.ndim}-D")

    def matvec(self, x: Any, threads: Optional[int] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``A x`` for a vector ``x`` of shape ``(n,)`` or ``(n, 1)`` (the result has the same form).

        ``out``: a writable C-contiguous float64 array of the result's shape to write into (and
        return), so that a loop of products allocates nothing; its contents are ignored."""
        return self._product(x, self._transposed, threads, "x", out)

    def rmatvec(self, x: Any, threads: Optional[int] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``A^T x`` (for real matrices also the adjoint product scipy's LinearOperator asks for);
        ``out`` as for :meth:`matvec`."""
        return self._product(x, not self._transposed, threads, "x", out)

    def matmat(self, x: Any, threads: Optional[int] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``A X`` for a 2-D array ``X`` of ``n`` rows: one pass over the matrix for all columns;
        ``out`` as for :meth:`matvec`."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise InvalidInputError(f"matmat takes a 2-D array, not {x.ndim}-D")
        return self._product(x, self._transposed, threads, "X", out)

    def rmatmat(self, x: Any, threads: Optional[int] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``A^T X`` for a 2-D array ``X``; ``out`` as for :meth:`matvec`."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise InvalidInputError(f"rmatmat takes a 2-D array, not {x.ndim}-D")
        return self._product(x, not self._transposed, threads, "X", out)

    def dot(self, other: Any, threads: Optional[int] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``A @ other`` for a 1-D or 2-D numpy array (or anything ``numpy.asarray`` accepts);
        ``out`` as for :meth:`matvec`."""
        if isinstance(other, Matrix):
            raise InvalidInputError("A @ B of two matrices on disk is sparsedisk.spgemm(A, B, path)")
        return self._product(other, self._transposed, threads, "x", out)

    def __matmul__(self, other: Any) -> np.ndarray:
        return self.dot(other)

    def __rmatmul__(self, other: Any) -> np.ndarray:
        # x @ A = (A^T x^T)^T.
        a = np.asarray(other)
        if a.ndim == 1:
            return self._product(a, not self._transposed, None, "x")
        if a.ndim == 2:
            return self._product(a.T, not self._transposed, None, "x").T
        raise InvalidInputError(f"x @ A takes a 1-D or 2-D array, not {a.ndim}-D")

    def __mul__(self, other: Any) -> Any:
        raise TypeError("use A @ x for the matrix product ('*' is elementwise in scipy.sparse arrays)")

    # -- to and from scipy ----------------------------------------------------------------------

    def _band_arrays(self, index: int, segment: Segment) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The CSR/CSC arrays of one segment, checked (scipy trusts them: an index out of range would
        crash it): memory-mapped files viewed as the signed types scipy takes, when the files hold
        every entry; merged in memory when the segment has dense blocks."""
        if segment.dense:
            return self._native.segment_arrays(index)
        rows, cols = self._native.shape
        inner = cols if self._native.layout == "csr" else rows
        outer = segment.end - segment.start
        indptr = _map(segment.indptr, np.dtype(np.uint64), outer + 1)
        nnz = int(indptr[-1]) if outer + 1 == len(indptr) and len(indptr) else -1
        indices = _map(segment.indices, np.dtype(segment.index_dtype), max(nnz, 0))
        if (
            nnz < 0
            or int(indptr[0]) != 0
            or len(indices) != nnz
            or bool(np.any(indptr[1:] < indptr[:-1]))
            or (nnz > 0 and int(indices.max()) >= inner)
        ):
            raise CorruptError(
                f"{segment.indices}: the segment's row pointers or indices are inconsistent "
                "(run sparsedisk.verify on the matrix)"
            )
        # Zero-copy signed views (every value was just checked to fit): scipy wants int32/int64.
        # scipy gives indices and indptr one dtype: 32-bit indices stay mapped when indptr is copied
        # to int32 too (one value per row, against one per entry).
        if indices.dtype == np.uint32 and inner <= 2**31 and nnz < 2**31:
            indices, indptr = indices.view(np.int32), indptr.astype(np.int32)
        elif indices.dtype == np.uint32:
            indices, indptr = indices.astype(np.int64), indptr.view(np.int64)
        else:
            indices, indptr = indices.view(np.int64), indptr.view(np.int64)
        if segment.values is None:
            data = np.ones(nnz, dtype=np.float64)
        else:
            data = _map(segment.values, np.dtype(segment.value_dtype), nnz)
        return indptr, indices, data

    def bands(self) -> Iterator[Tuple[int, Any]]:
        """Yields ``(offset, block)`` per segment: a ``scipy.sparse.csr_array`` of rows
        ``offset..offset + block.shape[0]`` (a CSR matrix), or a ``csc_array`` of columns
        ``offset..`` (a CSC matrix; a transposed view swaps the two). Blocks are zero-copy views of
        the memory-mapped files, except segments with dense blocks, which are merged in memory.
        Only one segment needs to be resident at a time."""
        import scipy.sparse as sp

        rows, cols = self._native.shape
        csr = self._native.layout == "csr"
        for i, segment in enumerate(self.segments):
            indptr, indices, data = self._band_arrays(i, segment)
            outer = segment.end - segment.start
            if csr:
                block = sp.csr_array((data, indices, indptr), shape=(outer, cols), copy=False)
            else:
                block = sp.csc_array((data, indices, indptr), shape=(rows, outer), copy=False)
            yield segment.start, (block.T if self._transposed else block)

    def to_scipy(self, max_bytes: Optional[int] = DEFAULT_TO_SCIPY_LIMIT) -> Any:
        """The whole matrix in memory as a ``scipy.sparse.csr_array`` (CSR) or ``csc_array`` (CSC;
        a transposed view returns the transpose of the stored one). Refused with an error naming the
        size when the copy would exceed ``max_bytes`` (``None``: no limit)."""
        import scipy.sparse as sp

        rows, cols = self._native.shape
        csr = self._native.layout == "csr"
        outer = rows if csr else cols
        index_dtype = np.int32 if max(rows, cols, self.nnz) < 2**31 else np.int64
        value_dtype = self.dtype
        need = (outer + 1) * np.dtype(index_dtype).itemsize + self.nnz * (
            np.dtype(index_dtype).itemsize + value_dtype.itemsize
        )
        if max_bytes is not None and need > max_bytes:
            raise InvalidInputError(
                f"the matrix takes {_format_bytes(need)} in memory as a scipy array, over the limit of "
                f"{_format_bytes(max_bytes)}; pass max_bytes=None to allow it, or stream it with bands()"
            )
        indptr = np.zeros(outer + 1, dtype=index_dtype)
        indices = np.empty(self.nnz, dtype=index_dtype)
        data = np.empty(self.nnz, dtype=value_dtype)
        at = 0
        for i, segment in enumerate(self.segments):
            p, ix, v = self._band_arrays(i, segment)
            n = len(ix)
            indptr[segment.start + 1 : segment.end + 1] = p[1:].astype(np.int64) + at
            indices[at : at + n] = ix
            data[at : at + n] = v
            at += n
        # Outer indices between segments (none stored) keep the running count.
        np.maximum.accumulate(indptr, out=indptr)
        shape = (rows, cols)
        m = (sp.csr_array if csr else sp.csc_array)((data, indices, indptr), shape=shape)
        return m.T if self._transposed else m

    def toarray(self) -> np.ndarray:
        """The dense matrix (for small matrices: tests and inspection)."""
        return self.to_scipy().toarray()

    # -- checks and facts -----------------------------------------------------------------------

    def verify(self) -> Dict[str, Any]:
        """Checks every file against its checksum and every segment's structure; returns what was
        checked. Raises :class:`CorruptError` naming the file on the first problem."""
        return self._native.verify()

    def info(self) -> Dict[str, Any]:
        """The manifest's facts: shape, types, segments, bytes on disk, dense blocks."""
        return self._native.info()

    def _stored(self, what: str) -> "_native.Matrix":
        """The stored matrix, for operations that read it whole (a transposed view is refused)."""
        if self._transposed:
            raise InvalidInputError(
                f"{what} reads a matrix as stored; write the transpose first with sparsedisk.transpose(A, path)"
            )
        return self._native


def _axis(axis: Any) -> Optional[int]:
    """``axis`` as 0, 1 or None (scipy's -2 and -1 are 0 and 1)."""
    if axis is None:
        return None
    try:
        a = operator.index(axis)
    except TypeError:
        raise InvalidInputError(f"axis must be None, 0, 1, -1 or -2, not {axis!r}") from None
    if not -2 <= a <= 1:
        raise InvalidInputError(f"axis {a} is out of range for a 2-D matrix (None, 0, 1, -1 or -2)")
    return a % 2


def _unpickle(path: str, transposed: bool, threads: Optional[int], fingerprint: Optional[str]) -> Matrix:
    """Reopens a pickled :class:`Matrix` (see :meth:`Matrix.__reduce__`)."""
    try:
        native = _native.Matrix.open(path)
    except NotFoundError as e:
        raise NotFoundError(f"cannot unpickle the sparsedisk matrix at {path!r}: {e}") from e
    if fingerprint is not None and native.fingerprint != fingerprint:
        raise NotFoundError(
            f"cannot unpickle the sparsedisk matrix at {path!r}: the directory now holds another matrix "
            "(it was rewritten or replaced after the matrix was pickled)"
        )
    return Matrix(native, transposed=transposed, threads=threads)


def _deliver(result: Any, dtype: Any, out: Optional[np.ndarray]) -> Any:
    """A reduction's ``result`` converted to ``dtype`` (when given) and written into ``out`` (when
    given, of the result's shape), as numpy's reductions take them."""
    if dtype is not None:
        result = np.asarray(result).astype(dtype)[()]
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != np.shape(result):
            raise InvalidInputError(f"out must be a numpy array of shape {np.shape(result)}")
        out[...] = result
        return out
    return result


def _map(path: str, dtype: np.dtype, count: int) -> np.ndarray:
    """A read-only memory map of ``count`` values of ``dtype`` (an empty array for none: numpy cannot
    map an empty file)."""
    if count == 0:
        return np.zeros(0, dtype=dtype)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise CorruptError(f"{path}: a file of the matrix is missing (run sparsedisk.verify on the matrix)") from None
    if size < count * dtype.itemsize:
        raise CorruptError(
            f"{path}: {size} bytes, too short for {count} values of {dtype} (run sparsedisk.verify on the matrix)"
        )
    fd = os.open(path, os.O_RDONLY)
    try:
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    # As the engine maps its files: pages read through this map enter the page cache as 2 MiB
    # folios, which later maps (the engine's products included) map with one TLB entry each; read
    # on 4 KiB pages, they would slow every later product over the matrix by about 10%
    # (docs/performance.md, "Page-cache folios").
    if size >= 2 << 20 and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            mapped.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return np.frombuffer(mapped, dtype=dtype, count=count)


def _format_bytes(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.2f} {unit}"
    return f"{n} bytes"


# -- opening and building ---------------------------------------------------------------------------


def open(path: PathLike, *, threads: Optional[int] = None) -> Matrix:  # noqa: A001 (the module's verb)
    """Opens the matrix in directory ``path`` (the manifest is read and checked; the arrays are mapped
    segment by segment as products need them). ``threads`` sets the products' default thread count.

    Raises :class:`NotFoundError` when there is no matrix there, :class:`CorruptError` for a damaged
    manifest."""
    return Matrix(_native.Matrix.open(_path(path)), threads=threads)


class Builder:
    """Builds a matrix from triplet chunks in any order, sorted out of core within a memory budget
    exactly like ``sparsedisk import``. Use as a context manager (see :func:`builder`): leaving the
    block normally finishes the matrix; an exception removes everything written."""

    def __init__(
        self,
        path: PathLike,
        shape: Tuple[int, int],
        *,
        dtype: Any = np.float64,
        layout: str = "csr",
        memory: Size = None,
        duplicates: str = "sum",
        threads: Optional[int] = None,
        overwrite: bool = False,
    ):
        self.value_type = _value_type(dtype)
        self._native: Optional[Any] = _native.Builder(
            _path(path),
            (int(shape[0]), int(shape[1])),
            self.value_type,
            layout,
            _memory(memory),
            duplicates,
            _threads(threads),
            overwrite,
        )
        self.matrix: Optional[Matrix] = None
        self._stats: Optional[Dict[str, Any]] = None

    def add(self, rows: Any, cols: Any, values: Any = None) -> None:
        """Adds entries ``(rows[k], cols[k], values[k])``: 1-D arrays of equal length (0-based
        indices; ``values`` omitted for a pattern matrix, else converted to the matrix's type where
        that is exact)."""
        if self._native is None:
            raise InvalidInputError("this builder has finished; open the matrix with sparsedisk.open")
        rows = _index_operand(rows, "rows")
        cols = _index_operand(cols, "cols")
        if rows.shape != cols.shape:
            raise InvalidInputError(f"rows and cols differ in length: {rows.shape[0]} and {cols.shape[0]}")
        if self.value_type == "pattern":
            if values is not None:
                raise InvalidInputError("a pattern matrix stores no values; pass values=None")
            vals = None
        else:
            if values is None:
                raise InvalidInputError(f"a {self.value_type} matrix needs values")
            vals = _value_operand(values, self.value_type)
            if vals.shape != rows.shape:
                raise InvalidInputError(f"values has length {vals.shape[0]}; rows and cols have {rows.shape[0]}")
        self._native.add(rows, cols, vals)

    def finish(self) -> Matrix:
        """Sorts what remains, writes the last segments and the manifest; returns the matrix."""
        if self._native is None:
            if self.matrix is None:
                raise InvalidInputError("this builder was aborted")
            return self.matrix
        native, self._native = self._native, None
        self.matrix = Matrix(native.finish())
        self._stats = native.stats
        return self.matrix

    @property
    def stats(self) -> Optional[Dict[str, Any]]:
        """What the build did (triplets, runs spilled, bytes, seconds), once finished; else None."""
        return self._stats

    def abort(self) -> None:
        """Removes everything written so far."""
        if self._native is not None:
            native, self._native = self._native, None
            native.abort()

    def __enter__(self) -> "Builder":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


def builder(path: PathLike, shape: Tuple[int, int], **options: Any) -> Builder:
    """A :class:`Builder` for a new matrix at ``path``::

        with sparsedisk.builder("m", (n, n), memory="2G") as b:
            for rows, cols, vals in chunks:
                b.add(rows, cols, vals)
        A = b.matrix

    Options: ``dtype`` (float64, float32, int64, or ``"pattern"``/``bool`` for structure only),
    ``layout`` (``"csr"``/``"csc"``), ``memory`` (the budget: bytes or ``"2G"``), ``duplicates``
    (``"sum"``, ``"min"``, ``"max"``, ``"first"``, ``"last"`` or ``"error"``), ``threads``,
    ``overwrite``."""
    return Builder(path, shape, **options)


def _value_type(dtype: Any) -> str:
    if isinstance(dtype, str) and dtype == "pattern":
        return "pattern"
    d = np.dtype(dtype)
    if d == np.bool_:
        return "pattern"
    for name, known in (("float64", np.float64), ("float32", np.float32), ("int64", np.int64)):
        if d == known:
            return name
    raise InvalidInputError(f"sparsedisk stores float64, float32, int64 or pattern values, not {d}")


def _index_operand(a: Any, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise InvalidInputError(f"{what} must be a 1-D array, not {a.ndim}-D")
    if a.dtype == np.uint64:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise InvalidInputError(f"{what} must hold integer indices, not {a.dtype}")
    if a.size and a.min() < 0:
        k = int(np.argmax(a < 0))
        raise InvalidInputError(f"{what}[{k}] is {a[k]}: indices are non-negative (0-based)")
    return np.ascontiguousarray(a, dtype=np.uint64)


def _value_operand(a: Any, value_type: str) -> np.ndarray:
    a = np.asarray(a)
    target = _DTYPES[value_type]
    if a.ndim != 1:
        raise InvalidInputError(f"values must be a 1-D array, not {a.ndim}-D")
    if a.dtype == target:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidInputError("complex values are not supported yet")
    converted = a.astype(target)
    with np.errstate(invalid="ignore"):
        exact = np.array_equal(converted.astype(a.dtype), a, equal_nan=np.issubdtype(a.dtype, np.floating))
    if not exact:
        raise InvalidInputError(f"values of type {a.dtype} do not convert exactly to {target}")
    return np.ascontiguousarray(converted)


def import_file(input: PathLike, path: PathLike, **options: Any) -> Matrix:  # noqa: A002
    """Imports a Matrix Market, edge-list or CSV file (gzip, zstd and bzip2 too) like
    ``sparsedisk import``: options ``format``, ``value_type``, ``layout``, ``memory``, ``threads``,
    ``duplicates``, ``index_base``, ``square``, ``overwrite``, with the command line's meanings."""
    if "memory" in options:
        options["memory"] = _memory(options["memory"])
    return Matrix(_native.import_file(_path(input), _path(path), **options))


def from_scipy(m: Any, path: PathLike, *, layout: Optional[str] = None, overwrite: bool = False) -> Matrix:
    """Writes a scipy sparse matrix or array to ``path`` and opens it. CSR and CSC inputs are written
    in their layout (``layout`` converts), anything else as CSR; duplicates are summed and indices
    sorted first, as ``sum_duplicates`` does. bool values give a pattern matrix."""
    import scipy.sparse as sp

    if not sp.issparse(m):
        raise InvalidInputError(f"from_scipy takes a scipy.sparse matrix or array, not {type(m).__name__}")
    if layout is None:
        layout = m.format if m.format in ("csr", "csc") else "csr"
    if layout not in ("csr", "csc"):
        raise InvalidInputError(f"layout is 'csr' or 'csc', not {layout!r}")
    m = m.tocsr() if layout == "csr" else m.tocsc()
    m = m.copy() if not m.has_canonical_format else m
    m.sum_duplicates()
    value_type = _value_type(m.dtype)
    data = None if value_type == "pattern" else _value_operand(m.data, value_type)
    indptr = np.ascontiguousarray(m.indptr, dtype=np.uint64)
    indices = np.ascontiguousarray(m.indices, dtype=np.uint64)
    rows, cols = m.shape
    return Matrix(_native.write_csr(_path(path), (rows, cols), layout, indptr, indices, data, value_type, overwrite))


# -- whole-matrix operations ------------------------------------------------------------------------


def spgemm(a: Matrix, b: Matrix, path: Optional[PathLike] = None, *, semiring: str = "plus-times",
           memory: Size = None, threads: Optional[int] = None, drop_zeros: bool = False,
           overwrite: bool = False) -> Any:
    """``C = A B``: written to ``path`` out of core and returned opened (a :class:`Matrix`), or,
    without ``path``, computed in memory and returned as a ``scipy.sparse.csr_array`` (``csc_array``
    when ``A`` is stored CSC), int32 indices when they fit; the same computation, nothing written.
    ``memory`` bounds the in-memory product too (with ``B`` and the accumulators): a product that does
    not fit raises :class:`InvalidInputError` naming the sizes, before memory runs out.

    Structural entries are kept (GraphBLAS's convention): scipy's ``A @ B`` drops the zeros it
    computes, this does not unless ``drop_zeros``. ``semiring``: ``"plus-times"``, ``"min-plus"`` or
    ``"pattern"`` (a pattern product: every value 1.0 in memory). The value type is int64 when both
    hold integers (int64 or pattern), else float64."""
    if path is None:
        if overwrite:
            raise InvalidInputError("overwrite applies to a product written to a path; none was given")
        import scipy.sparse as sp

        stored_a, stored_b = a._stored("spgemm"), b._stored("spgemm")
        indptr, indices, data = _native.spgemm_in_memory(stored_a, stored_b, semiring=semiring,
                                                         memory=_memory(memory), threads=_threads(threads),
                                                         drop_zeros=drop_zeros)
        nnz = len(indices)
        # Zero-copy signed views; scipy keeps indices and pointers in one dtype, so the pointers (one
        # per row) become int32 with 32-bit indices when the count allows, rather than the indices
        # (one per entry) int64.
        indptr = indptr.view(np.int64)
        if indices.dtype == np.uint32 and nnz < 2**31:
            indices, indptr = indices.view(np.int32), indptr.astype(np.int32)
        else:
            indices = indices.astype(np.int64) if indices.dtype == np.uint32 else indices.view(np.int64)
        if data is None:
            data = np.ones(nnz, dtype=np.float64)
        shape = (stored_a.shape[0], stored_b.shape[1])
        csr = stored_a.layout == "csr"
        return (sp.csr_array if csr else sp.csc_array)((data, indices, indptr), shape=shape, copy=False)
    m, _ = _native.spgemm(a._stored("spgemm"), b._stored("spgemm"), _path(path), semiring=semiring,
                          memory=_memory(memory), threads=_threads(threads), drop_zeros=drop_zeros,
                          overwrite=overwrite)
    return Matrix(m)


def transpose(a: Matrix, path: PathLike, *, layout: Optional[str] = None, memory: Size = None,
              overwrite: bool = False) -> Matrix:
    """Writes ``A^T`` to ``path`` (in ``A``'s layout unless ``layout`` is given)."""
    m, _ = _native.transpose(a._stored("transpose"), _path(path), layout=layout, memory=_memory(memory),
                             overwrite=overwrite)
    return Matrix(m)


def convert(a: Matrix, path: PathLike, layout: str, *, memory: Size = None, overwrite: bool = False) -> Matrix:
    """Writes ``A`` to ``path`` in ``layout`` (``"csr"`` or ``"csc"``)."""
    m, _ = _native.convert(a._stored("convert"), _path(path), layout, memory=_memory(memory), overwrite=overwrite)
    return Matrix(m)


def add(a: Matrix, b: Matrix, path: PathLike, *, alpha: float = 1.0, beta: float = 1.0, dtype: Any = None,
        memory: Size = None, drop_zeros: bool = False, overwrite: bool = False) -> Matrix:
    """``C = alpha A + beta B`` written to ``path``; the structure is the union (zeros kept unless
    ``drop_zeros``). ``dtype`` (default: int64 when both inputs and both coefficients are integers,
    else float64) may be float64, float32, int64 or ``"pattern"`` (the union of the structures)."""
    value_type = None if dtype is None else _value_type(dtype)
    m, _ = _native.add(a._stored("add"), b._stored("add"), _path(path), alpha=float(alpha), beta=float(beta),
                       value_type=value_type, memory=_memory(memory), drop_zeros=drop_zeros, overwrite=overwrite)
    return Matrix(m)


# -- algorithms -------------------------------------------------------------------------------------


def pagerank(a: Matrix, *, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 1000,
             threads: Optional[int] = None, full_output: bool = False) -> Any:
    """PageRank of the graph whose edge ``i -> j`` is entry ``(i, j)``: a float64 array summing to 1
    (dangling vertices spread their rank evenly). With ``full_output``, also a dict with
    ``iterations``, ``delta`` (the last change, L1) and ``converged``."""
    ranks, stats = _native.pagerank(a._stored("pagerank"), damping=damping, tol=tol, max_iter=max_iter,
                                    threads=_threads(threads))
    return (ranks, stats) if full_output else ranks


def bfs(a: Matrix, source: int, *, threads: Optional[int] = None) -> np.ndarray:
    """Breadth-first levels from ``source`` (int64; -1 where unreached)."""
    return _native.bfs(a._stored("bfs"), int(source), threads=_threads(threads))


def components(a: Matrix, *, threads: Optional[int] = None) -> np.ndarray:
    """Connected components (edges taken as undirected): a label per vertex."""
    return _native.components(a._stored("components"), threads=_threads(threads))


def cg(a: Matrix, b: Any, *, tol: float = 1e-8, max_iter: Optional[int] = None, preconditioner: str = "none",
       x0: Any = None, threads: Optional[int] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Conjugate gradients for ``A x = b`` (``A`` symmetric positive definite), streaming ``A`` from
    disk once per iteration. Returns ``x`` and a dict with ``iterations``, ``residual`` and
    ``converged``; raises :class:`InvalidInputError` when ``max_iter`` iterations do not reach
    ``tol`` (the relative residual ``|b - A x| / |b|``), as the engine does. scipy's own
    ``scipy.sparse.linalg.cg(aslinearoperator(A), b)`` works too (and returns instead)."""
    b = _vector_operand(b, "b")
    x0 = None if x0 is None else _vector_operand(x0, "x0")
    return _native.cg(a._stored("cg"), b, tol=tol, max_iter=max_iter, preconditioner=preconditioner, x0=x0,
                      threads=_threads(threads))


def verify(a: Union[Matrix, PathLike]) -> Dict[str, Any]:
    """:meth:`Matrix.verify` of a matrix or of the matrix at a path."""
    return (a if isinstance(a, Matrix) else open(a)).verify()


def info(a: Union[Matrix, PathLike]) -> Dict[str, Any]:
    """:meth:`Matrix.info` of a matrix or of the matrix at a path."""
    return (a if isinstance(a, Matrix) else open(a)).info()
