//! Full disks: `sparsedisk import`, `spgemm`, `transpose` and `add` writing onto a filesystem that runs
//! out of space must fail with one clear line naming the file and the cause ("No space left on
//! device"), or refuse up front when even the row pointers cannot fit; never die of a signal (no
//! SIGBUS: nothing is written through a writable map) or a panic; and leave no partial matrix: the
//! output directory is absent again, or (`--force`) holds exactly the previous matrix, verified, with
//! no staging area, no unlisted segment and no temporary manifest left, and on tmpfs every byte the
//! failed command wrote is freed again (exact block accounting).
//!
//! How: the test re-runs itself in a private mount namespace (`unshare --mount`, or `unshare --user
//! --map-root-user --mount` without root), so its mounts vanish with it even if it is killed. There it
//! mounts a tmpfs and, when loop devices can be mounted (root), a small ext4 image, on which the
//! writer's chunk files really go through direct I/O (`O_DIRECT`); tmpfs accepts `O_DIRECT` on recent
//! kernels and serves it from the page cache. The free space of each case is set by a preallocated
//! ballast file. Per operation, a bisection finds the least free space at which the command
//! succeeds (every probe is itself a checked case), then a sweep below it makes the failure land at
//! every stage: the sorted runs of the external sort (import, transpose), the segment chunk files,
//! the segment metadata, and the manifest's publication (the last page). A ramfs, which refuses
//! `O_DIRECT`, checks the writer's fallback to buffered writes gives the same matrices.
//!
//! When no namespace can mount, the test prints why it is skipped, and fails instead if
//! `SPARSEDISK_REQUIRE_FULL_DISK=1` (which `.ci/test` sets when it can mount).

mod common;

use common::{copy_dir, p};
use sparsedisk::format::MANIFEST_FILE;
use sparsedisk::Matrix;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set in the re-run inside the mount namespace.
const INNER: &str = "SPARSEDISK_FULL_DISK_INNER";
/// `1`: fail instead of skipping when no namespace can mount.
const REQUIRE: &str = "SPARSEDISK_REQUIRE_FULL_DISK";
const TEST_NAME: &str = "full_disks_fail_cleanly_and_leave_no_partial_matrix";
const PAGE: u64 = 4096;

