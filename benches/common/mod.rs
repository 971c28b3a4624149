//! Helpers the benchmark programs share: running commands that print JSON, the anchors' Python, and
//! spreads of repeated measurements.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python that runs `anchors.py`: `SPARSEDISK_PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A tool of `../shared/tools` (`memcap`, `evict`, `anchors/anchors.py`).
pub fn shared_tool(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools").join(name)
}

/// `../shared/tools/anchors/anchors.py`.
pub fn anchors() -> PathBuf {
    shared_tool("anchors/anchors.py")
}

/// Whether the anchors can run: the script exists and the Python has scipy and fast_matrix_market.
pub fn has_scipy() -> bool {
    anchors().exists()
        && Command::new(python())
            .args(["-c", "import scipy, fast_matrix_market"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Runs `cmd`, which must succeed; returns its last stdout line parsed as JSON and its stderr.
pub fn run_json(cmd: &mut Command, what: &str) -> Result<(Value, String), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {stderr}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or(format!("{what} printed nothing"))?;
    let value = serde_json::from_str(line).map_err(|e| format!("{what}: {e}: {line}"))?;
    Ok((value, stderr))
}

/// A JSON number, NaN when absent.
pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Median, min and max of the finite values of `xs` (NaN when there are none).
pub fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}
