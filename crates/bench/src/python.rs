//! The Python baselines: scipy, numpy.memmap + scipy and fast_matrix_market, timed by the project's
//! own script (`crates/bench/src/baselines.py`, carried inside this binary and written next to the report
//! when used), on raw CSR arrays the harness writes from a matrix ([`write_raw_csr`]).
//!
//! Python is `SPARSEDISK_PYTHON`, else `python3`; the baselines run when it imports numpy and scipy,
//! and are skipped with the reason otherwise.

use sparsedisk::element::{Indices, Values};
use sparsedisk::error::{Error, Result};
use sparsedisk::matrix::Matrix;
use sparsedisk::Layout;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The baseline script's text.
pub const SCRIPT: &str = include_str!("baselines.py");

/// The Python interpreter to try: `SPARSEDISK_PYTHON`, or `python3`.
pub fn interpreter() -> String {
    std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A Python that can run the baselines, and the script written to disk.
#[derive(Debug, Clone)]
pub struct Python {
    /// The interpreter.
    pub interpreter: String,
    /// The script's path.
    pub script: PathBuf,
    /// Python's version.
    pub python: String,
    /// numpy's version.
    pub numpy: String,
    /// scipy's version.
    pub scipy: String,
    /// fast_matrix_market's version, if it is installed.
    pub fast_matrix_market: Option<String>,
}

impl Python {
    /// Writes the script into `dir` and checks that [`interpreter`] runs it (numpy and scipy
    /// importable).
    ///
    /// # Errors
    ///
    /// Why the baselines cannot run, as a sentence.
    pub fn detect(dir: &Path) -> std::result::Result<Python, String> {
        let script = dir.join("baselines.py");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let interpreter = interpreter();
        let out = Command::new(&interpreter)
            .arg(&script)
            .arg("versions")
            .output()
            .map_err(|e| format!("{interpreter} cannot be run ({e}); set SPARSEDISK_PYTHON"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or("").trim().to_string();
            return Err(format!("{interpreter} cannot import numpy and scipy ({last})"));
        }
        let v = last_json(&out.stdout).ok_or_else(|| format!("{interpreter}: the baseline script printed no JSON"))?;
        let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
        Ok(Python {
            python: s("python"),
            numpy: s("numpy"),
            scipy: s("scipy"),
            fast_matrix_market: v["fast_matrix_market"].as_str().map(String::from),
            interpreter,
            script,
        })
    }

    /// A command running `baselines.py ARGS...`.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let mut c = Command::new(&self.interpreter);
        c.arg(&self.script).args(args);
        c
    }

    /// The program and leading arguments of [`command`](Self::command), for wrapping (memory caps).
    pub fn argv(&self) -> (String, Vec<std::ffi::OsString>) {
        (self.interpreter.clone(), vec![self.script.clone().into_os_string()])
    }
}

/// The last line of `stdout` parsed as JSON.
pub fn last_json(stdout: &[u8]) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.lines().rev().find(|l| !l.trim().is_empty())?).ok()
}

/// Runs `cmd`; returns its last stdout line as JSON.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `what` when it cannot start, fails (with its stderr's last line),
/// or prints no JSON.
pub fn run_json(cmd: &mut Command, what: &str) -> Result<serde_json::Value> {
    run_json_within(cmd, what, None)
}

/// Reads a child's piped standard output and error to their ends on two threads, so that a chatty
/// child never blocks on a full pipe while the caller waits for it; join the handles for the bytes.
pub(crate) fn drain_pipes(
    child: &mut std::process::Child,
) -> (std::thread::JoinHandle<Vec<u8>>, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    (drain(child.stdout.take()), drain(child.stderr.take()))
}