#[test]
fn full_disks_fail_cleanly_and_leave_no_partial_matrix() {
    if std::env::var_os(INNER).is_some() {
        inside_private_mounts();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let probe = tempfile::tempdir().unwrap();
    let namespaces: [&[&str]; 2] = [&["--mount"], &["--user", "--map-root-user", "--mount"]];
    for ns in namespaces {
        // Can this kind of namespace mount a tmpfs? (The mount disappears with the namespace.)
        let can_mount = Command::new("unshare")
            .args(ns)
            .args(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", p(probe.path())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !can_mount {
            continue;
        }
        let status = Command::new("unshare")
            .args(ns)
            .arg(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
            .env(INNER, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the full-disk test failed inside its mount namespace {ns:?} (output above)");
        return;
    }
    let why = "full_disk: SKIPPED: no mount namespace here can mount a tmpfs (needs util-linux `unshare` and root \
               or unprivileged user namespaces)";
    assert!(std::env::var(REQUIRE).as_deref() != Ok("1"), "{why}, and {REQUIRE}=1");
    eprintln!("{why}");
}

/// Runs `cmd args`, which must succeed.
fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A mount made by this test, unmounted when dropped (the namespace would drop it at exit anyway; this
/// lets the temporary directory under it be removed).
struct Mounted {
    root: PathBuf,
    kind: &'static str,
    /// tmpfs accounts blocks exactly: a failed command must give back every block it took.
    exact: bool,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = sh("umount", &[p(&self.root)]);
    }
}

impl Mounted {
    fn mount(root: PathBuf, kind: &'static str, args: &[&str], exact: bool) -> Option<Mounted> {
        fs::create_dir_all(&root).unwrap();
        let mut all: Vec<&str> = args.to_vec();
        all.push(p(&root));
        sh("mount", &all).then_some(Mounted { root, kind, exact })
    }

    fn statvfs(&self) -> rustix::fs::StatVfs {
        rustix::fs::statvfs(&self.root).unwrap()
    }

    /// Bytes the filesystem has in use.
    fn used(&self) -> u64 {
        let st = self.statvfs();
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }

    fn free(&self) -> u64 {
        let st = self.statvfs();
        st.f_bavail * st.f_frsize
    }

    /// Empties the filesystem, then flushes it, so that freed blocks are counted free again (ext4
    /// releases them at a journal commit).
    fn clear(&self) {
        for entry in fs::read_dir(&self.root).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "lost+found") {
                continue;
            }
            if path.is_dir() {
                fs::remove_dir_all(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
        self.sync();
    }

    fn sync(&self) {
        let dir = fs::File::open(&self.root).unwrap();
        rustix::fs::syncfs(&dir).unwrap();
    }

    /// Leaves about `free` bytes free (to the block) by preallocating a ballast file.
    ///
    /// ext4 needs extent-tree blocks besides the data blocks, more or fewer depending on how
    /// fragmented the free space is, so preallocating nearly all of it can fail with ENOSPC: then
    /// the ballast is made a page smaller until it fits (leaving a few pages more free than asked,
    /// which the sweep allows on filesystems whose accounting is not exact).
    fn leave_free(&self, free: u64) {
        let now = self.free();
        let path = self.root.join("ballast");
        let mut len = now.saturating_sub(free);
        let mut shrunk = 0;
        while len > 0 {
            let ballast = fs::File::create(&path).unwrap();
            match rustix::fs::fallocate(&ballast, rustix::fs::FallocateFlags::empty(), 0, len) {
                Ok(()) => {
                    if shrunk > 0 {
                        eprintln!("full_disk: {}: ballast made {shrunk} pages smaller to fit", self.kind);
                    }
                    break;
                }
                Err(rustix::io::Errno::NOSPC) if !self.exact && shrunk < 1024 => {
                    // A failed fallocate may keep what it allocated: start again from nothing.
                    drop(ballast);
                    fs::remove_file(&path).unwrap();
                    self.sync();
                    len = len.saturating_sub(PAGE);
                    shrunk += 1;
                }
                Err(e) => panic!("{}: a ballast of {len} bytes ({now} free): {e}", self.kind),
            }
        }
        self.sync();
    }
}

/// What a matrix's segments hold, by checksum: equal for equal matrices written with equal options,
/// whatever their generation.
type Print = Vec<(u64, u64, u64, Vec<String>)>;

fn print_of(dir: &Path) -> Print {
    let m = Matrix::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    m.verify().unwrap_or_else(|e| panic!("{} does not verify: {e}", dir.display()));
    m.segments().iter().map(|s| (s.start, s.end, s.nnz, s.files().map(|f| f.xxh3.clone()).collect())).collect()
}

/// One operation under test: its arguments around the output directory.
struct Op {
    name: &'static str,
    args: Vec<String>,
    /// The matrix it makes, written on an ordinary filesystem.
    reference: Print,
}

impl Op {
    fn command(&self, out: &Path, force: bool) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(["-o".to_string(), p(out).to_string(), "--quiet".to_string()]);
        if force {
            args.push("--force".to_string());
        }
        args
    }
}

/// Where a failure landed, from the file its message names.
fn stage(msg: &str) -> &'static str {
    if msg.contains("row pointers alone") {
        "refused up front (free space below the row pointers' size)"
    } else if msg.contains("error creating") {
        "creating a directory or the writer lock (ext4 directories take blocks)"
    } else if msg.contains(".staging-") {
        "sorted run of the external sort"
    } else if msg.contains(".manifest.json.tmp") || msg.contains("manifest") {
        "manifest publication"
    } else if msg.contains("zarr.json") {
        "segment or group metadata"
    } else if msg.contains("/c/0") {
        "segment chunk file"
    } else {
        "other"
    }
}

#[derive(Default)]
struct Tally {
    runs: u64,
    succeeded: u64,
    failed: u64,
    /// (filesystem, operation, stage) -> failures.
    stages: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// The last failure's message.
    last_error: String,
}

struct Case<'a> {
    fs: &'a Mounted,
    op: &'a Op,
    previous: &'a Path,
    previous_print: &'a Print,
}

impl Case<'_> {
    /// Runs the operation with about `free` bytes free, `--force` over the previous matrix or into a
    /// fresh directory, and checks the outcome. Returns whether it succeeded.
    fn run(&self, free: u64, force: bool, tally: &mut Tally) -> bool {
        let (fs, op) = (self.fs, self.op);
        fs.clear();
        let out = fs.root.join("out");
        if force {
            copy_dir(self.previous, &out);
            assert_eq!(&print_of(&out), self.previous_print);
        }
        fs.leave_free(free);
        let used_before = fs.used();
        let args = op.command(&out, force);
        let output = Command::new(common::bin()).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = format!("{} {} with {free} bytes free (force: {force})", fs.kind, op.name);
        assert!(output.status.signal().is_none(), "{what}: killed by signal {:?}: {stderr}", output.status.signal());
        tally.runs += 1;
        match output.status.code() {
            Some(0) => {
                assert_eq!(print_of(&out), op.reference, "{what}: succeeded with a different matrix");
                tally.succeeded += 1;
                true
            }
            Some(1) => {
                assert_eq!(stderr.lines().count(), 1, "{what}: one line expected: {stderr}");
                let msg = stderr.trim_end();
                assert!(msg.starts_with("sparsedisk: error: "), "{what}: {msg}");
                let stage = stage(msg);
                let names_file = msg.contains(p(&out));
                let clear = (msg.contains("No space left on device") && names_file)
                    || (stage.starts_with("refused") && msg.contains("free"));
                assert!(clear && stage != "other", "{what}: not a clear no-space error: {msg}");
                self.check_nothing_left(&out, force, &what, msg);
                if fs.exact {
                    assert_eq!(fs.used(), used_before, "{what}: blocks not given back after: {msg}");
                }
                tally.failed += 1;
                tally.last_error = format!("{msg} ({free} bytes free, force: {force})");
                *tally.stages.entry((fs.kind, op.name, stage)).or_default() += 1;
                false
            }
            code => panic!("{what}: exit code {code:?} (a panic?): {stderr}"),
        }
    }

    /// After a failure: no output directory (fresh), or exactly the previous matrix and nothing else
    /// of sparsedisk's (`--force`); nothing else on the filesystem but the ballast.
    fn check_nothing_left(&self, out: &Path, force: bool, what: &str, msg: &str) {
        let mut top: Vec<String> = fs::read_dir(&self.fs.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.retain(|n| n != "ballast" && n != "lost+found");
        if !force {
            assert!(top.is_empty(), "{what}: left {top:?} after: {msg}");
            return;
        }
        assert_eq!(top, ["out"], "{what}: after: {msg}");
        assert_eq!(&print_of(out), self.previous_print, "{what}: the previous matrix changed after: {msg}");
        let listed: Vec<String> = Matrix::open(out).unwrap().segments().iter().map(|s| s.name.clone()).collect();
        for entry in fs::read_dir(out).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let ours = name == MANIFEST_FILE
                || name == "zarr.json"
                || name == ".writer.lock"
                || (name.starts_with(".readers-") && name.ends_with(".lock"))
                || listed.contains(&name);
            assert!(ours, "{what}: {name:?} left in the output directory after: {msg}");
        }
    }

    /// Bisects the least free space (to the page) at which the operation succeeds, checking every
    /// probe; then sweeps below it so that failures land at every stage, fresh and with `--force`.
    fn sweep(&self, tally: &mut Tally) {
        let (mut lo, mut hi) = (0u64, self.fs.free() / PAGE - 64);
        assert!(
            self.run(hi * PAGE, true, tally),
            "{} {}: fails with the whole filesystem free: {}",
            self.fs.kind,
            self.op.name,
            tally.last_error
        );
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.run(mid * PAGE, true, tally) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let least = hi;
        for k in 0..8 {
            self.run(least * k / 8 * PAGE, k % 2 == 0, tally);
        }
        for j in 1..=4 {
            for force in [false, true] {
                self.run((least - j) * PAGE, force, tally);
            }
        }
        // tmpfs allocates deterministically, so the bisected size must succeed again; ext4's block
        // allocation (directories, extents, the journal) varies a little from run to run, so there
        // it is one more checked case.
        let again = self.run(least * PAGE, true, tally);
        assert!(
            again || !self.fs.exact,
            "{} {}: fails with the space it succeeded with: {}",
            self.fs.kind,
            self.op.name,
            tally.last_error
        );
        eprintln!("full_disk: {} {}: succeeds from {} KiB free", self.fs.kind, self.op.name, least * PAGE / 1024);
    }
}

