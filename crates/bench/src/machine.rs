//! What the measurements ran on: CPU, cores, memory, kernel, the filesystem and device of the data
//! directory, and the versions of the tools. Read from `/proc` and `/sys` (Linux); fields the
//! platform does not tell are `None`.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The machine a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: Option<String>,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Total memory in bytes (`MemTotal`).
    pub ram_bytes: Option<u64>,
    /// Memory this process may use (the smaller of `MemAvailable` and its cgroup's limit).
    pub available_bytes: Option<u64>,
    /// Kernel release (`uname -r`).
    pub kernel: Option<String>,
    /// The directory holding the benchmark's data.
    pub data_dir: String,
    /// Mount point of the filesystem holding it.
    pub mount_point: Option<String>,
    /// Filesystem type (ext4, xfs, tmpfs, ...).
    pub filesystem: Option<String>,
    /// The mounted device (e.g. `/dev/vda`).
    pub device: Option<String>,
    /// Whether the device is rotational (`/sys/block/*/queue/rotational`).
    pub rotational: Option<bool>,
}

impl Machine {
    /// Describes this machine, with `data_dir`'s filesystem.
    pub fn describe(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let ram_bytes = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kib| kib * 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string());
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let mount = mount_of(&dir);
        let rotational = mount.as_ref().and_then(|m| rotational(&m.2));
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ram_bytes,
            available_bytes: sparsedisk::budget::memory_limit(),
            kernel,
            data_dir: dir.display().to_string(),
            mount_point: mount.as_ref().map(|m| m.0.clone()),
            filesystem: mount.as_ref().map(|m| m.1.clone()),
            device: mount.map(|m| m.2),
            rotational,
        }
    }

    /// One line: `AMD EPYC, 2 cores, 23.4 GiB, Linux 6.1, ext4 on /dev/vda (SSD)`.
    pub fn summary(&self) -> String {
        let disk = match self.rotational {
            Some(true) => " (rotational)",
            Some(false) => " (non-rotational)",
            None => "",
        };
        format!(
            "{}, {} cores, {} RAM, Linux {}, data on {} ({} on {}{disk})",
            self.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.cores,
            self.ram_bytes.map_or("unknown".into(), sparsedisk::units::format_bytes),
            self.kernel.as_deref().unwrap_or("?"),
            self.data_dir,
            self.filesystem.as_deref().unwrap_or("?"),
            self.device.as_deref().unwrap_or("?"),
        )
    }
}

/// `(mount point, filesystem type, source)` of the mount holding `path`: the longest mount point
/// that is a prefix of it in `/proc/self/mountinfo`.
fn mount_of(path: &Path) -> Option<(String, String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(String, String, String)> = None;
    for line in info.lines() {
        // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(mount_point), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let (Some(fstype), Some(source)) = (fields.get(dash + 1), fields.get(dash + 2)) else { continue };
        let mount_point = mount_point.replace("\\040", " ");
        let longer = match &best {
            None => true,
            Some(b) => b.0.len() <= mount_point.len(),
        };
        if longer && path.starts_with(&mount_point) {
            best = Some((mount_point, fstype.to_string(), source.to_string()));
        }
    }
    best
}

/// Whether the block device behind `source` (`/dev/vda1`, `/dev/nvme0n1p2`) is rotational.
fn rotational(source: &str) -> Option<bool> {
    let name = Path::new(source).file_name()?.to_str()?;
    // A partition's queue lives under its disk: strip the partition suffix until a match.
    let mut candidate = name.to_string();
    while !candidate.is_empty() {
        if let Ok(s) = std::fs::read_to_string(format!("/sys/block/{candidate}/queue/rotational")) {
            return Some(s.trim() == "1");
        }
        candidate.pop();
    }
    None
}

/// Versions of the tools a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Versions {
    /// This crate's version.
    pub sparsedisk: String,
    /// `rustc --version` of the compiler on `PATH`, if any (the one that built this binary is not
    /// recorded in it).
    pub rustc_on_path: Option<String>,
    /// sprs (the in-process baseline), as locked when this binary was built.
    pub sprs: String,
    /// Python, when the baselines ran.
    pub python: Option<String>,
    /// numpy.
    pub numpy: Option<String>,
    /// scipy.
    pub scipy: Option<String>,
    /// fast_matrix_market.
    pub fast_matrix_market: Option<String>,
}

impl Versions {
    /// This binary's versions; the Python ones are filled in by the caller that found Python.
    pub fn detect() -> Versions {
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Versions {
            sparsedisk: env!("CARGO_PKG_VERSION").to_string(),
            rustc_on_path: rustc,
            sprs: "0.11".to_string(),
            ..Versions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_machine() {
        let m = Machine::describe(Path::new("."));
        assert!(m.cores >= 1);
        if cfg!(target_os = "linux") {
            assert!(m.ram_bytes.is_some() && m.kernel.is_some() && m.filesystem.is_some(), "{m:?}");
        }
        assert!(m.summary().contains("cores"));
    }
}
