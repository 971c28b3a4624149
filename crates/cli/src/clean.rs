//! `sparsedisk clean DIR [--json]`, and the debris line that `info` and `verify` print.

use crate::output::{emit, emit_json};
use clap::Args;
use sparsedisk::debris::{self, Debris, DebrisEntry, DebrisKind};
use sparsedisk::units::format_bytes;
use sparsedisk::Result;
use std::path::{Path, PathBuf};

/// `sparsedisk clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Matrix directory.
    pub dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CleanArgs) -> Result<()> {
    let report = debris::clean(&args.dir)?;
    if args.json {
        return emit_json(&serde_json::json!({
            "path": args.dir.display().to_string(),
            "removed": report.removed,
            "removed_bytes": report.removed_bytes(),
            "kept": report.kept,
            "kept_bytes": report.kept_bytes(),
        }));
    }
    let removed: Vec<&DebrisEntry> = report.removed.iter().collect();
    let kept: Vec<&DebrisEntry> = report.kept.iter().collect();
    let mut text = if removed.is_empty() {
        format!("nothing to remove in {}", args.dir.display())
    } else {
        format!("removed {} ({}) from {}", count(&removed), format_bytes(report.removed_bytes()), args.dir.display())
    };
    if !kept.is_empty() {
        text += &format!("; kept {} ({}) {}", count(&kept), format_bytes(report.kept_bytes()), in_use_reason(&kept));
    }
    emit(&text)
}

/// One line on `dir`'s debris (`None` when there is none): its size, what it is, and how to remove
/// it, e.g. `1.10 GiB in 1 staging area of a process that no longer runs (remove: sparsedisk clean
/// lap)`.
pub fn debris_line(dir: &Path, d: &Debris) -> Option<String> {
    let removable: Vec<&DebrisEntry> = d.removable().collect();
    let in_use: Vec<&DebrisEntry> = d.in_use().collect();
    let bytes = |e: &[&DebrisEntry]| format_bytes(e.iter().map(|e| e.bytes).sum());
    let mut parts = Vec::new();
    if !removable.is_empty() {
        let whose = if removable.iter().all(|e| e.kind != DebrisKind::Unlisted) {
            if distinct_pids(&removable).len() > 1 {
                "of processes that no longer run"
            } else {
                "of a process that no longer runs"
            }
        } else {
            "that nothing uses"
        };
        parts.push(format!(
            "{} in {} {whose} (remove: sparsedisk clean {})",
            bytes(&removable),
            count(&removable),
            dir.display()
        ));
    }
    if !in_use.is_empty() {
        parts.push(format!("{} in {} {}", bytes(&in_use), count(&in_use), in_use_reason(&in_use)));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `dir`'s debris as JSON: totals, the entries, and the command that removes what nothing uses.
pub fn debris_json(dir: &Path, d: &Debris) -> serde_json::Value {
    serde_json::json!({
        "bytes": d.bytes(),
        "removable_bytes": d.removable().map(|e| e.bytes).sum::<u64>(),
        "in_use_bytes": d.in_use().map(|e| e.bytes).sum::<u64>(),
        "entries": d.entries,
        "remove_with": format!("sparsedisk clean {}", dir.display()),
    })
}

/// "1 staging area", "2 staging areas and 1 temporary file", ...
fn count(entries: &[&DebrisEntry]) -> String {
    let kinds = [
        (DebrisKind::Staging, "staging area", "staging areas"),
        (DebrisKind::Temporary, "temporary file", "temporary files"),
        (DebrisKind::Unlisted, "segment directory not in the manifest", "segment directories not in the manifest"),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter_map(|&(kind, one, many)| {
            let n = entries.iter().filter(|e| e.kind == kind).count();
            (n > 0).then(|| format!("{n} {}", if n == 1 { one } else { many }))
        })
        .collect();
    parts.join(" and ")
}

/// Why entries are in use: their running processes, or a reader or writer at work.
fn in_use_reason(entries: &[&DebrisEntry]) -> String {
    let pids = distinct_pids(entries);
    let mut reasons = Vec::new();
    if !pids.is_empty() {
        let list = pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        reasons.push(format!("of running process{} {list}", if pids.len() > 1 { "es" } else { "" }));
    }
    if entries.iter().any(|e| e.pid.is_none()) {
        reasons.push("held by a reader or writer at work".to_string());
    }
    format!("{} (left alone)", reasons.join(", and "))
}

fn distinct_pids(entries: &[&DebrisEntry]) -> Vec<u32> {
    let mut pids: Vec<u32> = entries.iter().filter_map(|e| e.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
