#!/usr/bin/env python3
"""Benchmarks of the sparsedisk Python package against scipy and against the same kernels timed
inside Rust, in one run on the same matrices (issue #16, "What must be shown"):

* SpMV ``A @ x`` on a 2-D Laplacian of at least 20 M nonzeros and an R-MAT graph of scale 20
  (both generated with ``sparsedisk generate``): scipy's ``S @ x`` (one thread: scipy has none),
  sparsedisk's ``A @ x`` (a new array per call) and ``A.matvec(x, out=y)`` (into one array) on 1 and
  2 threads, and ``sparsedisk --threads T spmv DIR --x x.npy --repeat R --json`` (the same kernel
  timed inside Rust: its ``ns_per_nonzero``). Rounds alternate the variants (the order rotates each
  round); each round's figure is the median of ``--reps`` calls; the report gives the median over
  rounds, the min - max spread, and ratios paired within each round.
* The builder's triplet rate: the same triplets fed to ``sparsedisk.builder(..., memory=B)`` in
  chunks of 1 M, and written as Matrix Market text for ``sparsedisk import FILE -o DIR --memory B``,
  alternating.
* A triplet stream 4x the builder's budget, generated in chunks by a child process (distinct
  entries by construction) that runs under ``../shared/tools/memcap BUDGET+512M``, after the output
  and the package's files are dropped from the page cache (``../shared/tools/evict``): peak memory
  of the cgroup, whether the cap was reached, and the result checked (nnz, verify, row sums).

Standard library, numpy and scipy only. Prints a Markdown report (also written to ``--out``)::

    python python/benches/bench.py --out report.md
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import scipy
import scipy.io
import scipy.sparse as sp

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED_TOOLS = REPO.parent / "shared" / "tools"
MiB = 1 << 20
#: The lines between which --splice puts the report.
BEGIN, END = "<!-- python-bench:begin -->", "<!-- python-bench:end -->"


# ---------------------------------------------------------------------------------------- helpers


def cli_path(given: Optional[str]) -> str:
    for p in (given, os.environ.get("SPARSEDISK_BIN"), REPO / "target" / "release" / "sparsedisk"):
        if p and pathlib.Path(p).is_file():
            return str(p)
    found = shutil.which("sparsedisk")
    if not found:
        sys.exit("bench.py: no sparsedisk binary: pass --cli, set SPARSEDISK_BIN or build target/release/sparsedisk")
    return found


def run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"bench.py: {' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr}")
    return p


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in {text!r}")


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(median(xs))} ({fmt.format(min(xs))} - {fmt.format(max(xs))})"


def time_calls(f: Callable[[], object], reps: int) -> List[float]:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return ts


def machine_facts() -> Dict[str, str]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    except OSError:
        pass
    import sparsedisk

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sparsedisk": getattr(sparsedisk, "__version__", None) or sparsedisk._native.__version__,
    }


def wait_for_quiet(max_load: float, max_wait: float) -> str:
    """Waits (up to max_wait seconds) for the 1-minute load to fall below max_load; says what it saw."""
    start = time.time()
    first = os.getloadavg()
    while os.getloadavg()[0] > max_load and time.time() - start < max_wait:
        time.sleep(5)
    now = os.getloadavg()
    waited = time.time() - start
    text = f"{first[0]:.2f} / {first[1]:.2f} / {first[2]:.2f} (1 / 5 / 15 min)"
    if waited >= 5:
        text += f"; waited {waited:.0f} s for it to fall below {max_load}: {now[0]:.2f} at the start of the run"
    return text


# ---------------------------------------------------------------------------------------- SpMV


def scipy_anchor(a) -> sp.csr_array:
    """The matrix in scipy, as scipy users hold it (int32 indices when they fit)."""
    s = a.to_scipy(max_bytes=None)
    return sp.csr_array(s) if not isinstance(s, sp.csr_array) else s


def bench_spmv(name: str, path: pathlib.Path, cli: str, rounds: int, reps: int, data: pathlib.Path, log) -> dict:
    import sparsedisk

    a = sparsedisk.open(path)
    s = scipy_anchor(a)
    rows, cols = a.shape
    nnz = a.nnz
    rng = np.random.default_rng(42)
    x = rng.random(cols)
    xfile = data / f"{name}-x.npy"
    np.save(xfile, x)
    y = np.empty(rows)
    # Correctness first, and the warm-up (the operator is prepared on the first product).
    ref = s @ x
    for t in (1, 2):
        got = a.dot(x, threads=t)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
        assert a.matvec(x, threads=t, out=y) is y
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)

    def at(t):
        view = a.T.T  # the same native matrix (and operator), with its own threads setting
        view.threads = t
        return lambda: view @ x

    def into(t):
        return lambda: a.matvec(x, threads=t, out=y)

    def rust(t):
        def go():
            p = run([cli, "-q", "--threads", t, "spmv", path, "--x", xfile, "--repeat", reps, "--json"])
            j = last_json(p.stdout)
            assert j["nnz"] == nnz and j["threads"] == t, j
            return j["ns_per_nonzero"]

        return go

    variants = {"scipy": ("py", lambda: s @ x)}
    for t in (1, 2):
        variants[f"@ {t}t"] = ("py", at(t))
        variants[f"out= {t}t"] = ("py", into(t))
        variants[f"rust {t}t"] = ("cli", rust(t))
    names = list(variants)
    per_round: Dict[str, List[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            kind, f = variants[k]
            if kind == "py":
                per_round[k].append(median(time_calls(f, reps)) * 1e9 / nnz)
            else:
                per_round[k].append(f())
        log(f"  {name} round {r + 1}/{rounds}: " + ", ".join(f"{k} {per_round[k][-1]:.2f}" for k in names))
    a.threads = None
    return {"name": name, "rows": rows, "cols": cols, "nnz": nnz, "segments": a._native.segment_count, "ns": per_round}


def bench_overhead(cli: str, data: pathlib.Path, rounds: int) -> Dict[str, List[float]]:
    """The fixed cost of one call, on a matrix too small to matter (8 x 8 grid, 288 nonzeros): what the
    binding adds to every product (argument checks, GIL release, pool entry), in microseconds."""
    import sparsedisk

    path = data / "laplace2d-8"
    if not (path / "manifest.json").exists():
        run([cli, "-q", "generate", "laplace2d", "--n", 8, "-o", path, "--force"])
    a = sparsedisk.open(path)
    s = scipy_anchor(a)
    x = np.ones(a.shape[1])
    y = np.empty(a.shape[0])
    a1 = a.T.T
    a1.threads = 1
    calls = {
        "scipy `S @ x`": lambda: s @ x,
        "native `matvec(x, False, None, y)` (threads=None: runs on the calling thread, over the global pool)": lambda: a._native.matvec(x, False, None, y),
        "native `matvec(x, False, 1, y)` (threads=1: handed to a 1-thread pool and back)": lambda: a._native.matvec(x, False, 1, y),
        "`A.matvec(x, threads=1, out=y)`": lambda: a.matvec(x, threads=1, out=y),
        "`A @ x`, 1 thread": lambda: a1 @ x,
        "`A.matvec(x, threads=2, out=y)`": lambda: a.matvec(x, threads=2, out=y),
    }
    for f in calls.values():
        f()
    per: Dict[str, List[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for k, f in calls.items():
            n = 5000
            t = time.perf_counter()
            for _ in range(n):
                f()
            per[k].append((time.perf_counter() - t) / n * 1e6)
    return per


def spmv_table(results: List[dict]) -> List[str]:
    out = [
        "| matrix | variant | ns per nonzero, median (min - max) over rounds | scipy / this (paired, above 1: faster) | this / Rust kernel, same threads (paired) |",
        "|---|---|---|---|---|",
    ]
    for res in results:
        ns = res["ns"]
        label = f"{res['name']} ({res['rows']:,} rows, {res['nnz'] / 1e6:.1f} M nnz)"
        for k, v in ns.items():
            vs_scipy = "" if k == "scipy" else spread([a / b for a, b in zip(ns["scipy"], v)], "{:.2f}x")
            t = k.split()[-1]
            vs_rust = ""
            if not k.startswith(("scipy", "rust")):
                vs_rust = spread([a / b for a, b in zip(v, ns[f"rust {t}"])], "{:.3f}")
            threads_text = "1 thread" if t == "1t" else f"{t[:-1]} threads"
            what = {
                "scipy": "scipy `S @ x` (1 thread)",
                "@": f"sparsedisk `A @ x`, {threads_text}",
                "out=": f"sparsedisk `A.matvec(x, out=y)`, {threads_text}",
                "rust": f"Rust kernel (`sparsedisk --threads {t[:-1]} spmv --json`)",
            }[k.split()[0]]
            out.append(f"| {label} | {what} | {spread(v)} | {vs_scipy} | {vs_rust} |")
            label = ""
    return out


# ---------------------------------------------------------------------------------------- builder


def bench_builder(cli: str, data: pathlib.Path, count: int, n: int, memory: str, rounds: int, log) -> dict:
    import sparsedisk

    rng = np.random.default_rng(7)
    log(f"  generating {count:,} uniform random triplets of a {n:,} x {n:,} matrix")
    rows = rng.integers(0, n, count, dtype=np.int64)
    cols = rng.integers(0, n, count, dtype=np.int64)
    vals = rng.random(count)
    mtx = data / "triplets.mtx"
    t = time.perf_counter()
    scipy.io.mmwrite(mtx, sp.coo_array((vals, (rows, cols)), shape=(n, n)))
    log(f"  wrote {mtx} ({mtx.stat().st_size / MiB:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    chunk = 1_000_000
    py_rate, cli_rate, cli_inner = [], [], []
    nnz = {}

    def python_build():
        out = data / "built-py"
        t = time.perf_counter()
        with sparsedisk.builder(out, (n, n), memory=memory, overwrite=True) as b:
            for s in range(0, count, chunk):
                b.add(rows[s : s + chunk], cols[s : s + chunk], vals[s : s + chunk])
        dt = time.perf_counter() - t
        nnz["python"] = b.matrix.nnz
        return dt

    def cli_import():
        out = data / "built-cli"
        t = time.perf_counter()
        p = run([cli, "-q", "import", mtx, "-o", out, "--memory", memory, "--force", "--json"])
        dt = time.perf_counter() - t
        j = last_json(p.stdout)
        nnz["cli"] = j["nnz"]
        cli_inner.append(j["triplets_per_s"])
        return dt

    for r in range(rounds):
        steps = [("python", python_build), ("cli", cli_import)]
        if r % 2:
            steps.reverse()
        for which, f in steps:
            dt = f()
            (py_rate if which == "python" else cli_rate).append(count / dt)
        log(f"  builder round {r + 1}/{rounds}: builder {py_rate[-1] / 1e6:.2f} M/s, import {cli_rate[-1] / 1e6:.2f} M/s")
    assert nnz["python"] == nnz["cli"], nnz
    mtx_bytes = mtx.stat().st_size
    mtx.unlink()
    shutil.rmtree(data / "built-py", ignore_errors=True)
    shutil.rmtree(data / "built-cli", ignore_errors=True)
    return {
        "count": count,
        "n": n,
        "nnz": nnz["python"],
        "memory": memory,
        "mtx_bytes": mtx_bytes,
        "python": py_rate,
        "cli": cli_rate,
        "cli_inner": cli_inner,
    }


# ---------------------------------------------------------------------------------------- memcap

#: Odd multiplier of the bijection k -> (k * MULT) mod 2^bits that scatters the stream's entries.
MULT = 0x9E3779B97F4A7C15


def stream_chunk(s: int, e: int, bits: int, col_bits: int):
    k = np.arange(s, e, dtype=np.uint64)
    with np.errstate(over="ignore"):
        idx = (k * np.uint64(MULT)) & np.uint64((1 << bits) - 1)
    rows = (idx >> np.uint64(col_bits)).astype(np.int64)
    cols = (idx & np.uint64((1 << col_bits) - 1)).astype(np.int64)
    vals = (k % np.uint64(8)).astype(np.float64) + 1.0
    return rows, cols, vals


def stream_shape(count: int):
    """(bits, col_bits, rows, cols): k -> (k * MULT) mod 2^bits is a bijection of [0, 2^bits), so the
    first `count` positions are distinct; 12 bits more than `count` needs spread them over a matrix
    about 4096 times larger than the stream (a sparse one), split into row and column bits."""
    bits = max(2, int(count - 1).bit_length()) + 12
    col_bits = bits // 2
    return bits, col_bits, 1 << (bits - col_bits), 1 << col_bits


def memcap_child(args) -> None:
    """Runs inside the memory cap: the stream, in chunks, into the builder."""
    import sparsedisk

    count = args.count
    bits, col_bits, nrows, ncols = stream_shape(count)
    t = time.perf_counter()
    with sparsedisk.builder(args.path, (nrows, ncols), memory=args.memory, overwrite=True) as b:
        for s in range(0, count, args.chunk):
            b.add(*stream_chunk(s, min(count, s + args.chunk), bits, col_bits))
    dt = time.perf_counter() - t
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": dt, "nnz": b.matrix.nnz, "peak_rss": rss}), flush=True)


def bench_memcap(data: pathlib.Path, budget: str, count: int, chunk: int, log) -> dict:
    import sparsedisk

    budget_bytes = sparsedisk._native.parse_size(budget)
    cap_bytes = budget_bytes + 512 * MiB
    out = data / "memcap-built"
    shutil.rmtree(out, ignore_errors=True)
    memcap = SHARED_TOOLS / "memcap"
    evict = SHARED_TOOLS / "evict"
    package = pathlib.Path(sparsedisk.__file__).parent
    if evict.exists():
        subprocess.run([sys.executable, str(evict), str(package), str(data)], capture_output=True)
    cmd = [str(memcap), f"{cap_bytes // MiB}M", sys.executable, __file__, "memcap-child", "--path", str(out),
           "--memory", str(budget_bytes), "--count", str(count), "--chunk", str(chunk)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("memcap:")]
    facts = dict(kv.split("=", 1) for kv in line[-1].split()[1:]) if line else {}
    res = {"budget": budget_bytes, "cap": cap_bytes, "count": count, "stream_bytes": 24 * count, "rc": p.returncode,
           "wall": wall, "memcap": facts, "stderr": p.stderr[-2000:] if p.returncode else ""}
    if p.returncode != 0:
        return res
    child = last_json(p.stdout)
    res["seconds"] = child["seconds"]
    res["peak_rss"] = child["peak_rss"]
    # The check, outside the cap: every entry distinct by construction, so nnz is the count; the
    # full verify; and row sums against the stream's, recomputed chunk by chunk.
    a = sparsedisk.open(out)
    bits, col_bits, nrows, ncols = stream_shape(count)
    expected = np.zeros(nrows)
    for s in range(0, count, chunk):
        r, _, v = stream_chunk(s, min(count, s + chunk), bits, col_bits)
        expected += np.bincount(r, v, minlength=nrows)
    got = a @ np.ones(ncols)
    res["nnz"] = a.nnz
    res["verify"] = a.verify()
    res["row_sums_equal"] = bool(np.array_equal(got, expected))
    res["ok"] = a.nnz == count and res["row_sums_equal"]
    shutil.rmtree(out, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command")
    child = sub.add_parser("memcap-child", help=argparse.SUPPRESS)
    child.add_argument("--path", required=True)
    child.add_argument("--memory", type=int, required=True)
    child.add_argument("--count", type=int, required=True)
    child.add_argument("--chunk", type=int, required=True)
    ap.add_argument("--data", help="directory for the generated matrices (default: a temporary one, removed at the end)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--splice", metavar="FILE", help=f"also put the report into FILE between the lines {BEGIN} and {END}")
    ap.add_argument("--cli", help="the sparsedisk binary (default: $SPARSEDISK_BIN, else target/release/sparsedisk)")
    ap.add_argument("--laplace-n", type=int, default=2001, help="grid side of the 2-D Laplacian (5 N^2 - 4 N nonzeros)")
    ap.add_argument("--rmat-scale", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of the SpMV variants")
    ap.add_argument("--reps", type=int, default=15, help="products per variant per round (the round takes their median)")
    ap.add_argument("--triplets", type=int, default=50_000_000, help="triplets of the builder / import comparison")
    ap.add_argument("--builder-n", type=int, default=1 << 22, help="rows and columns of that matrix")
    ap.add_argument("--builder-memory", default="1G", help="memory budget of the builder and of import")
    ap.add_argument("--builder-rounds", type=int, default=3)
    ap.add_argument("--memcap-budget", default="256M", help="the builder's budget in the memcap run (cap: budget + 512M)")
    ap.add_argument("--max-load", type=float, default=0.7, help="wait for the 1-minute load to fall below this")
    ap.add_argument("--max-wait", type=float, default=120)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: spmv, builder, memcap")
    args = ap.parse_args()
    if args.command == "memcap-child":
        return memcap_child(args)

    cli = cli_path(args.cli)
    skip = set(filter(None, args.skip.split(",")))
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    load = wait_for_quiet(args.max_load, args.max_wait)
    facts = machine_facts()
    temporary = args.data is None
    data = pathlib.Path(tempfile.mkdtemp(prefix="sparsedisk-bench-") if temporary else args.data)
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: List[str] = []
    try:
        spmv_results = []
        overhead = None
        if "spmv" not in skip:
            n = args.laplace_n
            lap, rmat = data / f"laplace2d-{n}", data / f"rmat-{args.rmat_scale}"
            log(f"generating {lap.name} and {rmat.name}")
            if not (lap / "manifest.json").exists():
                run([cli, "-q", "generate", "laplace2d", "--n", n, "-o", lap, "--force"])
            if not (rmat / "manifest.json").exists():
                run([cli, "-q", "generate", "rmat", "--scale", args.rmat_scale, "--edge-factor", 16, "-o", rmat, "--force"])
            overhead = bench_overhead(cli, data, args.rounds)
            for name, path in ((f"2-D Laplacian N = {n}", lap), (f"R-MAT scale {args.rmat_scale}", rmat)):
                log(f"SpMV on {name}")
                spmv_results.append(bench_spmv(name, path, cli, args.rounds, args.reps, data, log))
        builder = None
        if "builder" not in skip:
            log("builder against import")
            builder = bench_builder(cli, data, args.triplets, args.builder_n, args.builder_memory, args.builder_rounds, log)
        cap = None
        if "memcap" not in skip:
            import sparsedisk

            count = 4 * sparsedisk._native.parse_size(args.memcap_budget) // 24
            log(f"memcap: {count:,} triplets into a builder of budget {args.memcap_budget}")
            cap = bench_memcap(data, args.memcap_budget, count, 1_000_000, log)
    finally:
        if temporary:
            shutil.rmtree(data, ignore_errors=True)

    command = "python python/benches/bench.py " + " ".join(sys.argv[1:])
    report += [
        f"Generated by `{command.strip()}` on {started}, in {time.perf_counter() - t0:.0f} s.",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram']} RAM, Linux {facts['kernel']}; "
        f"Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}, sparsedisk {facts['sparsedisk']}. "
        f"Load at start: {load}; at the end: {os.getloadavg()[0]:.2f}.",
        "",
    ]
    if spmv_results:
        report += [
            f"#### SpMV `A @ x` from Python, scipy and the Rust kernel, same matrices, same x",
            "",
            f"{args.rounds} alternating rounds (the order of the variants rotates each round); in each round a "
            f"variant's figure is the median of {args.reps} products (the Rust kernel: `--repeat {args.reps}`, "
            "its `ns_per_nonzero`, in a fresh process each round). Ratios are paired within each round: "
            "median (min - max) over rounds. Files in the page cache; the first product of each process "
            "(operator preparation) is not timed.",
            "",
        ]
        report += spmv_table(spmv_results)
        report.append("")
    if overhead:
        report += [
            "Fixed cost of one call (a 64 x 64 Laplacian, 288 nonzeros: the call, not the product), "
            f"microseconds, median (min - max) of {args.rounds} batches of 5000 calls:",
            "",
            "| call | us per call |",
            "|---|---|",
        ]
        report += [f"| {k} | {spread(v)} |" for k, v in overhead.items()]
        report.append("")
    if builder:
        b = builder
        ratio = [p / c for p, c in zip(b["python"], b["cli"])]
        report += [
            "#### Builder from Python against `sparsedisk import`, same triplets",
            "",
            f"{b['count'] / 1e6:.0f} M uniform random triplets (float64 values) of a {b['n']:,} x {b['n']:,} matrix "
            f"({b['nnz']:,} entries after summing duplicates), budget {b['memory']} for both, all cores; "
            f"{args.builder_rounds} alternating rounds. The builder gets numpy chunks of 1 M triplets "
            f"(`sparsedisk.builder(..., memory=\"{b['memory']}\")`, timed from creation to finish); import reads the "
            f"same triplets as Matrix Market text ({b['mtx_bytes'] / MiB:.0f} MiB, written by scipy.io.mmwrite, "
            "in the page cache), timed around the command.",
            "",
            "| path | M triplets/s, median (min - max) |",
            "|---|---|",
            f"| `sparsedisk.builder`, chunks of 1 M from numpy | {spread([r / 1e6 for r in b['python']])} |",
            f"| `sparsedisk import FILE.mtx --memory {b['memory']}` (wall clock of the command) | {spread([r / 1e6 for r in b['cli']])} |",
            f"| (the same, as import reports it: `triplets_per_s`) | {spread([r / 1e6 for r in b['cli_inner']])} |",
            f"| builder / import (paired) | {spread(ratio, '{:.2f}x')} |",
            "",
        ]
    if cap:
        c = cap
        m = c["memcap"]
        peak = int(m.get("peak", "0")) if m.get("peak", "?").isdigit() else None
        hit = "?"
        if peak is not None:
            hit = "yes" if peak >= c["cap"] else "no"
        report += [
            "#### A triplet stream 4x the builder's budget, under a memory cap",
            "",
            f"{c['count']:,} distinct triplets ({c['stream_bytes'] / MiB:.0f} MiB at 24 bytes each, "
            f"{c['stream_bytes'] / c['budget']:.1f}x the budget) generated in chunks of 1 M by a child process "
            f"(`bench.py memcap-child`) and fed to `sparsedisk.builder(..., memory={c['budget'] // MiB}M)` under "
            f"`../shared/tools/memcap {c['cap'] // MiB}M` (budget + 512 MiB; the cgroup counts anonymous memory "
            "and page cache), the package's files and the data directory dropped from the page cache first "
            "(`../shared/tools/evict`). The cgroup's peak counts the page cache of the files the builder writes "
            "(sorted runs, segments), which the kernel lets grow to the cap and reclaims there; the process's "
            "peak RSS (anonymous memory) is the figure to hold against the budget; failcnt is memcap's count of "
            "allocations refused at the limit.",
            "",
            "| budget | cap | exit | seconds (build) | M triplets/s | cgroup peak (RSS + page cache) | peak RSS of the process | cgroup peak at the cap | failcnt | nnz as expected | verify | row sums exact |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        if c["rc"] == 0:
            report.append(
                f"| {c['budget'] // MiB} MiB | {c['cap'] // MiB} MiB | 0 | {c['seconds']:.1f} | "
                f"{c['count'] / c['seconds'] / 1e6:.2f} | {peak / MiB:.0f} MiB ({peak / c['cap']:.0%} of the cap) | {c['peak_rss'] / MiB:.0f} MiB | {hit} | "
                f"{m.get('failcnt', '?')} | {'yes' if c['nnz'] == c['count'] else 'NO'} ({c['nnz']:,}) | "
                f"{c['verify']['segments']} segments, {c['verify']['files']} files checked | {'yes' if c['row_sums_equal'] else 'NO'} |"
            )
        else:
            report.append(f"| {c['budget'] // MiB} MiB | {c['cap'] // MiB} MiB | {c['rc']} | | | {m.get('peak', '?')} | | | {m.get('failcnt', '?')} | | | |")
            report += ["", "```", c["stderr"], "```"]
        report.append("")
    text = "\n".join(report)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    if args.splice:
        doc = pathlib.Path(args.splice).read_text()
        if BEGIN not in doc or END not in doc:
            sys.exit(f"bench.py: {args.splice} has no {BEGIN} ... {END} lines to put the report between")
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        pathlib.Path(args.splice).write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
