"""Every error path: what cannot be opened, damaged files, bad operands, bad builder input, unknown
options, outputs that already exist, bad sizes. Each raises a ``sparsedisk.Error`` subclass that is
also the built-in exception a Python user catches; hostile files give exceptions, never a crash."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedisk
from conftest import Case, assert_product


@pytest.fixture
def small(tmp_path):
    """A 6 x 5 float64 CSR matrix written by from_scipy, and its oracle."""
    m = sp.csr_array(np.array([[1.0, 0, 2, 0, 0], [0, 0, 0, 0, 0], [0, 3, 0, 0, 4], [5, 0, 0, 6, 0],
                               [0, 0, 7, 0, 0], [0, 8, 0, 0, 9]]))
    return sparsedisk.from_scipy(m, tmp_path / "small"), m


def _copy(built_path: pathlib.Path, tmp_path: pathlib.Path, name: str) -> pathlib.Path:
    dst = tmp_path / name
    shutil.copytree(built_path, dst)
    return dst


def _segment_file(path: pathlib.Path, which: str, index: int = 0) -> pathlib.Path:
    manifest = json.loads((path / "manifest.json").read_text())
    return path / manifest["segments"][index][which]["path"]


# -- the exception classes ------------------------------------------------------------------------


def test_exception_hierarchy():
    assert issubclass(sparsedisk.NotFoundError, sparsedisk.Error)
    assert issubclass(sparsedisk.NotFoundError, FileNotFoundError)
    assert issubclass(sparsedisk.InvalidInputError, sparsedisk.Error)
    assert issubclass(sparsedisk.InvalidInputError, ValueError)
    assert issubclass(sparsedisk.IoError, sparsedisk.Error)
    assert issubclass(sparsedisk.IoError, OSError)
    assert issubclass(sparsedisk.ParseError, sparsedisk.Error)
    assert issubclass(sparsedisk.ParseError, ValueError)
    assert issubclass(sparsedisk.CorruptError, sparsedisk.Error)
    assert issubclass(sparsedisk.Error, Exception)


# -- opening --------------------------------------------------------------------------------------


def test_open_missing_directory(tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(sparsedisk.NotFoundError) as info:
        sparsedisk.open(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert "nothing-here" in str(info.value)
    with pytest.raises(FileNotFoundError):
        sparsedisk.open(str(missing))
    with pytest.raises(FileNotFoundError):
        sparsedisk.info(missing)


def test_open_a_directory_that_is_not_a_matrix(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(sparsedisk.NotFoundError) as info:
        sparsedisk.open(empty)
    assert "empty" in str(info.value)
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.txt").write_text("hello")
    with pytest.raises(sparsedisk.Error):
        sparsedisk.open(other)
    plain_file = tmp_path / "file.txt"
    plain_file.write_text("not a directory")
    with pytest.raises(sparsedisk.Error):
        sparsedisk.open(plain_file)


def test_open_a_damaged_manifest(small, tmp_path):
    a, _ = small
    for name, text in [("garbage", "{not json"), ("empty", ""), ("array", "[1, 2, 3]"),
                       ("wrong", json.dumps({"format": "other"}))]:
        d = _copy(pathlib.Path(a.path), tmp_path, name)
        (d / "manifest.json").write_text(text)
        with pytest.raises(sparsedisk.CorruptError) as info:
            sparsedisk.open(d)
        assert "manifest" in str(info.value), str(info.value)
    # A manifest whose checksum no longer matches its content (one number edited).
    d = _copy(pathlib.Path(a.path), tmp_path, "edited")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["nnz"] += 1
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(sparsedisk.CorruptError):
        sparsedisk.open(d)


def test_flipped_byte_in_values_fails_verify(case_store, tmp_path):
    built = case_store.get(Case((150, 120), "float64", "csr", density=0.05, segment_size="1K"))
    d = _copy(built.path, tmp_path, "flipped")
    values = _segment_file(d, "values", 2)
    data = bytearray(values.read_bytes())
    data[len(data) // 2] ^= 0x10
    values.write_bytes(bytes(data))
    a = sparsedisk.open(d)  # opening reads sizes, not contents
    with pytest.raises(sparsedisk.CorruptError) as info:
        a.verify()
    assert values.name in str(info.value) or "values" in str(info.value), str(info.value)
    with pytest.raises(sparsedisk.CorruptError):
        sparsedisk.verify(d)
    # The original is untouched and verifies.
    sparsedisk.verify(built.path)


@pytest.mark.parametrize("which", ["indices", "indptr", "values"])
def test_truncated_file_raises(case_store, tmp_path, which):
    built = case_store.get(Case((150, 120), "float64", "csr", density=0.05, segment_size="1K"))
    d = _copy(built.path, tmp_path, f"trunc-{which}")
    f = _segment_file(d, which, 1)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    x = np.ones(120)
    with pytest.raises(sparsedisk.Error) as info:
        a = sparsedisk.open(d)
        a @ x
    assert isinstance(info.value, (sparsedisk.CorruptError, sparsedisk.IoError)), type(info.value)


def test_missing_segment_file_raises(case_store, tmp_path):
    built = case_store.get(Case((150, 120), "int64", "csc", density=0.05, segment_size="1K"))
    d = _copy(built.path, tmp_path, "missing")
    _segment_file(d, "indices", 0).unlink()
    with pytest.raises(sparsedisk.Error):
        a = sparsedisk.open(d)
        a @ np.ones(120)


HOSTILE = textwrap.dedent(
    """
    import json, pathlib, shutil, sys
    import numpy as np
    import sparsedisk

    src, work, only = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]

    def damaged(name, which, edit, seg=1):
        d = work / name
        shutil.copytree(src, d)
        m = json.loads((d / "manifest.json").read_text())
        f = d / m["segments"][seg][which]["path"]
        f.write_bytes(edit(bytearray(f.read_bytes()), m))
        return d

    def index_out_of_range(b, m):
        width = 4 if m["index_type"] == "uint32" else 8
        b[width * 3: width * 4] = b"\\xff" * width
        return bytes(b)

    def pointer_past_end(b, m):
        b[8 * 2: 8 * 3] = (1 << 40).to_bytes(8, "little")
        return bytes(b)

    def pointers_decreasing(b, m):
        b[8 * 1: 8 * 2] = (10**6).to_bytes(8, "little")
        return bytes(b)

    def truncate(b, m):
        return bytes(b[: len(b) // 3])

    cases = [
        ("index", "indices", index_out_of_range),
        ("pointer", "indptr", pointer_past_end),
        ("decreasing", "indptr", pointers_decreasing),
        ("truncated", "indices", truncate),
    ]
    for name, which, edit in cases:
        if name != only:
            continue
        d = damaged(name, which, edit)
        ops = {
            "open": lambda: sparsedisk.open(d),
            "matvec": lambda: sparsedisk.open(d) @ np.ones(sparsedisk.open(d).shape[1]),
            "rmatvec": lambda: sparsedisk.open(d).T @ np.ones(sparsedisk.open(d).shape[0]),
            "matmat": lambda: sparsedisk.open(d) @ np.ones((sparsedisk.open(d).shape[1], 4)),
            "threads2": lambda: sparsedisk.open(d, threads=2) @ np.ones(sparsedisk.open(d).shape[1]),
            "to_scipy": lambda: sparsedisk.open(d).to_scipy(),
            "bands": lambda: [b.toarray() for _, b in sparsedisk.open(d).bands()],
            "verify": lambda: sparsedisk.open(d).verify(),
            "transpose": lambda: sparsedisk.transpose(sparsedisk.open(d), work / (name + "-t")),
            "convert": lambda: sparsedisk.convert(sparsedisk.open(d), work / (name + "-c"), "csc"),
            "spgemm": lambda: sparsedisk.spgemm(sparsedisk.open(d), sparsedisk.open(src), work / (name + "-s")),
            "pagerank": lambda: sparsedisk.pagerank(sparsedisk.open(d)),
            "bfs": lambda: sparsedisk.bfs(sparsedisk.open(d), 0),
            "components": lambda: sparsedisk.components(sparsedisk.open(d)),
        }
        for op, call in ops.items():
            print("RUN", name, op, flush=True)
            try:
                call()
                outcome = "ok"
            except sparsedisk.Error as e:
                outcome = type(e).__name__
            except BaseException as e:  # a PanicException is a BaseException
                outcome = "FOREIGN " + type(e).__module__ + "." + type(e).__name__ + ": " + str(e)[:200]
            print(name, op, outcome, flush=True)
    print("survived", flush=True)
    """
)


@pytest.mark.parametrize("damage", ["index", "pointer", "decreasing", "truncated"])
def test_hostile_files_raise_never_crash(case_store, tmp_path, damage):
    """In a subprocess, so that a crash (segfault, abort) fails this test instead of the run: every
    operation on files with out-of-range indices, pointers past the end, decreasing pointers or a
    truncated index file either succeeds (verify would catch the damage) or raises a
    ``sparsedisk.Error``. "verify" must raise CorruptError for every one, and no operation may let a
    foreign exception (a Rust panic's PanicException) through."""
    built = case_store.get(Case((80, 80), "float64", "csr", density=0.2, segment_size="1K"))
    assert built.segments >= 2
    result = subprocess.run(
        [sys.executable, "-c", HOSTILE, str(built.path), str(tmp_path), damage],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not python/, whose source package has no compiled extension
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, (
        f"the process died (exit {result.returncode}) in: {lines[-1:] or 'nothing'}\n{result.stderr[-2000:]}"
    )
    assert lines[-1] == "survived"
    outcomes = [line.split(" ", 2) for line in lines[:-1] if not line.startswith("RUN ")]
    assert len(outcomes) == 14
    foreign = [" ".join(o) for o in outcomes if o[2].startswith("FOREIGN")]
    assert not foreign, "\n".join(foreign)
    for name, op, outcome in outcomes:
        if op == "verify":
            assert outcome == "CorruptError", f"{name}: verify gave {outcome}"
    # Reading the damaged segment must notice what would make it read outside the arrays (or return
    # a matrix with indices outside its shape), in the engine and in to_scipy/bands alike.
    silent = [f"{name}: {op}" for name, op, outcome in outcomes
              if op in ("matvec", "rmatvec", "matmat", "threads2", "to_scipy", "bands", "transpose", "convert",
                        "spgemm", "pagerank", "bfs", "components")
              and outcome == "ok"]
    assert not silent, "returned a result from a damaged file: " + ", ".join(silent)


# -- operands -------------------------------------------------------------------------------------


def test_wrong_vector_length(small):
    a, _ = small
    for bad in (np.ones(4), np.ones(6), np.ones((4, 2)), np.ones(0)):
        with pytest.raises(sparsedisk.InvalidInputError) as info:
            a @ bad
        assert isinstance(info.value, ValueError)
        assert "5" in str(info.value), str(info.value)  # names the length it needs
    with pytest.raises(ValueError):
        a.T @ np.ones(5)
    with pytest.raises(ValueError):
        a.rmatvec(np.ones(5))
    with pytest.raises(ValueError):
        np.ones(5) @ a
    with pytest.raises(ValueError):
        a.matmat(np.ones((6, 2)))
    with pytest.raises(ValueError):
        a.rmatmat(np.ones((5, 2)))


def test_refused_operands(small):
    a, _ = small
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        a @ (np.ones(5) + 1j)
    assert "complex" in str(info.value)
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        a @ np.ones((5, 2, 2))
    assert "3-D" in str(info.value)
    with pytest.raises(sparsedisk.InvalidInputError):
        np.ones((2, 2, 5)) @ a
    with pytest.raises(sparsedisk.InvalidInputError):
        a @ np.array(["a", "b", "c", "d", "e"])
    with pytest.raises(sparsedisk.InvalidInputError):
        a @ np.array([2**60 + 1, 0, 0, 0, 0], dtype=np.int64)  # not exact in float64
    with pytest.raises(sparsedisk.InvalidInputError):
        a @ np.float64(3.0)  # 0-D
    with pytest.raises(sparsedisk.InvalidInputError):
        a.matmat(np.ones(5))  # matmat wants 2-D
    with pytest.raises(sparsedisk.InvalidInputError):
        a @ a  # two matrices: spgemm
    with pytest.raises(TypeError):
        a * np.ones(5)
    with pytest.raises(TypeError):
        len(a)
    with pytest.raises(sparsedisk.InvalidInputError):
        a.dot(np.ones(5), threads=0)
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.open(a.path, threads=-1)


def test_accepted_operands(small):
    """Strided views, integers, float32 and bool convert losslessly and multiply correctly."""
    a, m = small
    base = np.arange(10, dtype=np.float64)
    strided = base[1::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(a @ strided, m @ strided.copy())
    np.testing.assert_array_equal(a @ np.arange(5), m @ np.arange(5.0))
    np.testing.assert_array_equal(a @ np.arange(5, dtype=np.uint8), m @ np.arange(5.0))
    np.testing.assert_array_equal(a @ np.arange(5, dtype=np.float32), m @ np.arange(5.0))
    negative_stride = np.arange(6.0)[::-1]
    np.testing.assert_array_equal(a.T @ negative_stride, m.T @ negative_stride.copy())
    x = np.array([1.0, np.nan, 0, 0, 0])
    y = a @ x
    assert np.isnan(y[2]) and y[0] == 1.0  # NaN propagates like scipy's
    assert_product(a @ np.ones((5, 3), order="F")[:, ::2], m, np.ones((5, 2)), exact=True)


# -- builder --------------------------------------------------------------------------------------


def test_builder_bad_input(tmp_path):
    path = tmp_path / "b"
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0, 3], [0, 1], [1.0, 2.0])  # row 3 is outside 3 rows
    assert "3" in str(info.value)
    assert not (path / "manifest.json").exists()
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0], [7], [1.0])
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0, -1], [0, 1], [1.0, 2.0])
    assert "-1" in str(info.value)
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0, 1], [0], [1.0, 2.0])
    assert "length" in str(info.value)
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0, 1], [0, 1], [1.0])
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0.5], [1], [1.0])  # float indices
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add(np.zeros((1, 1), int), np.zeros((1, 1), int), np.ones((1, 1)))
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3), dtype=np.int64) as b:
            b.add([0], [0], [1.5])  # not an integer
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0], [0], np.array([2**60 + 1]))  # not exact in float64
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3), dtype="pattern") as b:
            b.add([0], [0], [1.0])  # a pattern matrix takes no values
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0], [0])  # values missing
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(path, (3, 3)) as b:
            b.add([0], [0], [1 + 2j])
    assert not (path / "manifest.json").exists()
    assert not path.exists() or not any(path.iterdir()), os.listdir(path)


