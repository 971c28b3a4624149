//! Ctrl-C and SIGTERM: an interrupted command stops at its next check, removes its staging area and
//! partial output, says so in one line and exits 128 + the signal; a matrix it was replacing stays
//! intact. And the debris that a killed process leaves (which no cleanup can prevent) is reported by
//! `info` and `verify` and removed by `clean`.

mod common;

use common::{fails, ok, p, sparsedisk, SplitMix};
use sparsedisk::builder::{BuildOptions, TripletBuilder};
use sparsedisk::{Error, Matrix, WriterOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes an unsorted Matrix Market file of `nnz` entries (a 2^20 x 2^20 matrix, random positions):
/// large enough that an import with `--memory 200M` spills sorted runs for several seconds.
fn write_mtx(path: &Path, nnz: u64) {
    let n = 1u64 << 20;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    writeln!(out, "%%MatrixMarket matrix coordinate real general\n{n} {n} {nnz}").unwrap();
    let mut rng = SplitMix(14);
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    for _ in 0..nnz {
        let x = rng.next_u64();
        out.write_all(a.format((x & (n - 1)) + 1).as_bytes()).unwrap();
        out.write_all(b" ").unwrap();
        out.write_all(b.format(((x >> 20) & (n - 1)) + 1).as_bytes()).unwrap();
        out.write_all(b" 1.5\n").unwrap();
    }
    out.flush().unwrap();
}

fn spawn(args: &[&str]) -> Child {
    Command::new(common::bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sparsedisk")
}

/// Names in `dir` that start with `prefix`.
fn names_with(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Bytes in staging areas of `dir` now: what an interruption must remove.
fn staged_bytes(dir: &Path) -> u64 {
    fn size(path: &Path) -> u64 {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| size(&e.path())).sum()).unwrap_or(0)
            }
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    names_with(dir, ".staging-").iter().map(|n| size(&dir.join(n))).sum()
}

/// Every entry of `dir` that is debris: staging areas and temporary files.
fn debris_names(dir: &Path) -> Vec<String> {
    let mut found = names_with(dir, ".staging-");
    found.extend(
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.contains(".tmp-")),
    );
    found
}

/// Waits until `ready()` (the command is in the phase to interrupt), then sends `signal` and waits for
/// the exit. Returns (exit code, standard error, seconds from the signal to the exit).
fn interrupt_when(mut child: Child, signal: rustix::process::Signal, ready: impl Fn() -> bool) -> (i32, String, f64) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command finished ({status}) before it could be interrupted: make its input larger");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the command never reached the phase to interrupt");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_child(&child);
    let sent = Instant::now();
    rustix::process::kill_process(pid, signal).unwrap();
    let output = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the command did not stop within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let latency = sent.elapsed().as_secs_f64();
    (output.status.code().unwrap_or(-1), String::from_utf8(output.stderr).unwrap(), latency)
}

/// The message: one line, saying what was removed.
fn assert_one_line_message(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {stderr:?}");
    assert!(lines[0].starts_with("sparsedisk: interrupted; removed "), "{stderr:?}");
}

#[test]
fn sigint_during_an_import_removes_the_staging_area_and_the_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.mtx");
    write_mtx(&input, 6_000_000);
    let out = tmp.path().join("out");
    let child = spawn(&["import", p(&input), "-o", p(&out), "--memory", "200M"]);
    let (code, stderr, latency) = interrupt_when(child, rustix::process::Signal::INT, || staged_bytes(&out) >= 8 << 20);
    eprintln!("import: SIGINT honoured in {latency:.3} s: {stderr}");
    assert_eq!(code, 130, "{stderr}");
    assert_one_line_message(&stderr);
    assert!(stderr.contains(&format!("{} not created", out.display())), "{stderr}");
    assert!(!out.exists(), "the output directory was not there before and must not be left: {:?}", debris_names(&out));
}

