//! The import's memory budget: the parse threads fit in it whatever the thread count, the budget too
//! small for one thread is refused up front, and an empty input is refused the same way from a file
//! and from standard input.

mod common;

use common::{fails, ok, p, SplitMix};
use sparsedisk::import::{min_memory_budget, parser_reserve, plan_parsing};
use sparsedisk::io::read::{ReadOptions, DEFAULT_BLOCK_BYTES};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap()
}

/// Writes a Matrix Market file of `n` entries at random positions of a 200,000 x 200,000 matrix
/// (duplicates included), with small integer values so that every summation order is exact.
fn write_random_mtx(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "%%MatrixMarket matrix coordinate real general\n200000 200000 {n}").unwrap();
    let mut rng = SplitMix(7);
    for _ in 0..n {
        let (r, c, v) = (rng.next_u64() % 200_000 + 1, rng.next_u64() % 200_000 + 1, rng.next_u64() % 19);
        writeln!(f, "{r} {c} {}", v as i64 - 9).unwrap();
    }
    f.flush().unwrap();
}

/// Every file under matrix directory `dir` (segments are directories), by relative path, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn eight_threads_import_within_a_small_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.mtx");
    // 5 M entries: more than one chunk of the builder's share of 256 MiB, so runs are spilled and merged.
    write_random_mtx(&input, 5_000_000);
    let out = tmp.path().join("m");
    let s = json(&ok(&["--threads", "8", "import", p(&input), "-o", p(&out), "--memory", "256M", "--json"]));
    let threads = s["parse_threads"].as_u64().unwrap();
    assert!((1..8).contains(&threads), "256 MiB holds fewer than 8 parse threads: {s}");
    assert!(s["runs"].as_u64().unwrap() >= 2, "the input should spill: {s}");
    // The slack over the budget is what the budget does not count: the executable and its libraries
    // mapped in (about 10 MiB), the stacks of nine threads, and the allocator's own overhead.
    let peak = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak <= 256 * MIB + 32 * MIB, "peak RSS {} MiB beyond the 256 MiB budget", peak / MIB);

    // The oracle: one thread, a budget that holds the whole input in one chunk (no run at all).
    let oracle = tmp.path().join("oracle");
    let o = json(&ok(&["--threads", "1", "import", p(&input), "-o", p(&oracle), "--memory", "2G", "--json"]));
    assert_eq!((o["runs"].as_u64(), o["parse_threads"].as_u64()), (Some(0), Some(1)));
    assert_eq!(s["nnz"], o["nnz"]);
    assert!(files(&out) == files(&oracle), "the spilled import's files differ from the in-memory one's");
}

#[test]
fn a_budget_below_one_parse_thread_is_refused_before_the_input_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    // The input does not exist: refusing the budget must come before opening it.
    let err =
        fails(&["--threads", "8", "import", p(&tmp.path().join("missing.mtx")), "-o", p(&out), "--memory", "70M"]);
    assert!(err.contains("70.00 MiB is too small") && err.contains("at least 72.00 MiB"), "{err}");
    assert!(!out.exists());
    let min = min_memory_budget(&ReadOptions::default());
    assert_eq!(min, 72 * MIB);
    assert!(plan_parsing(min - 1, 1, DEFAULT_BLOCK_BYTES).is_err());

    // Just above the minimum: one thread, with smaller blocks.
    let input = tmp.path().join("small.mtx");
    write_random_mtx(&input, 1000);
    let s = json(&ok(&["--threads", "8", "import", p(&input), "-o", p(&out), "--memory", "100M", "--json"]));
    assert_eq!(s["parse_threads"].as_u64(), Some(1), "{s}");
    assert!(s["parse_block_bytes"].as_u64().unwrap() < DEFAULT_BLOCK_BYTES as u64, "{s}");
}

#[test]
fn the_plan_splits_any_budget_between_parser_and_builder() {
    let block = DEFAULT_BLOCK_BYTES;
    let plan = plan_parsing(256 * MIB, 8, block).unwrap();
    assert_eq!((plan.threads, plan.block_bytes), (2, block));
    let plan = plan_parsing(2048 * MIB, 32, block).unwrap();
    assert_eq!(plan.threads, 18);
    // The machine's threads bound it when the budget is large.
    assert_eq!(plan_parsing(64 << 30, 4, block).unwrap().threads, 4);
    for budget in (72..4096).step_by(7).map(|m| m * MIB) {
        for max_threads in [1, 2, 3, 8, 64, 1024] {
            let plan = plan_parsing(budget, max_threads, block).unwrap();
            assert!(plan.threads >= 1 && plan.threads <= max_threads);
            assert!(plan.block_bytes >= 1 << 20 && plan.block_bytes <= block);
            let reserve = parser_reserve(plan.threads, plan.block_bytes);
            assert_eq!(reserve + plan.builder_budget, budget, "{budget} {max_threads}");
            assert!(plan.builder_budget >= (budget / 2).max(sparsedisk::builder::MIN_MEMORY_BUDGET), "{plan:?}");
            // One more thread would not have fit.
            if plan.threads < max_threads && plan.block_bytes == block {
                let more = parser_reserve(plan.threads + 1, block);
                assert!(budget - more < (budget / 2).max(sparsedisk::builder::MIN_MEMORY_BUDGET), "{plan:?}");
            }
        }
    }
}

#[test]
fn empty_standard_input_is_refused_like_an_empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.mtx");
    std::fs::write(&empty, b"").unwrap();
    let from_file = fails(&["import", p(&empty), "-o", p(&tmp.path().join("a"))]);
    let child = Command::new(common::bin())
        .args(["import", "-", "-o", p(&tmp.path().join("b"))])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(child.status.code(), Some(1), "empty standard input must be refused");
    let from_stdin = String::from_utf8(child.stderr).unwrap();
    assert!(from_file.contains("the file is empty"), "{from_file}");
    assert_eq!(from_file.replace(p(&empty), "<stdin>").trim(), from_stdin.trim());
    assert!(!tmp.path().join("a").exists() && !tmp.path().join("b").exists());
}
