#!/usr/bin/env bash
# Parity run: `sparsedisk bench`, a previous binary against the new one, alternating (issue #15's
# "behaviour and speed do not change"). Build the previous binary from its commit in a worktree, e.g.
#   git worktree add --detach ../old 16f6e7f && (cd ../old && CARGO_TARGET_DIR=../old-target cargo build --release --bin sparsedisk)
# then, from the repository root:
#   OLD=../old-target/release/sparsedisk ROUNDS=4 crates/bench/parity/run.sh
#   NEW=/path/to/sparsedisk OLD=/path/to/old ROUNDS=1 SUITE=smoke crates/bench/parity/run.sh
#
# Settings (environment variables; the first two may also be given as arguments: run.sh [NEW [OLD]]):
#   NEW      the new binary        (default <repository>/target/release/sparsedisk)
#   OLD      the previous binary   (required)
#   ROUNDS   rounds; each round runs each binary once (default 3; an even number balances the ABBA order)
#   SUITE    quick | full | smoke (smoke is hidden: seconds, for checking this script) (default quick)
#   OUTROOT  where the runs go: OUTROOT/old-<r>, OUTROOT/new-<r> (default <repository>/target/parity)
#   DATA     the inputs both binaries read (--data DIR --keep-data) (default OUTROOT/data-SUITE)
#   KEEP_DATA=1  keep DATA at the end (default: removed)
#   WARMUP=1 one untimed, discarded run of NEW (--repeat 1) first: generates DATA, so no measured run
#            pays for generation or has its writeback in the background (default 1; 0 skips it)
#   NEW_SRC  a source tree to check NEW against: warn if a file of it is newer than NEW
#            (default the repository when NEW is the default); its git HEAD and dirty state go in run-info.json
#
# Order: round 1 old,new; round 2 new,old; round 3 old,new; ... (A B B A A B ...). Each run is
#   BIN bench --suite SUITE --quiet --no-python --data DATA --keep-data --out OUTROOT/<bin>-<round>
# (flags both binaries accept; --data makes both read the same generated inputs, and the harness never
# deletes a --data directory). The binaries are copied to OUTROOT/bin first, so a rebuild during the run
# cannot change what is measured (the out-of-core runs re-execute the running binary).
# At the end compare.py writes OUTROOT/parity.md and prints it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
DEFAULT_NEW=$REPO/target/release/sparsedisk
NEW=${1:-${NEW:-$DEFAULT_NEW}}
OLD=${2:-${OLD:-}}
[[ -n "$OLD" ]] || { echo "run.sh: set OLD to the previous binary (see the comment at the top)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
SUITE=${SUITE:-quick}
OUTROOT=${OUTROOT:-$REPO/target/parity}
DATA=${DATA:-$OUTROOT/data-$SUITE}
KEEP_DATA=${KEEP_DATA:-0}
WARMUP=${WARMUP:-1}
if [[ -z "${NEW_SRC+x}" ]]; then
    NEW_SRC=""
    [[ "$NEW" == "$DEFAULT_NEW" ]] && NEW_SRC=$REPO
fi

die() { echo "run.sh: $*" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer (got '$ROUNDS')"
for b in "$NEW" "$OLD"; do [[ -x "$b" ]] || die "not an executable file: $b"; done
command -v python3 >/dev/null || die "python3 is needed for compare.py"

# Both binaries must take the flags used here, and the suite.
for b in "$OLD" "$NEW"; do
    help=$("$b" bench --help)
    for flag in --suite --quiet --no-python --out --data --keep-data --repeat; do
        grep -q -- "$flag" <<<"$help" || die "$b bench does not take $flag"
    done
done

# A stale NEW is the usual mistake: the source tree edited or pulled after the last build.
if [[ -n "$NEW_SRC" && -d "$NEW_SRC" ]]; then
    newer=$(cd "$NEW_SRC" && find Cargo.toml Cargo.lock src crates -newer "$NEW" -type f \
        \( -name '*.rs' -o -name 'Cargo.*' -o -name '*.py' \) 2>/dev/null | head -5 || true)
    if [[ -n "$newer" ]]; then
        echo "run.sh: WARNING: $NEW is older than these sources in $NEW_SRC (rebuild it first:" >&2
        echo "        cd $NEW_SRC && cargo build --release --bin sparsedisk):" >&2
        sed 's/^/          /' <<<"$newer" >&2
    fi
fi

mkdir -p "$OUTROOT/bin" "$OUTROOT/logs" "$DATA"
rm -rf "$OUTROOT"/old-* "$OUTROOT"/new-* "$OUTROOT/warmup" "$OUTROOT"/logs/* \
    "$OUTROOT/timings.tsv" "$OUTROOT/parity.md"
cp -f "$OLD" "$OUTROOT/bin/sparsedisk-old"
cp -f "$NEW" "$OUTROOT/bin/sparsedisk-new"
BIN_old="$OUTROOT/bin/sparsedisk-old"
BIN_new="$OUTROOT/bin/sparsedisk-new"
sha_old=$(sha256sum "$BIN_old" | cut -c1-64)
sha_new=$(sha256sum "$BIN_new" | cut -c1-64)
[[ "$sha_old" != "$sha_new" ]] || echo "run.sh: WARNING: OLD and NEW are the same file (sha256 $sha_old)" >&2

SUITE="$SUITE" ROUNDS="$ROUNDS" DATA="$DATA" WARMUP="$WARMUP" OLD="$OLD" NEW="$NEW" \
    NEW_SRC="$NEW_SRC" SHA_OLD="$sha_old" SHA_NEW="$sha_new" VER_OLD="$("$BIN_old" --version)" VER_NEW="$("$BIN_new" --version)" \
    python3 - "$OUTROOT/run-info.json" <<'EOF'
import datetime, json, os, subprocess, sys
e = os.environ
def git(*args):
    if not e["NEW_SRC"]:
        return None
    r = subprocess.run(["git", "-C", e["NEW_SRC"], *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None
src = None
if git("rev-parse", "HEAD"):
    changed = git("status", "--porcelain", "--untracked-files=no") or ""
    src = {"tree": e["NEW_SRC"], "head": git("rev-parse", "--short", "HEAD"),
           "uncommitted_changes": len(changed.splitlines())}
mtime = lambda p: datetime.datetime.fromtimestamp(os.path.getmtime(p), datetime.timezone.utc).isoformat(timespec="seconds")
json.dump({
    "suite": e["SUITE"], "rounds": int(e["ROUNDS"]), "data": e["DATA"], "warmup": e["WARMUP"] == "1",
    "old": {"path": e["OLD"], "sha256": e["SHA_OLD"], "mtime": mtime(e["OLD"]), "version": e["VER_OLD"]},
    "new": {"path": e["NEW"], "sha256": e["SHA_NEW"], "mtime": mtime(e["NEW"]), "version": e["VER_NEW"], "source": src},
    "host": os.uname().nodename, "cores": os.cpu_count(),
    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "load_at_start": open("/proc/loadavg").read().split()[:3],
}, open(sys.argv[1], "w"), indent=1)
EOF

# The inputs' names, sizes and times: a run that rewrites them (a binary that cannot read the other's
# files regenerates them) is reported.
snapshot() { (cd "$DATA" && find . -path '*.spgemm-out' -prune -o -path '*.import-out' -prune -o \
    -name '.sparsedisk-bench-disk-probe' -prune -o -type f -printf '%p %s %T@\n' | sort); }

# run WHICH TAG [extra bench args...]: one bench run, timed; its output in OUTROOT/TAG.
run() {
    local which=$1 tag=$2; shift 2
    local bin_var="BIN_$which"; local bin=${!bin_var}
    local before; before=$(snapshot)
    local t0 t1 rc=0
    echo "run.sh: $(date -u +%T) $tag ($which) ..." >&2
    t0=$(date +%s.%N)
    "$bin" bench --suite "$SUITE" --quiet --no-python --data "$DATA" --keep-data --out "$OUTROOT/$tag" "$@" \
        >"$OUTROOT/logs/$tag.out" 2>"$OUTROOT/logs/$tag.err" || rc=$?
    t1=$(date +%s.%N)
    local secs; secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    if [[ $rc -ne 0 ]]; then
        echo "run.sh: $tag ($which) failed with exit code $rc; its log:" >&2
        tail -20 "$OUTROOT/logs/$tag.err" >&2
        exit 1
    fi
    if [[ "$tag" != warmup && "$before" != "$(snapshot)" && -n "$before" ]]; then
        echo "run.sh: WARNING: $tag ($which) rewrote inputs in $DATA (it could not reuse them)" >&2
        echo "$tag rewrote-inputs" >>"$OUTROOT/logs/warnings"
    fi
    echo "run.sh: $(date -u +%T) $tag ($which) done in ${secs} s" >&2
    [[ "$tag" == warmup ]] || printf '%s\t%s\t%s\t%s\t%s\n' "$seq" "$which" "$round" "$secs" "$(cut -d' ' -f1 /proc/loadavg)" \
        >>"$OUTROOT/timings.tsv"
}

started=$(date +%s)
seq=0 round=0
if [[ "$WARMUP" == 1 ]]; then
    run new warmup --repeat 1
    sync
fi
printf 'seq\tbinary\tround\twall_seconds\tload1\n' >"$OUTROOT/timings.tsv"
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2 == 1)); then order=(old new); else order=(new old); fi
    for which in "${order[@]}"; do
        seq=$((seq + 1))
        run "$which" "$which-$round"
    done
done
rm -rf "$OUTROOT/warmup"
echo "run.sh: all runs done in $(($(date +%s) - started)) s" >&2

if [[ "$KEEP_DATA" != 1 ]]; then rm -rf "$DATA"; fi

python3 "$HERE/compare.py" "$OUTROOT" | tee "$OUTROOT/parity.md"
echo "run.sh: table in $OUTROOT/parity.md" >&2
