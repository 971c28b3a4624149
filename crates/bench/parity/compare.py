#!/usr/bin/env python3
"""Compare `sparsedisk bench` runs of two binaries (issue #15's parity check); prints Markdown.

    compare.py OUTROOT            # reads OUTROOT/old-<r>/results.jsonl and OUTROOT/new-<r>/results.jsonl

Each measurement (kernel, matrix, tool, regime, threads, k, memory cap) is paired across the binaries
round by round. Per measurement: the median over rounds of each binary's per-run median seconds, the
paired ratio new/old (median of the per-round ratios, with their min-max), and each binary's
run-to-run spread (max/min over rounds of its per-run medians; with one round, the within-run spread
of the samples instead). A ratio is flagged when it lies outside the larger of the two spreads, i.e.
when the difference between the binaries exceeds what either binary differs from itself.
Above 1 the new binary is slower. Standard library only. OUTROOT/run-info.json and timings.tsv (written
by run.sh) are used when present.
"""

import json
import math
import re
import statistics
import sys
from pathlib import Path

BINARIES = ("old", "new")


def load(root):
    """{binary: {round: [record, ...]}} and {binary: {round: run.json}}."""
    runs = {b: {} for b in BINARIES}
    headers = {b: {} for b in BINARIES}
    for d in sorted(root.iterdir()):
        m = re.fullmatch(r"(old|new)-(\d+)", d.name)
        if not (m and d.is_dir()):
            continue
        f = d / "results.jsonl"
        if not f.exists():
            print(f"compare.py: {f} is missing (an interrupted run?); skipped", file=sys.stderr)
            continue
        with f.open() as fh:
            runs[m[1]][int(m[2])] = [json.loads(line) for line in fh if line.strip()]
        if (d / "run.json").exists():
            headers[m[1]][int(m[2])] = json.loads((d / "run.json").read_text())
    return runs, headers


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def label(r, stat):
    """A short, unique-within-a-run name for a measurement."""
    m = r.get("matrix") or {}
    p = r.get("params") or {}
    parts = [r["kernel"]]
    if r["kernel"] == "limit":
        parts.append(r["tool"])
    else:
        parts.append(m.get("name", "?"))
        if r["tool"] != "sparsedisk":
            parts.append(f"[{r['tool']}]")
    if p.get("k") not in (None, 1):
        parts.append(f"k={p['k']}")
    if p.get("threads") is not None:
        parts.append(f"{p['threads']}t")
    cap = r.get("cap")
    if r["regime"] == "out_of_core_cold" and r["kernel"] != "limit":
        parts.append("cold" + (f", cap {fmt_bytes(cap['requested_bytes'])}" if cap else ""))
        parts.append({"first": "first product", "steady": "steady products"}.get(stat, stat))
    return " ".join(parts)


def measurements(records):
    """(key, label, seconds, samples, record) for each measured record of one run; the skipped ones."""
    out, skipped, seen = [], [], {}
    for r in records:
        if r.get("note"):
            skipped.append(r)
            continue
        p = r.get("params") or {}
        cap = r.get("cap") or {}
        base = (r["kernel"], (r.get("matrix") or {}).get("name"), r["tool"], r["regime"],
                p.get("threads"), p.get("k"), cap.get("requested_bytes"))
        stats = [("first", r.get("median"), r.get("samples") or [])]
        if r["regime"] == "out_of_core_cold" and "steady_samples" in p:
            # Out of core: the median is the cold first product of each round; the steady products
            # (the second and third of each round) are a second measurement.
            stats.append(("steady", p.get("steady_seconds"), p.get("steady_samples") or []))
        for stat, value, samples in stats:
            key = base + (stat if len(stats) > 1 else "",)
            n = seen.get(key, 0)
            seen[key] = n + 1
            if n:  # the same measurement twice in one run: keep both, numbered
                key = key + (n,)
            out.append((key, label(r, stat if len(stats) > 1 else ""), value, samples, r))
    return out, skipped


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def spread(values):
    v = [x for x in values if finite(x)]
    return max(v) / min(v) if len(v) >= 2 else None