@pytest.mark.parametrize(
    "options",
    [
        {"layout": "coo"},
        {"duplicates": "average"},
        {"dtype": np.complex128},
        {"dtype": "int32"},
        {"dtype": "text"},
        {"threads": 0},
        {"memory": "lots"},
    ],
)
def test_builder_unknown_options(tmp_path, options):
    with pytest.raises((sparsedisk.InvalidInputError, TypeError)) as info:
        sparsedisk.builder(tmp_path / "b", (3, 3), **options)
    assert str(info.value)
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_builder_negative_shape(tmp_path):
    with pytest.raises((sparsedisk.InvalidInputError, OverflowError, ValueError)):
        sparsedisk.builder(tmp_path / "b", (-1, 3))


@pytest.mark.parametrize("memory", ["lots", "12Q", "", "-5M", "1.5.2G", "G", "2 GG"])
def test_bad_size_strings(tmp_path, memory):
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        sparsedisk.builder(tmp_path / "b", (3, 3), memory=memory)
    assert isinstance(info.value, ValueError)
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.import_file(tmp_path / "x.mtx", tmp_path / "i", memory=memory)


def test_bad_size_values(tmp_path):
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.builder(tmp_path / "b", (3, 3), memory=-1)
    with pytest.raises(TypeError):
        sparsedisk.builder(tmp_path / "b", (3, 3), memory=1.5)
    with pytest.raises(TypeError):
        sparsedisk.builder(tmp_path / "b", (3, 3), memory=True)
    # Good spellings are accepted.
    for good in ("512M", "512 MiB", "1G", 200 << 20):
        with sparsedisk.builder(tmp_path / f"ok{good}".replace(" ", ""), (2, 2), memory=good) as b:
            b.add([0], [0], [1.0])


