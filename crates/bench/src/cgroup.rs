//! Memory caps: a child process run inside a fresh memory cgroup whose limit counts anonymous memory
//! and page cache together, the way a machine with that much RAM would run it. The same approach as
//! `../shared/tools/memcap`: a cgroup directory made at the root of the memory hierarchy (v2:
//! `/sys/fs/cgroup/NAME` with `memory.max`; v1: `/sys/fs/cgroup/memory/NAME` with
//! `memory.limit_in_bytes`), swap disallowed, the child moved in before it runs anything (a `sh`
//! that writes its own pid to `cgroup.procs`, then `exec`s the command, so no unsafe `pre_exec` is
//! needed), the peak and the limit hits read after it exits, and the directory removed.
//!
//! Creating a cgroup needs root (or a delegated hierarchy). When it cannot be made,
//! [`MemoryCap::create`] says why, and the caller records the cap as not applied with that reason:
//! there is no silent fallback.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which cgroup interface holds the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A memory cgroup with a limit, removed on drop.
#[derive(Debug)]
pub struct MemoryCap {
    dir: PathBuf,
    version: Version,
    bytes: u64,
}

/// What a capped run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapOutcome {
    /// Peak usage of the cgroup (page cache included), if the kernel tells.
    pub peak_bytes: Option<u64>,
    /// Times the cgroup hit its limit, if the kernel tells (v1 `memory.failcnt`, v2 `max` in
    /// `memory.events`). Some kernels leave v1's `failcnt` at 0 even when the cgroup reclaims at its
    /// limit (6.18 does: a 200 MB write under a 64 MiB cap, and a 100 MB allocation the OOM killer
    /// ended, both left it at 0), so a peak at the limit says more there.
    pub limit_hits: Option<u64>,
    /// Processes of the cgroup the OOM killer ended (v1 `oom_kill` in `memory.oom_control`, v2 in
    /// `memory.events`), if the kernel tells.
    pub oom_kills: Option<u64>,
}

/// Distinguishes the cgroups one process creates.
static COUNTER: AtomicU64 = AtomicU64::new(0);

impl MemoryCap {
    /// Creates a cgroup limited to `bytes`.
    ///
    /// # Errors
    ///
    /// Why no cap could be made (no memory controller, not permitted, ...), as a sentence.
    pub fn create(bytes: u64) -> std::result::Result<MemoryCap, String> {
        let name = format!("sparsedisk_bench_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, version) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), Version::V1)
        } else if std::fs::read_to_string(v2).is_ok_and(|c| c.split_whitespace().any(|w| w == "memory")) {
            (Path::new("/sys/fs/cgroup").join(&name), Version::V2)
        } else {
            return Err("no memory cgroup controller on this machine (neither cgroup v1 memory nor v2)".into());
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create the memory cgroup {}: {e}", dir.display()))?;
        let cap = MemoryCap { dir, version, bytes };
        let (limit, swap) = match version {
            Version::V1 => ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
            Version::V2 => ("memory.max", "memory.swap.max"),
        };
        std::fs::write(cap.dir.join(limit), bytes.to_string())
            .map_err(|e| format!("cannot set {} in {}: {e}", limit, cap.dir.display()))?;
        // No swap: a cap the process could swap around would not be a cap. Absent without swap
        // accounting, which is fine when there is no swap.
        let swap_value = if version == Version::V1 { bytes.to_string() } else { "0".to_string() };
        let _ = std::fs::write(cap.dir.join(swap), swap_value);
        Ok(cap)
    }

    /// The limit in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A command that runs `program args...` inside this cgroup: `sh` moves itself in, then becomes
    /// the program, so everything the program allocates is charged to the cap.
    pub fn command<S: AsRef<OsStr>>(&self, program: impl AsRef<OsStr>, args: impl IntoIterator<Item = S>) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo $$ > \"$0\" && exec \"$@\"").arg(self.dir.join("cgroup.procs")).arg(program).args(args);
        c
    }

    /// Peak usage and limit hits so far (read after the process exits).
    pub fn outcome(&self) -> CapOutcome {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).ok();
        // A `KEY VALUE` line of a flat-keyed file such as memory.events.
        let field = |f: &str, key: &str| {
            read(f).and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').and_then(|v| v.trim().parse().ok()))
            })
        };
        match self.version {
            Version::V1 => CapOutcome {
                peak_bytes: read("memory.max_usage_in_bytes").and_then(|s| s.trim().parse().ok()),
                // With swap accounting the memory+swap counter can hit the (equal) limit first.
                limit_hits: match (read("memory.failcnt"), read("memory.memsw.failcnt")) {
                    (Some(m), sw) => m
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .map(|m| m + sw.and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0)),
                    (None, _) => None,
                },
                oom_kills: field("memory.oom_control", "oom_kill"),
            },
            Version::V2 => CapOutcome {
                peak_bytes: read("memory.peak").and_then(|s| s.trim().parse().ok()),
                limit_hits: field("memory.events", "max"),
                oom_kills: field("memory.events", "oom_kill"),
            },
        }
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        // A cgroup can be removed once its processes are gone; their exit may lag a moment.
        for _ in 0..10 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where caps can be made (root with a memory controller), a capped child sees its own cgroup and
    /// the peak is reported; elsewhere the error says why.
    #[test]
    fn caps_a_child_or_says_why() {
        match MemoryCap::create(256 << 20) {
            Ok(cap) => {
                let out = cap.command("cat", ["/proc/self/cgroup"]).output().unwrap();
                assert!(out.status.success());
                let name = cap.dir().file_name().unwrap().to_str().unwrap().to_string();
                assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
                assert!(cap.outcome().peak_bytes.is_some());
                // The kernel kills a child that outgrows its cap, and says so (where it counts).
                let small = MemoryCap::create(32 << 20).unwrap();
                let out = small.command("dd", ["if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]).output().unwrap();
                assert!(!out.status.success());
                if let Some(kills) = small.outcome().oom_kills {
                    assert!(kills >= 1, "{:?}", small.outcome());
                }
                let dir = cap.dir().to_path_buf();
                drop(cap);
                assert!(!dir.exists());
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    }
}