#[test]
fn sigterm_during_a_forced_import_keeps_the_old_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.mtx");
    write_mtx(&input, 6_000_000);
    let out = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "300", "-o", p(&out)]);
    let listing = |dir: &Path| {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let (manifest_before, names_before) = (std::fs::read(out.join("manifest.json")).unwrap(), listing(&out));
    let child = spawn(&["import", p(&input), "-o", p(&out), "--memory", "200M", "--force"]);
    let (code, stderr, latency) =
        interrupt_when(child, rustix::process::Signal::TERM, || staged_bytes(&out) >= 8 << 20);
    eprintln!("import --force: SIGTERM honoured in {latency:.3} s: {stderr}");
    assert_eq!(code, 143, "{stderr}");
    assert_one_line_message(&stderr);
    assert!(stderr.contains(&format!("{} unchanged", out.display())), "{stderr}");
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest_before);
    assert!(debris_names(&out).is_empty(), "debris left: {:?}", debris_names(&out));
    // Nothing else either (the new generation's segments, lock files): the directory as it was,
    // but for the readers' lock file that `generate`'s own open left.
    let after: Vec<String> = listing(&out).into_iter().filter(|n| !n.starts_with(".readers-")).collect();
    let before: Vec<String> = names_before.into_iter().filter(|n| !n.starts_with(".readers-")).collect();
    assert_eq!(after, before);
    let m = Matrix::open(&out).unwrap();
    m.verify().unwrap();
    assert_eq!((m.shape(), m.nnz()), ((90_000, 90_000), 5 * 90_000 - 4 * 300));
    assert!(ok(&["verify", p(&out)]).starts_with("ok:"));
}

#[test]
fn interrupted_out_of_core_transpose_and_spgemm_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    ok(&["generate", "uniform", "--rows", "1000000", "--cols", "1000000", "--nnz-per-row", "8", "-o", p(&g)]);
    let out = tmp.path().join("gt");
    let child = spawn(&["transpose", p(&g), "-o", p(&out), "--memory", "64M"]);
    let (code, stderr, latency) = interrupt_when(child, rustix::process::Signal::INT, || staged_bytes(&out) >= 8 << 20);
    eprintln!("transpose: SIGINT honoured in {latency:.3} s: {stderr}");
    assert_eq!(code, 130, "{stderr}");
    assert_one_line_message(&stderr);
    assert!(!out.exists());

    // A product whose right operand does not fit the budget: partial products in a staging area.
    let lap = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "1000", "-o", p(&lap)]);
    let prev = tmp.path().join("prev");
    ok(&["generate", "laplace2d", "--n", "20", "-o", p(&prev)]);
    let manifest_before = std::fs::read(prev.join("manifest.json")).unwrap();
    let child = spawn(&["spgemm", p(&lap), p(&lap), "-o", p(&prev), "--force", "--memory", "64M"]);
    let (code, stderr, latency) =
        interrupt_when(child, rustix::process::Signal::INT, || staged_bytes(&prev) >= 8 << 20);
    eprintln!("spgemm --force: SIGINT honoured in {latency:.3} s: {stderr}");
    assert_eq!(code, 130, "{stderr}");
    assert_one_line_message(&stderr);
    assert_eq!(std::fs::read(prev.join("manifest.json")).unwrap(), manifest_before);
    assert!(debris_names(&prev).is_empty(), "debris left: {:?}", debris_names(&prev));
    assert!(names_with(&prev, "seg_2_").is_empty(), "the unpublished generation's segments were left");
    Matrix::open(&prev).unwrap().verify().unwrap();
}

#[test]
fn interrupted_export_removes_its_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lap = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "1500", "-o", p(&lap)]);
    let mtx = tmp.path().join("lap.mtx");
    let partial = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".lap.mtx.tmp-"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let child = spawn(&["export", p(&lap), "-o", p(&mtx)]);
    let (code, stderr, latency) = interrupt_when(child, rustix::process::Signal::INT, || partial() >= 4 << 20);
    eprintln!("export: SIGINT honoured in {latency:.3} s: {stderr}");
    assert_eq!(code, 130, "{stderr}");
    assert_one_line_message(&stderr);
    assert!(!mtx.exists(), "no output file appears");
    assert_eq!(partial(), 0, "the partial file is removed");
}