# -- unknown option values elsewhere --------------------------------------------------------------


def test_unknown_option_values(small, tmp_path):
    a, _ = small
    src = tmp_path / "s.mtx"
    src.write_text("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n")
    for options in ({"format": "xml"}, {"layout": "rows"}, {"value_type": "complex"}, {"duplicates": "mean"},
                    {"index_base": 2}):
        with pytest.raises(sparsedisk.InvalidInputError):
            sparsedisk.import_file(src, tmp_path / "i", **options)
        assert not (tmp_path / "i" / "manifest.json").exists()
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.transpose(a, tmp_path / "t", layout="coo")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.convert(a, tmp_path / "c", "dense")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.from_scipy(sp.csr_array(np.eye(2)), tmp_path / "f", layout="coo")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.spgemm(a, a.T, tmp_path / "g")  # a view is refused
    with pytest.raises(TypeError):
        sparsedisk.import_file(src, tmp_path / "i", colour="blue")


def test_import_errors(tmp_path):
    missing = tmp_path / "missing.mtx"
    with pytest.raises(sparsedisk.NotFoundError) as info:
        sparsedisk.import_file(missing, tmp_path / "m")
    assert isinstance(info.value, FileNotFoundError)
    bad = tmp_path / "bad.mtx"
    bad.write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n2 2 abc\n")
    with pytest.raises(sparsedisk.ParseError) as info:
        sparsedisk.import_file(bad, tmp_path / "b")
    assert isinstance(info.value, ValueError)
    assert "bad.mtx:4" in str(info.value), str(info.value)
    assert "abc" in str(info.value)
    assert not (tmp_path / "b" / "manifest.json").exists()
    out_of_range = tmp_path / "oor.mtx"
    out_of_range.write_text("%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1.0\n")
    with pytest.raises(sparsedisk.Error):
        sparsedisk.import_file(out_of_range, tmp_path / "o")
    complex_mtx = tmp_path / "c.mtx"
    complex_mtx.write_text("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1.0 2.0\n")
    with pytest.raises(sparsedisk.Error):
        sparsedisk.import_file(complex_mtx, tmp_path / "c")


