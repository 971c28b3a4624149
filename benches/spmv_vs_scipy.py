"""SpMV in memory, side by side: `sparsedisk spmv --json` (one or more binaries, 1 and 2 threads)
against scipy's `S @ x` (one thread) on the same matrices, alternating, several rounds.

    python benches/spmv_vs_scipy.py ROUNDS BIN [BIN ...] -- DIR [DIR ...]

Each round runs, for every matrix directory, every binary on 1 and 2 threads (`--repeat 30`, its
`ns_per_nonzero`, the median of the 30 products) in an order that reverses each round, then scipy on
a copy of the matrix loaded with `sparsedisk.to_scipy()` (int32 indices, as scipy builds them; the
median of 30 products). Prints per matrix and tool the median, min and max over rounds of ns per
nonzero and scipy's median over the tool's (above 1: faster than scipy).

Load the matrices into the page cache through sparsedisk first (`sparsedisk spmv DIR` once after
`../shared/tools/evict DIR`): files read by other tools on 4 KiB pages run about 10% slower
(docs/performance.md, "Page-cache folios"). Set OMP_NUM_THREADS=1 so that nothing else threads.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

import sparsedisk

THREADS = (1, 2)
REPEAT = 30


def main(argv):
    if "--" not in argv or len(argv) < 4:
        sys.exit(__doc__)
    sep = argv.index("--")
    rounds, binaries, matrices = int(argv[0]), argv[1:sep], argv[sep + 1 :]
    scipy_matrices = {}
    for m in matrices:
        a = sparsedisk.open(m).to_scipy(max_bytes=None)
        scipy_matrices[m] = sp.csr_matrix(
            (a.data, a.indices.astype(np.int32), a.indptr.astype(np.int32)), shape=a.shape
        )
    results = {}
    for r in range(rounds):
        for m in matrices:
            s = scipy_matrices[m]
            for b in binaries if r % 2 == 0 else binaries[::-1]:
                for t in THREADS:
                    out = subprocess.run(
                        [b, "--threads", str(t), "spmv", m, "--repeat", str(REPEAT), "--json"],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    results.setdefault((m, b, t), []).append(json.loads(out)["ns_per_nonzero"])
            x = np.ones(s.shape[1])
            times = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                s @ x
                times.append(time.perf_counter() - started)
            results.setdefault((m, "scipy", 1), []).append(statistics.median(times) * 1e9 / s.nnz)
        print(f"round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
    print(f"{'matrix':24} {'tool':32} threads  median    min    max  scipy/tool")
    for m in matrices:
        anchor = statistics.median(results[(m, "scipy", 1)])
        for tool in ["scipy"] + binaries:
            for t in (1,) if tool == "scipy" else THREADS:
                v = results[(m, tool, t)]
                med = statistics.median(v)
                print(
                    f"{os.path.basename(m.rstrip('/')):24} {tool[-32:]:32} {t:7} {med:7.3f} {min(v):6.3f} "
                    f"{max(v):6.3f}  {anchor / med:5.2f}x"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