/// As [`run_json`], killing the command after `limit` (a process thrashing under a memory cap can
/// take hours; the report says it timed out instead).
///
/// # Errors
///
/// As [`run_json`], and [`Error::InvalidInput`] when the time limit is reached.
pub fn run_json_within(cmd: &mut Command, what: &str, limit: Option<Duration>) -> Result<serde_json::Value> {
    let cannot = |e: std::io::Error| Error::invalid(format!("{what}: cannot run: {e}"));
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(cannot)?;
    let (stdout, stderr) = drain_pipes(&mut child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(cannot)? {
            break status;
        }
        if limit.is_some_and(|l| started.elapsed() > l) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::invalid(format!(
                "{what} did not finish within {:.0} s and was stopped",
                limit.map_or(0.0, |l| l.as_secs_f64())
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(Error::invalid(format!("{what} failed ({}): {}", out.status, tail.join(" / "))));
    }
    last_json(&out.stdout).ok_or_else(|| Error::invalid(format!("{what} printed no JSON")))
}

/// The samples (`"samples"`: seconds) of a baseline's JSON.
pub fn samples(v: &serde_json::Value) -> Vec<f64> {
    v["samples"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default()
}

/// Writes a CSR matrix's arrays as the raw files the baseline script reads (`indptr.i32`, or
/// `indptr.i64` past 2^31 - 1 entries, `indices.i32`, `data.f64`, `shape.json`; the layout of `numpy.memmap` answers), streaming one
/// segment at a time. Returns the bytes of the three arrays.
///
/// # Errors
///
/// [`Error::InvalidInput`] for a CSC matrix or more than 2^31 - 1 columns (scipy's int32 indices);
/// errors of mapping a segment; [`Error::Io`].
pub fn write_raw_csr(m: &Matrix, dir: &Path) -> Result<u64> {
    if m.layout() != Layout::Csr {
        return Err(Error::invalid("the baselines read CSR matrices"));
    }
    if m.cols() > i32::MAX as u64 {
        return Err(Error::invalid("the baselines' int32 column indices cannot hold this matrix's columns"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating a directory", e))?;
    let open = |name: &str| -> Result<(PathBuf, BufWriter<std::fs::File>)> {
        let p = dir.join(name);
        let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, "creating", e))?;
        Ok((p.clone(), BufWriter::with_capacity(1 << 20, f)))
    };
    // int32 row pointers when they fit, as scipy builds them: with int64 row pointers and int32 indices
    // scipy would copy the indices to int64 in memory, which a memmap baseline must not do.
    let wide = m.nnz() > i32::MAX as u64;
    let (pp, mut ip) = open(if wide { "indptr.i64" } else { "indptr.i32" })?;
    let (xp, mut ix) = open("indices.i32")?;
    let (dp, mut dv) = open("data.f64")?;
    let put =
        |w: &mut BufWriter<std::fs::File>, p: &Path, b: &[u8]| w.write_all(b).map_err(|e| Error::io(p, "writing", e));
    let pointer = |w: &mut BufWriter<std::fs::File>, p: i64| {
        if wide {
            put(w, &pp, &p.to_le_bytes())
        } else {
            put(w, &pp, &(p as i32).to_le_bytes())
        }
    };
    pointer(&mut ip, 0)?;
    let mut base = 0i64;
    for seg in m.segments_mapped() {
        let seg = seg?;
        seg.check_structure()?;
        for &p in &seg.indptr()[1..] {
            pointer(&mut ip, base + p as i64)?;
        }
        base += seg.nnz() as i64;
        match seg.indices() {
            Indices::U32(v) => v.iter().try_for_each(|&i| put(&mut ix, &xp, &(i as i32).to_le_bytes()))?,
            Indices::U64(v) => v.iter().try_for_each(|&i| put(&mut ix, &xp, &(i as i32).to_le_bytes()))?,
        }
        match seg.values() {
            Values::F64(v) => v.iter().try_for_each(|x| put(&mut dv, &dp, &x.to_le_bytes()))?,
            Values::F32(v) => v.iter().try_for_each(|&x| put(&mut dv, &dp, &(x as f64).to_le_bytes()))?,
            Values::I64(v) => v.iter().try_for_each(|&x| put(&mut dv, &dp, &(x as f64).to_le_bytes()))?,
            Values::Pattern => (0..seg.nnz()).try_for_each(|_| put(&mut dv, &dp, &1f64.to_le_bytes()))?,
        }
    }
    for (w, p) in [(ip, pp), (ix, xp), (dv, dp)] {
        let f = w.into_inner().map_err(|e| Error::io(&p, "writing", e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&p, "syncing", e))?;
    }
    let indptr = if wide { "indptr.i64" } else { "indptr.i32" };
    let shape = serde_json::json!({"rows": m.rows(), "cols": m.cols(), "nnz": m.nnz(), "indptr": indptr});
    let sp = dir.join("shape.json");
    std::fs::write(&sp, shape.to_string()).map_err(|e| Error::io(&sp, "writing", e))?;
    Ok(if wide { 8 } else { 4 } * (m.rows() + 1) + 12 * m.nnz())
}