# -- existing outputs -----------------------------------------------------------------------------


def test_writing_over_an_existing_matrix(small, tmp_path):
    a, m = small
    target = pathlib.Path(a.path)
    other = sp.csr_array(np.eye(6, 5) * 2)
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        sparsedisk.from_scipy(other, target)
    assert "overwrite" in str(info.value) or "exists" in str(info.value) or "already" in str(info.value)
    np.testing.assert_array_equal(sparsedisk.open(target).toarray(), m.toarray())  # unchanged
    with pytest.raises(sparsedisk.InvalidInputError):
        with sparsedisk.builder(target, (6, 5)) as b:
            b.add([0], [0], [1.0])
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.transpose(a, target)
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.convert(a, target, "csc")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.add(a, a, target)
    src = tmp_path / "s.mtx"
    src.write_text("%%MatrixMarket matrix coordinate real general\n6 5 1\n1 1 1\n")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.import_file(src, target)
    np.testing.assert_array_equal(sparsedisk.open(target).toarray(), m.toarray())  # still unchanged
    # With overwrite=True the new matrix replaces it.
    b = sparsedisk.from_scipy(other, tmp_path / "copy")
    sparsedisk.from_scipy(other, target, overwrite=True)
    np.testing.assert_array_equal(sparsedisk.open(target).toarray(), other.toarray())
    sparsedisk.import_file(src, target, overwrite=True)
    assert sparsedisk.open(target).nnz == 1
    sparsedisk.add(b, b, target, overwrite=True)
    np.testing.assert_array_equal(sparsedisk.open(target).toarray(), 2 * other.toarray())