/// A pid that no process has now: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn plant_staging(dir: &Path, pid: u32, bytes: usize) -> PathBuf {
    let staging = dir.join(format!(".staging-{pid}-0"));
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("run-000000"), vec![7u8; bytes]).unwrap();
    std::fs::write(staging.join("run-000001"), vec![7u8; bytes]).unwrap();
    staging
}

#[test]
fn info_and_verify_report_debris_and_clean_removes_only_the_dead_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "30", "-o", p(&m)]);
    // No debris: no line, and an empty JSON report.
    assert!(!ok(&["info", p(&m)]).contains("debris"));
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&m), "--json"]).trim()).unwrap();
    assert_eq!(info["debris"]["bytes"], 0);

    let dead = dead_pid();
    let dead_staging = plant_staging(&m, dead, 512 << 10);
    let tmp_file = m.join(format!(".manifest.json.tmp-{dead}-3"));
    std::fs::write(&tmp_file, b"{").unwrap();
    let text = ok(&["info", p(&m)]);
    let line = text.lines().find(|l| l.starts_with("debris")).unwrap_or_else(|| panic!("no debris line in {text}"));
    assert!(
        line.contains(&format!(
            "1.00 MiB in 1 staging area and 1 temporary file of a process that no longer runs (remove: sparsedisk clean {})",
            m.display()
        )),
        "{line}"
    );
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&m), "--json"]).trim()).unwrap();
    assert_eq!(info["debris"]["removable_bytes"], (1 << 20) + 1);
    assert_eq!(info["debris"]["entries"].as_array().unwrap().len(), 2);
    let entries = info["debris"]["entries"].as_array().unwrap();
    let staging = entries.iter().find(|e| e["kind"] == "staging").unwrap();
    assert_eq!(
        (staging["in_use"].as_bool(), staging["pid"].as_u64(), staging["files"].as_u64()),
        (Some(false), Some(dead as u64), Some(2))
    );
    assert!(entries.iter().any(|e| e["kind"] == "temporary" && e["bytes"] == 1));
    // verify still passes, and says so on a second line.
    let out = sparsedisk(&["verify", p(&m)]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ok:"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("debris: 1.00 MiB")), "{text}");
    let v: serde_json::Value = serde_json::from_str(ok(&["verify", p(&m), "--json"]).trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["debris"]["removable_bytes"], (1 << 20) + 1);

    // A running process's staging area (this test's own pid) is in use: reported, and kept.
    let live_staging = plant_staging(&m, std::process::id(), 4096);
    let text = ok(&["info", p(&m)]);
    assert!(
        text.contains(&format!("8.00 KiB in 1 staging area of running process {} (left alone)", std::process::id())),
        "{text}"
    );
    let cleaned = ok(&["clean", p(&m)]);
    assert!(
        cleaned.starts_with(&format!("removed 1 staging area and 1 temporary file (1.00 MiB) from {}", m.display())),
        "{cleaned}"
    );
    assert!(cleaned.contains("kept 1 staging area (8.00 KiB) of running process"), "{cleaned}");
    assert!(!dead_staging.exists() && !tmp_file.exists());
    assert!(live_staging.exists());
    assert!(!m.join(".writer.lock").exists(), "clean must not leave its lock file");
    Matrix::open(&m).unwrap().verify().unwrap();
    std::fs::remove_dir_all(&live_staging).unwrap();
    assert!(!ok(&["info", p(&m)]).contains("debris"));
    let again: serde_json::Value = serde_json::from_str(ok(&["clean", p(&m), "--json"]).trim()).unwrap();
    assert_eq!(again["removed_bytes"], 0);
    assert_eq!(ok(&["clean", p(&m)]).trim(), format!("nothing to remove in {}", m.display()));
}