def geomean(xs):
    xs = [x for x in xs if finite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def fmt_s(x):
    if not finite(x):
        return "-"
    if x < 1e-3:
        return f"{x * 1e6:.3g} µs"
    if x < 1:
        return f"{x * 1e3:.3g} ms"
    return f"{x:.3g} s"


def fmt_r(x, digits=3):
    return f"{x:.{digits}f}" if x is not None and math.isfinite(x) else "-"


# Results of the computation that a refactor must not change, and how to read them from a record.
INVARIANTS = {
    "matrix rows x cols, nnz, bytes": lambda r: (lambda m: m and (m["rows"], m["cols"], m["nnz"], m["bytes"]))(
        r.get("matrix")),
    "iterations": lambda r: (r.get("params") or {}).get("iterations"),
    "residual": lambda r: (r.get("params") or {}).get("residual"),
    "nnz of C (SpGEMM)": lambda r: (r.get("params") or {}).get("nnz_c"),
    "bytes moved": lambda r: (r.get("figures") or {}).get("bytes_moved"),
    "note": lambda r: r.get("note"),
    "cap applied": lambda r: (r.get("cap") or {}).get("applied"),
}


def shape_of(r):
    """The record's field names, nested one level (params, figures, cap, matrix, ...)."""
    names = set()
    for k, v in r.items():
        names.add(k)
        if isinstance(v, dict) and k not in ("ratios",):
            names.update(f"{k}.{kk}" for kk in v)
    return names


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = Path(argv[1])
    if not root.is_dir():
        print(f"compare.py: {root} is not a directory", file=sys.stderr)
        return 1
    runs, headers = load(root)
    manifest = json.loads((root / "run-info.json").read_text()) if (root / "run-info.json").exists() else {}
    rounds = sorted(set(runs["old"]) & set(runs["new"]))
    if not rounds:
        print(f"compare.py: no round of {root} has both old-<r> and new-<r> results", file=sys.stderr)
        return 1
    for b in BINARIES:
        lone = sorted(set(runs[b]) - set(rounds))
        if lone:
            print(f"compare.py: {b} rounds {lone} have no partner; ignored", file=sys.stderr)

    # per binary: key -> {round: (seconds, samples)}; key -> label; the order of first appearance
    data = {b: {} for b in BINARIES}
    labels, order, tools, skipped = {}, [], {}, {b: {} for b in BINARIES}
    for b in BINARIES:
        for rnd in rounds:
            ms, sk = measurements(runs[b][rnd])
            for key, lab, value, samples, rec in ms:
                data[b].setdefault(key, {})[rnd] = (value, samples)
                if key not in labels:
                    labels[key], tools[key] = lab, rec["tool"]
                    order.append(key)
            for rec in sk:
                skipped[b][label(rec, "")] = rec["note"]

    suite = manifest.get("suite") or runs["old"][rounds[0]][0].get("suite", "?")
    multi = len(rounds) >= 2
    out = []
    w = out.append
    w(f"## Parity: `sparsedisk bench --suite {suite}`, old against new\n")
    seq = " ".join(("old new" if r % 2 else "new old") for r in rounds)
    w(f"{len(rounds)} round(s), run in the order {seq} (each round pairs one run of each binary; "
      f"`--quiet --no-python`, both reading the same `--data` inputs).\n")
    if manifest:
        w("| binary | version | sha256 | built (mtime) | path |")
        w("|---|---|---|---|---|")
        for b in BINARIES:
            m = manifest.get(b, {})
            w(f"| {b} | {m.get('version', '?')} | `{m.get('sha256', '?')[:12]}` | {m.get('mtime', '?')} "
              f"| `{m.get('path', '?')}` |")
        w("")
        src = manifest.get("new", {}).get("source")
        if src:
            dirty = src.get("uncommitted_changes")
            w(f"The new binary's source tree {src.get('tree')} was at {src.get('head')} with {dirty} uncommitted "
              f"change(s) when the run started" + (" (the binary may not match the commit)" if dirty else "") + ".\n")
        w(f"Host {manifest.get('host', '?')}, {manifest.get('cores', '?')} cores, load average at start "
          f"{' '.join(manifest.get('load_at_start', []))}; started {manifest.get('started', '?')}.\n")

    # Wall time of each run (run.sh's timings, else the harness's own run.json).
    tsv = root / "timings.tsv"
    rows = []
    if tsv.exists():
        lines = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:] if ln.strip()]
        rows = [(int(s), b, int(r), float(t), ld) for s, b, r, t, ld in lines]
    w("| run | binary | round | wall (run.sh) | wall (harness) | load (1 min, at end) |")
    w("|---|---|---|---|---|---|")
    if rows:
        for s, b, r, t, ld in rows:
            h = headers[b].get(r, {}).get("wall_seconds")
            w(f"| {s} | {b} | {r} | {t:.1f} s | {fmt_r(h, 1)} s | {ld} |")
    else:
        for r in rounds:
            for b in BINARIES:
                w(f"| - | {b} | {r} | - | {fmt_r(headers[b].get(r, {}).get('wall_seconds'), 1)} s | - |")
    w("")

    # The measurement table.
    spread_kind = "run-to-run spread (max/min over rounds)" if multi else \
        "within-run spread (max/min of one run's samples: only one round)"
    w(f"Seconds are the median over rounds of each run's median; new/old is the median of the per-round "
      f"ratios [min-max]; spread is the {spread_kind}. **outside** marks a ratio beyond the larger spread. "
      f"Above 1: new is slower.\n")

    results = {}
    only = []
    for key in order:
        o, n = data["old"].get(key, {}), data["new"].get(key, {})
        common = [r for r in rounds if r in o and r in n and finite(o[r][0]) and finite(n[r][0])]
        if not common:
            only.append(labels[key])
            continue
        ratios = [n[r][0] / o[r][0] for r in common]
        if multi:
            so = spread([o[r][0] for r in rounds if r in o])
            sn = spread([n[r][0] for r in rounds if r in n])
        else:
            so = spread(o[common[0]][1])
            sn = spread(n[common[0]][1])
        med = statistics.median(ratios)
        band = max([s for s in (so, sn) if s is not None], default=None)
        outside = band is not None and (med > band or med < 1 / band)
        results[key] = dict(old=statistics.median(o[r][0] for r in common),
                            new=statistics.median(n[r][0] for r in common),
                            ratio=med, lo=min(ratios), hi=max(ratios), so=so, sn=sn, outside=outside,
                            per_round=dict(zip(common, ratios)))

    def table(keys, title):
        if not keys:
            return
        w(f"### {title}\n")
        w("| measurement | old | new | new/old | [min-max] | old spread | new spread | |")
        w("|---|---:|---:|---:|---|---:|---:|---|")
        for k in keys:
            x = results[k]
            w(f"| {labels[k]} | {fmt_s(x['old'])} | {fmt_s(x['new'])} | {fmt_r(x['ratio'])} "
              f"| [{fmt_r(x['lo'])}-{fmt_r(x['hi'])}] | {fmt_r(x['so'], 2)} | {fmt_r(x['sn'], 2)} "
              f"| {'**outside**' if x['outside'] else ''} |")
        w("")

    ours = [k for k in order if k in results and tools[k] == "sparsedisk"]
    controls = [k for k in order if k in results and tools[k] != "sparsedisk"]
    table(ours, "sparsedisk (the code that changed)")
    table(controls, "Controls (code the refactor did not touch: sprs, memory and disk bandwidth)")

    if only:
        w("Measured by one binary only, or in no common round: " + ", ".join(only) + ".\n")
    diff_skips = {k for b in BINARIES for k in skipped[b]
                  if skipped["old"].get(k) != skipped["new"].get(k)}
    if diff_skips:
        w("Skipped differently: " + "; ".join(
            f"{k}: old `{skipped['old'].get(k)}`, new `{skipped['new'].get(k)}`" for k in sorted(diff_skips)) + "\n")

    # Behaviour: what the runs computed must be the same.
    mismatches = []
    by_label = {b: {} for b in BINARIES}
    for b in BINARIES:
        for rnd in rounds:
            for r in runs[b][rnd]:
                lab = label(r, "") + f" ({r['tool']})"
                for name, get in INVARIANTS.items():
                    v = get(r)
                    if v is not None:
                        by_label[b].setdefault((lab, name), set()).add(json.dumps(v))
    for k in sorted(set(by_label["old"]) | set(by_label["new"])):
        if k[1] == "bytes moved" and k[0].startswith("limit"):
            continue
        vo, vn = by_label["old"].get(k, set()), by_label["new"].get(k, set())
        if vo != vn:
            mismatches.append(f"{k[0]}, {k[1]}: old {sorted(vo)} new {sorted(vn)}")
    if mismatches:
        w("**Results that differ between the binaries** (a behaviour change, or run-to-run variation):\n")
        w("\n".join(f"- {m}" for m in mismatches) + "\n")
    else:
        w("What the runs computed agrees: matrix shapes, nnz and bytes, iterations, residuals, SpGEMM "
          "nnz, bytes moved, caps applied and skip notes are identical across the binaries.\n")

    shapes = {b: set().union(*(shape_of(r) for rnd in rounds for r in runs[b][rnd])) for b in BINARIES}
    if shapes["old"] != shapes["new"]:
        w(f"Record fields only in old: {sorted(shapes['old'] - shapes['new'])}; "
          f"only in new: {sorted(shapes['new'] - shapes['old'])}.\n")

    # Overall.
    g = geomean(results[k]["ratio"] for k in ours)
    per_round = [geomean(results[k]["per_round"].get(r) for k in ours) for r in rounds]
    gc = geomean(results[k]["ratio"] for k in controls)
    band = geomean(max(s for s in (results[k]["so"], results[k]["sn"], 1.0) if s is not None) for k in ours)
    flagged = [labels[k] for k in ours if results[k]["outside"]]
    flagged_c = [labels[k] for k in controls if results[k]["outside"]]
    w("### Overall\n")
    w(f"- Geometric mean of new/old over {len(ours)} sparsedisk measurements: **{fmt_r(g)}** "
      f"(per round: {', '.join(fmt_r(x) for x in per_round)}); geometric mean of their spreads: "
      f"{fmt_r(band)}.")
    w(f"- Controls ({len(controls)}): geometric mean of new/old {fmt_r(gc)}.")
    w(f"- Outside the spread: {len(flagged)} of {len(ours)} sparsedisk measurements"
      + (f" ({', '.join(flagged)})" if flagged else "")
      + f"; {len(flagged_c)} of {len(controls)} controls" + (f" ({', '.join(flagged_c)})" if flagged_c else "")
      + ".")
    if multi:
        # Simulated with identical binaries (independent log-normal noise): the share of measurements
        # whose median ratio lies outside the larger spread by chance alone.
        chance = {2: 0.22, 3: 0.06, 4: 0.012, 5: 0.0035}.get(len(rounds), 0.002)
        w(f"- With {len(rounds)} rounds, identical binaries would put about {chance:.1%} of measurements outside "
          f"by chance (about {chance * len(ours):.1f} of {len(ours)}): a few flags are expected; parity rests on the overall and "
          f"per-round geometric means staying near 1 (well inside the spreads) and on flags not repeating in a "
          f"second invocation. 2 rounds: 22%, 3: 6%, 4: 1.2%, 5: 0.35%.")
    if not multi:
        w("- One round only: the spreads are within one run, not run to run; use ROUNDS>=2 for the verdict.")
    warnings = root / "logs" / "warnings"
    if warnings.exists():
        w(f"- run.sh warnings: {warnings.read_text().strip()}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