# -- entries outside a matrix with an empty dimension ---------------------------------------------


@pytest.mark.parametrize("shape", [(5, 0), (0, 5), (0, 0)])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_builder_entry_outside_an_empty_dimension(tmp_path, shape, layout):
    """Every entry lies outside a matrix with no rows or no columns: the builder must refuse it
    (naming the entry), never publish a matrix that fails verify."""
    path = tmp_path / "b"
    with pytest.raises(sparsedisk.InvalidInputError) as info:
        with sparsedisk.builder(path, shape, layout=layout) as b:
            b.add([0], [0], [1.0])
    assert "(0, 0)" in str(info.value), str(info.value)
    assert not (path / "manifest.json").exists()


def test_import_entry_outside_an_empty_dimension(tmp_path):
    edges = tmp_path / "e.txt"
    edges.write_text("1 1\n")
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.import_file(edges, tmp_path / "m", shape=(5, 0))
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_io_errors_are_oserrors(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a directory")
    m = sp.csr_array(np.eye(2))
    with pytest.raises(sparsedisk.IoError) as info:
        sparsedisk.from_scipy(m, blocker / "sub")
    assert isinstance(info.value, OSError)
    assert "file.txt" in str(info.value)
    with pytest.raises(OSError):
        with sparsedisk.builder(blocker / "sub", (2, 2)) as b:
            b.add([0], [0], [1.0])
    with pytest.raises(sparsedisk.InvalidInputError):
        sparsedisk.from_scipy(m, blocker)  # exists and is not a directory
    assert blocker.read_text() == "a file, not a directory"