#[test]
fn clean_removes_unlisted_segments_and_reports_debris_without_a_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    ok(&["generate", "laplace2d", "--n", "30", "-o", p(&m)]);
    // A crashed writer's next generation, never published.
    let seg = m.join("seg_2_000000");
    std::fs::create_dir_all(seg.join("indices_1/c")).unwrap();
    std::fs::write(seg.join("indices_1/c/0"), vec![0u8; 1000]).unwrap();
    let text = ok(&["info", p(&m)]);
    assert!(text.contains("1000 B in 1 segment directory not in the manifest that nothing uses"), "{text}");
    assert!(ok(&["clean", p(&m)]).starts_with("removed 1 segment directory not in the manifest (1000 B)"));
    assert!(!seg.exists());
    Matrix::open(&m).unwrap().verify().unwrap();

    // A first import killed outright: no manifest, only a dead process's staging area.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    plant_staging(&bare, dead_pid(), 1024);
    let err = sparsedisk(&["info", p(&bare)]);
    let stderr = String::from_utf8(err.stderr).unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(stderr.contains("holds debris: 2.00 KiB in 1 staging area"), "{stderr}");
    assert!(ok(&["clean", p(&bare)]).starts_with("removed 1 staging area (2.00 KiB)"));
    assert_eq!(std::fs::read_dir(&bare).unwrap().count(), 0);
}

#[test]
fn clean_refuses_a_directory_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    ok(&["generate", "laplace2d", "--n", "10", "-o", p(&m)]);
    let staging = plant_staging(&m, dead_pid(), 100);
    // What a writer holds while it works.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(m.join(".writer.lock"))
        .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let err = fails(&["clean", p(&m)]);
    assert!(err.contains("another process is writing it"), "{err}");
    assert!(staging.exists(), "nothing may be removed while a writer works");
    drop(lock);
    ok(&["clean", p(&m)]);
    assert!(!staging.exists());
}

#[test]
fn the_library_stops_a_build_on_request_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let options = BuildOptions {
        max_chunk_triplets: Some(1000),
        writer: WriterOptions { durable: false, ..WriterOptions::default() },
        ..BuildOptions::default()
    };
    let mut b = TripletBuilder::<f64>::new(&dir, options).unwrap();
    for i in 0..5000u64 {
        b.push(i % 97, i % 89, 1.0).unwrap();
    }
    assert!(!names_with(&dir, ".staging-").is_empty(), "the build spilled");
    sparsedisk::interrupt::request();
    let err = b.push(1, 1, 1.0).and_then(|()| {
        for i in 0..5000u64 {
            b.push(i % 97, i % 89, 1.0)?;
        }
        Ok(())
    });
    sparsedisk::interrupt::reset();
    assert!(matches!(err, Err(Error::Interrupted)), "{err:?}");
    drop(b);
    assert!(!dir.exists());
    let removed = sparsedisk::interrupt::removed();
    assert!(removed.files >= 5 && removed.bytes > 0, "{removed:?}");
}

#[test]
fn a_second_signal_exits_at_once_and_clean_removes_what_it_left() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.mtx");
    write_mtx(&input, 6_000_000);
    let out = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "100", "-o", p(&out)]);
    let manifest_before = std::fs::read(out.join("manifest.json")).unwrap();
    let mut child = Command::new(common::bin())
        .args(["import", p(&input), "-o", p(&out), "--memory", "200M", "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while staged_bytes(&out) < 8 << 20 {
        assert!(child.try_wait().unwrap().is_none(), "the import finished before it could be interrupted");
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    // Two signals sent back to back merge into one while the first is pending: a moment apart.
    std::thread::sleep(Duration::from_millis(2));
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8(output.stderr).unwrap();
    // Usually the second signal lands before the first is acted on: no cleanup, no message. (The
    // cleanup takes tens of milliseconds; if it won the race, it left nothing.)
    eprintln!("two SIGINTs: {}", if stderr.is_empty() { "exited at once" } else { "cleaned up first" });
    if stderr.is_empty() {
        let info = ok(&["info", p(&out)]);
        assert!(
            info.contains("in 1 staging area of a process that no longer runs (remove: sparsedisk clean"),
            "{info}"
        );
        assert!(ok(&["clean", p(&out)]).starts_with("removed 1 staging area"));
    } else {
        assert_one_line_message(&stderr);
    }
    assert!(debris_names(&out).is_empty(), "{:?}", debris_names(&out));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest_before);
    Matrix::open(&out).unwrap().verify().unwrap();
}
