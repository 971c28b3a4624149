#!/usr/bin/env python3
"""baselines.py: what a user would run instead of sparsedisk, timed for `sparsedisk bench`.

The harness writes each matrix's CSR arrays as raw little-endian files (RAW: indptr.i32 or .i64 as
shape.json names it, indices.i32, data.f64, shape.json); this script loads them into scipy (untimed) and times the same operations
sparsedisk's harness times. Every subcommand prints one JSON object on stdout, with the seconds of
every repeated run in "samples" (run order).

  baselines.py versions
  baselines.py spmv RAW [--repeat R]              scipy CSR A @ x (x = ones)
  baselines.py spmm RAW --k K [--repeat R]        scipy CSR A @ X (X: cols x K, uniform random)
  baselines.py spgemm RAW [--repeat R]            scipy CSR A @ A (the product held in memory)
  baselines.py pagerank RAW [--tol T] [--repeat R]   power iteration, sparsedisk's definition
  baselines.py cg RAW [--tol T] [--repeat R]      scipy.sparse.linalg.cg, b = ones, iterations counted
  baselines.py memmap-spmv RAW [--repeat R]       numpy.memmap arrays + scipy CSR A @ x: the matrix
                                                  stays on disk and the kernel pages it in (run cold:
                                                  the first sample is the cold product)
  baselines.py read FILE.mtx [--repeat R]         fast_matrix_market.read_coo (all cores)

Needs numpy and scipy; `read` needs fast_matrix_market.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp


def emit(**kw):
    kw["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(kw), flush=True)


def timed(f, repeat, warm_up=True):
    """Seconds of `repeat` runs of f, after one untimed run (as the harness warms its own kernels up)
    unless `warm_up` is off (a cold measurement, where the first run is the figure)."""
    samples, out = [], None
    if warm_up:
        f()
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = f()
        samples.append(time.perf_counter() - t)
    return samples, out


def shape_of(raw):
    with open(os.path.join(raw, "shape.json")) as f:
        return json.load(f)


def load(raw, mmap=False):
    s = shape_of(raw)
    get = (lambda n, t: np.memmap(os.path.join(raw, n), dtype=t, mode="r")) if mmap else \
        (lambda n, t: np.fromfile(os.path.join(raw, n), dtype=t))
    name = s.get("indptr", "indptr.i64")
    ip = get(name, np.int32 if name.endswith("i32") else np.int64)
    ix, d = get("indices.i32", np.int32), get("data.f64", np.float64)
    # copy=False keeps the memmaps: scipy reads through them, page by page.
    return sp.csr_matrix((d, ix, ip), shape=(s["rows"], s["cols"]), copy=False), s


def cmd_versions(_):
    try:
        import fast_matrix_market as fmm
        fv = fmm.__version__
    except ImportError:
        fv = None
    emit(python=sys.version.split()[0], numpy=np.__version__, scipy=scipy.__version__, fast_matrix_market=fv)


def cmd_spmv(a):
    m, _ = load(a.raw)
    x = np.ones(m.shape[1])
    samples, _ = timed(lambda: m @ x, a.repeat)
    emit(tool="scipy", samples=samples, nnz=int(m.nnz))


def cmd_spmm(a):
    m, _ = load(a.raw)
    x = np.random.default_rng(7).random((m.shape[1], a.k))
    samples, _ = timed(lambda: m @ x, a.repeat)
    emit(tool="scipy", samples=samples, nnz=int(m.nnz), k=a.k)


def cmd_spgemm(a):
    m, _ = load(a.raw)
    samples, c = timed(lambda: m @ m, a.repeat)
    emit(tool="scipy", samples=samples, nnz=int(m.nnz), nnz_c=int(c.nnz))


def pagerank(m, damping, tol, max_iter=1000):
    """Entry (i, j) is an edge i -> j weighted by its value; rows normalised by their sums; dangling
    vertices spread their rank uniformly; uniform teleport; stop when the L1 change is below tol."""
    n = m.shape[0]
    out = np.asarray(m.sum(axis=1)).ravel()
    dangling = out == 0
    inv = np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out))
    mt = m.T.tocsr()
    r = np.full(n, 1.0 / n)
    for it in range(1, max_iter + 1):
        new = damping * (mt @ (r * inv) + r[dangling].sum() / n) + (1 - damping) / n
        err = np.abs(new - r).sum()
        r = new
        if err < tol:
            return it
    return max_iter


def cmd_pagerank(a):
    m, _ = load(a.raw)
    iterations = []
    samples, _ = timed(lambda: iterations.append(pagerank(m, a.damping, a.tol)), a.repeat)
    emit(tool="scipy", samples=samples, iterations=iterations[-1], nnz=int(m.nnz))


def cmd_cg(a):
    import scipy.sparse.linalg as spla
    m, _ = load(a.raw)
    b = np.ones(m.shape[0])
    counts = []

    def solve():
        count = [0]

        def tick(_):
            count[0] += 1
        x, info = spla.cg(m, b, rtol=a.tol, maxiter=100000, callback=tick)
        counts.append(count[0])
        return x, info
    samples, (x, info) = timed(solve, a.repeat)
    relres = float(np.linalg.norm(b - m @ x) / np.linalg.norm(b))
    emit(tool="scipy", samples=samples, iterations=counts[-1], info=int(info), residual=relres, nnz=int(m.nnz))


def cmd_memmap_spmv(a):
    m, s = load(a.raw, mmap=True)
    x = np.ones(s["cols"])
    samples, _ = timed(lambda: m @ x, a.repeat, warm_up=False)
    emit(tool="numpy.memmap+scipy", samples=samples, nnz=s["nnz"])


def cmd_read(a):
    import fast_matrix_market as fmm
    samples, out = timed(lambda: fmm.read_coo(a.file, parallelism=os.cpu_count()), a.repeat, warm_up=False)
    (d, _), _ = out
    emit(tool="fast_matrix_market", samples=samples, nnz=int(len(d)), bytes=os.path.getsize(a.file))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="cmd", required=True)
    s.add_parser("versions")
    for name in ["spmv", "spmm", "spgemm", "pagerank", "cg", "memmap-spmv"]:
        c = s.add_parser(name)
        c.add_argument("raw")
        c.add_argument("--repeat", type=int, default=3)
        c.add_argument("--k", type=int, default=8)
        c.add_argument("--tol", type=float, default=1e-8)
        c.add_argument("--damping", type=float, default=0.85)
    r = s.add_parser("read")
    r.add_argument("file")
    r.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    {"versions": cmd_versions, "spmv": cmd_spmv, "spmm": cmd_spmm, "spgemm": cmd_spgemm,
     "pagerank": cmd_pagerank, "cg": cmd_cg, "memmap-spmv": cmd_memmap_spmv, "read": cmd_read}[a.cmd](a)


if __name__ == "__main__":
    main()