fn bin(args: &[&str]) {
    let out = Command::new(common::bin()).args(args).arg("--quiet").output().unwrap();
    assert!(out.status.success(), "sparsedisk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn inside_private_mounts() {
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name);
    // Inputs, on the ordinary filesystem. u: 1.4 M entries, more than the smallest import or
    // transpose budget sorts in memory, so both spill sorted runs.
    bin(&["generate", "uniform", "--rows", "200000", "--cols", "200000", "--nnz-per-row", "7", "-o", p(&t("u"))]);
    bin(&["export", p(&t("u")), "-o", p(&t("u.mtx"))]);
    bin(&["generate", "laplace2d", "--n", "200", "-o", p(&t("lap"))]);
    bin(&["generate", "rmat", "--scale", "14", "--edge-factor", "8", "-o", p(&t("g"))]);
    bin(&["transpose", p(&t("g")), "-o", p(&t("gt"))]);
    bin(&["export", p(&t("g")), "-o", p(&t("g.mtx"))]);
    bin(&["generate", "laplace2d", "--n", "7", "-o", p(&t("previous"))]);
    let previous_print = print_of(&t("previous"));

    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let specs: Vec<(&'static str, Vec<String>)> = vec![
        // Column bands of a file exported by rows: the input is not in layout order, so it spills runs.
        (
            "import",
            s(&[
                "import",
                p(&t("u.mtx")),
                "--memory",
                "128M",
                "--threads",
                "1",
                "--segment-size",
                "4M",
                "--layout",
                "csc",
            ]),
        ),
        // Row bands of the same file: sorted input goes straight into the matrix, chunk by chunk.
        ("import sorted", s(&["import", p(&t("u.mtx")), "--memory", "128M", "--threads", "1", "--segment-size", "4M"])),
        // The same without spilling: the disk fills up in the order the files are written, up to
        // the manifest (with runs, the merge's peak use is above the end's).
        (
            "import in memory",
            s(&["import", p(&t("g.mtx")), "--memory", "192M", "--threads", "1", "--segment-size", "512K"]),
        ),
        ("spgemm", s(&["spgemm", p(&t("lap")), p(&t("lap")), "--segment-size", "1M"])),
        ("transpose", s(&["transpose", p(&t("u")), "--memory", "64M", "--segment-size", "4M"])),
        ("add", s(&["add", p(&t("g")), p(&t("gt")), "--segment-size", "1M"])),
    ];
    let ops: Vec<Op> = specs
        .into_iter()
        .map(|(name, args)| {
            let reference = t(&format!("ref-{name}"));
            let mut full = args.clone();
            full.extend(["-o".to_string(), p(&reference).to_string()]);
            bin(&full.iter().map(String::as_str).collect::<Vec<_>>());
            Op { name, args, reference: print_of(&reference) }
        })
        .collect();

    let mut tally = Tally::default();
    {
        let fs = Mounted::mount(t("tmpfs"), "tmpfs", &["-t", "tmpfs", "-o", "size=96m", "tmpfs"], true)
            .expect("this namespace mounted a tmpfs in the probe");
        for op in &ops {
            Case { fs: &fs, op, previous: &t("previous"), previous_print: &previous_print }.sweep(&mut tally);
        }
    }
    // Direct I/O for real: ext4 on a loop device (root only; not in a user namespace).
    let image = t("ext4.img");
    fs::File::create(&image).unwrap().set_len(96 << 20).unwrap();
    let ext4 = sh("mkfs.ext4", &["-q", "-F", "-m", "0", "-b", "4096", p(&image)])
        .then(|| Mounted::mount(t("ext4"), "ext4", &["-o", "loop", p(&image)], false))
        .flatten();
    match &ext4 {
        Some(fs) => {
            for op in ops.iter().filter(|o| ["import", "import in memory", "spgemm"].contains(&o.name)) {
                Case { fs, op, previous: &t("previous"), previous_print: &previous_print }.sweep(&mut tally);
            }
        }
        None => eprintln!("full_disk: ext4 loop image skipped: mkfs.ext4 or a loop mount is not available here"),
    }
    drop(ext4);
    // ramfs refuses O_DIRECT (and never fills up): the writer's buffered fallback writes the same files.
    match Mounted::mount(t("ramfs"), "ramfs", &["-t", "ramfs", "ramfs"], false) {
        Some(fs) => {
            for op in &ops {
                let out = fs.root.join(op.name);
                let status = Command::new(common::bin()).args(op.command(&out, false)).stdout(Stdio::null()).status();
                assert!(status.unwrap().success(), "ramfs {}", op.name);
                assert_eq!(print_of(&out), op.reference, "ramfs {}", op.name);
            }
            eprintln!(
                "full_disk: ramfs (no O_DIRECT, buffered fallback): {} operations gave the reference matrices",
                ops.len()
            );
        }
        None => eprintln!("full_disk: ramfs skipped: cannot mount it here"),
    }

    for ((fs, op, stage), n) in &tally.stages {
        eprintln!("full_disk: {fs} {op}: {n} failures in: {stage}");
    }
    eprintln!(
        "full_disk: {} runs onto full filesystems ({} failed cleanly, {} succeeded with the reference matrix) in {:.1} s",
        tally.runs,
        tally.failed,
        tally.succeeded,
        start.elapsed().as_secs_f64()
    );
    // The sweep reached every stage where a command writes.
    let reached =
        |op: &str, stage: &str| tally.stages.iter().any(|((f, o, s), _)| *f == "tmpfs" && *o == op && *s == stage);
    for op in ["import", "transpose"] {
        assert!(reached(op, "sorted run of the external sort"), "{op}: no failure in a sorted run");
    }
    for op in ["import", "import sorted", "import in memory", "spgemm", "transpose", "add"] {
        assert!(reached(op, "segment chunk file"), "{op}: no failure in a chunk file");
    }
    // Metadata is a few KiB per segment: the sweeps of the small outputs land in it every time, those
    // of the 48 MiB ones (import with spills, transpose) only sometimes.
    for op in ["import in memory", "spgemm", "add"] {
        assert!(reached(op, "segment or group metadata"), "{op}: no failure in metadata");
    }
    for op in ["import in memory", "spgemm", "add"] {
        assert!(reached(op, "manifest publication"), "{op}: no failure at the manifest");
    }
}
