"""What a scipy user pays to have A @ A on disk: the product, scipy.sparse.save_npz(compressed=False)
and an fsync of the file (then of its directory), timed together. Prints one JSON line: the median
and every run's seconds. Used beside `sparsedisk spgemm` (durable by default) in docs/performance.md,
"SpGEMM in memory (issue #18)".

    python benches/scipy_spgemm_durable.py A.mtx OUT_DIR --repeat 5
"""
import argparse
import json
import os
import time

import fast_matrix_market as fmm
import scipy.sparse as sp


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mtx")
    p.add_argument("out_dir")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    m = fmm.mmread(a.mtx).tocsr()
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, "c.npz")
    ts = []
    for _ in range(a.repeat):
        if os.path.exists(path):
            os.remove(path)
        t = time.perf_counter()
        c = m @ m
        sp.save_npz(path, c, compressed=False)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        dfd = os.open(a.out_dir, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        ts.append(time.perf_counter() - t)
        del c
    os.remove(path)
    s = sorted(ts)
    print(json.dumps({"tool": "scipy A@A + save_npz(compressed=False) + fsync", "seconds": s[len(s) // 2], "all_seconds": ts}))


main()
