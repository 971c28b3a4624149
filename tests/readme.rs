//! The documentation's examples run as written. Every fenced code block of `README.md` and of
//! `docs/*.md` is one of:
//!
//! * ```` ```sh ```` (or `bash`): run with `bash` under `set -euo pipefail`, in one fresh directory per
//!   document, in document order, with the built `sparsedisk` first on `PATH` and `datasets` linking to
//!   the repository's `datasets/`;
//! * ```` ```python ````: run in the same directory, after the shell blocks before it, by the Python of
//!   `SPARSEDISK_PYTHON` (default `python3`); skipped with a note when that Python lacks numpy, scipy,
//!   zarr or binsparse, unless `SPARSEDISK_REQUIRE_PYTHON=1`;
//! * ```` ```text ````: output, not run;
//! * any block preceded (on the line before its fence) by `<!-- not run: REASON -->`: not run, and the
//!   reason must be given.
//!
//! A block in any other language must carry a not-run marker. A failing block is reported with its
//! document, its line, its text and its standard error. Relative links between the documents must
//! resolve to files, and their `#anchors` to headings.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A block may run at most this long (the examples are meant to take seconds).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// One fenced code block of a document.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The fence's info string (`sh`, `python`, `text`, ...), possibly empty.
    lang: String,
    text: String,
    /// The reason of a `<!-- not run: REASON -->` marker right before the fence.
    not_run: Option<String>,
}

/// What a block is for the runner.
#[derive(Debug, PartialEq)]
enum Kind {
    Shell,
    Python,
    Output,
    NotRun,
}

impl Block {
    fn kind(&self) -> Result<Kind, String> {
        if self.not_run.is_some() {
            return Ok(Kind::NotRun);
        }
        match self.lang.as_str() {
            "sh" | "bash" => Ok(Kind::Shell),
            "python" => Ok(Kind::Python),
            "text" => Ok(Kind::Output),
            other => Err(format!(
                "line {}: a ```{other} block must be marked `<!-- not run: REASON -->` (only sh, python and text \
                 blocks are known)",
                self.line
            )),
        }
    }
}

const NOT_RUN_PREFIX: &str = "<!-- not run:";

/// The fenced blocks of `text`, or the problems with its not-run markers (one without a reason, one
/// not followed by a fence, an unclosed fence).
fn parse_blocks(text: &str) -> Result<Vec<Block>, Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut pending_marker: Option<(usize, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix(NOT_RUN_PREFIX) {
            let reason = rest.strip_suffix("-->").map(str::trim).unwrap_or_default();
            if !rest.trim_end().ends_with("-->") || reason.is_empty() {
                problems.push(format!("line {}: a not-run marker needs a reason: `<!-- not run: REASON -->`", i + 1));
            }
            if let Some((at, _)) = pending_marker.replace((i + 1, reason.to_string())) {
                problems.push(format!("line {at}: a not-run marker not followed by a code block"));
            }
            i += 1;
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let start = i + 1;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                body.push(lines[i]);
                i += 1;
            }
            if i == lines.len() {
                problems.push(format!("line {start}: a code block is never closed"));
            }
            blocks.push(Block {
                line: start,
                lang: info.trim().to_string(),
                text: body.join("\n") + "\n",
                not_run: pending_marker.take().map(|(_, reason)| reason),
            });
        } else if !line.is_empty() {
            if let Some((at, _)) = pending_marker.take() {
                problems.push(format!("line {at}: a not-run marker not followed by a code block"));
            }
        }
        i += 1;
    }
    if let Some((at, _)) = pending_marker {
        problems.push(format!("line {at}: a not-run marker not followed by a code block"));
    }
    for b in &blocks {
        if let Err(e) = b.kind() {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(blocks)
    } else {
        Err(problems)
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents whose blocks run: the README, then `docs/*.md` in name order.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "md")).collect()
        })
        .unwrap_or_default();
    docs.sort();
    docs.insert(0, repo().join("README.md"));
    docs
}

fn relative(doc: &Path) -> String {
    doc.strip_prefix(repo()).unwrap_or(doc).display().to_string()
}

fn read(doc: &Path) -> String {
    std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("reading {}: {e}", doc.display()))
}

/// The Python to run python blocks with, or `None` (after a note) when it lacks the packages.
fn python_or_skip(doc: &str) -> Option<String> {
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let required = std::env::var("SPARSEDISK_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let probe = Command::new(&python).args(["-c", "import numpy, scipy, zarr, binsparse"]).output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => {
            format!("`{python}` cannot import numpy, scipy, zarr, binsparse: {}", String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => format!("cannot run `{python}`: {e}"),
    };
    assert!(!required, "{doc}: SPARSEDISK_REQUIRE_PYTHON=1 but {problem}");
    eprintln!(
        "{doc}: python blocks SKIPPED: {problem}\n(pip install -r tests/python/requirements.txt, or set SPARSEDISK_PYTHON)"
    );
    None
}

/// Put before a shell block: strict mode, and a trap that names the failing command and its line.
const SHELL_PRELUDE: &str =
    "set -euo pipefail\ntrap 'echo \"readme-test-failed-at $((LINENO - 2)) $BASH_COMMAND\" >&2' ERR\n";
const FAILED_AT: &str = "readme-test-failed-at ";

/// The line within its block (1-based) and the text of the command that failed, from the trap's line
/// in `stderr`; and `stderr` without that line.
fn failed_shell_command(stderr: &str) -> (Option<(usize, String)>, String) {
    let mut failed = None;
    let mut rest = String::new();
    for line in stderr.lines() {
        match line.strip_prefix(FAILED_AT).and_then(|l| l.split_once(' ')) {
            Some((n, command)) if failed.is_none() => failed = n.parse().ok().map(|n| (n, command.to_string())),
            Some(_) => {}
            None => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    (failed, rest)
}

/// Runs `cmd` with its output in files under `scratch`, killing its process group after
/// [`BLOCK_TIMEOUT`]. Returns the exit status (`None`: timed out), standard output and standard error.
fn run_with_timeout(mut cmd: Command, scratch: &Path, name: &str) -> (Option<i32>, String, String) {
    use std::os::unix::process::CommandExt;
    let out_path = scratch.join(format!("{name}.stdout"));
    let err_path = scratch.join(format!("{name}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn a block");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a block") {
            break Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > BLOCK_TIMEOUT {
            let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read_lossy = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (status, read_lossy(&out_path), read_lossy(&err_path))
}

/// The last `n` characters of `s`, for failure messages.
fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

/// Runs every runnable block of `doc` in order, in one fresh directory; panics at the first failure.
fn run_document(doc: &Path) {
    let name = relative(doc);
    let blocks = parse_blocks(&read(doc)).unwrap_or_else(|p| panic!("{name}:\n{}", p.join("\n")));
    let runnable: Vec<&Block> = blocks.iter().filter(|b| matches!(b.kind(), Ok(Kind::Shell | Kind::Python))).collect();
    if runnable.is_empty() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(common::bin(), bin.join("sparsedisk")).unwrap();
    std::os::unix::fs::symlink(repo().join("datasets"), work.path().join("datasets")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let needs_python = runnable.iter().any(|b| b.kind() == Ok(Kind::Python));
    let python = if needs_python { python_or_skip(&name) } else { None };
    for (k, block) in runnable.iter().enumerate() {
        let cmd = match block.kind().unwrap() {
            Kind::Shell => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(format!("{SHELL_PRELUDE}{}", block.text));
                c
            }
            Kind::Python => {
                let Some(python) = &python else {
                    eprintln!("{name}:{}: python block skipped", block.line);
                    continue;
                };
                let script = scratch.path().join(format!("block{k}.py"));
                std::fs::write(&script, &block.text).unwrap();
                let mut c = Command::new(python);
                c.arg(&script);
                c
            }
            _ => unreachable!(),
        };
        let mut cmd = cmd;
        cmd.current_dir(work.path()).env("PATH", &path);
        let started = Instant::now();
        let (status, stdout, stderr) = run_with_timeout(cmd, scratch.path(), &format!("block{k}"));
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("{name}:{}: ```{} block ran in {seconds:.2} s", block.line, block.lang);
        if status != Some(0) {
            let what = match status {
                None => format!("timed out after {} s", BLOCK_TIMEOUT.as_secs()),
                Some(code) => format!("failed with exit status {code}"),
            };
            let (failed_command, stderr) = failed_shell_command(&stderr);
            let location = match failed_command {
                Some((line, command)) => format!("{name}:{}: `{command}`", block.line + line),
                None if block.kind() == Ok(Kind::Python) => {
                    format!("{name}:{} (line L of the traceback's script is line {} + L)", block.line, block.line)
                }
                None => format!("{name}:{}", block.line),
            };
            panic!(
                "{location}: the ```{} block starting at line {} {what}:\n{}--- stderr ---\n{}\n--- stdout (end) ---\n{}",
                block.lang,
                block.line,
                block.text,
                tail(&stderr, 4000),
                tail(&stdout, 2000)
            );
        }
    }
}

#[test]
fn readme_examples_run() {
    run_document(&repo().join("README.md"));
}

#[test]
fn docs_examples_run() {
    for doc in documents().iter().skip(1) {
        run_document(doc);
    }
}

#[test]
fn every_block_is_runnable_output_or_marked_with_a_reason() {
    let mut problems = Vec::new();
    for doc in documents() {
        if let Err(p) = parse_blocks(&read(&doc)) {
            problems.extend(p.into_iter().map(|p| format!("{}: {p}", relative(&doc))));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parser_finds_blocks_and_markers() {
    let text =
        "# T\n\n```sh\necho a\n```\n\n<!-- not run: needs a cluster -->\n```sh\nrun big\n```\n\n```text\nout\n```\n";
    let blocks = parse_blocks(text).unwrap();
    let summary: Vec<_> = blocks.iter().map(|b| (b.line, b.kind().unwrap(), b.not_run.clone())).collect();
    assert_eq!(
        summary,
        vec![(3, Kind::Shell, None), (8, Kind::NotRun, Some("needs a cluster".into())), (12, Kind::Output, None)]
    );
    assert_eq!(blocks[0].text, "echo a\n");
    for bad in [
        "<!-- not run: -->\n```sh\nx\n```\n",
        "<!-- not run: reason -->\nprose\n```sh\nx\n```\n",
        "```rust\nfn main() {}\n```\n",
        "```sh\nnever closed\n",
    ] {
        assert!(parse_blocks(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---------------------------------------------------------------- links

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of `text`'s headings (outside code blocks), with GitHub's `-1`, `-2` for repeats.
fn anchors(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            let base = slug(line.trim_start_matches('#'));
            let repeats = seen.entry(base.clone()).or_insert(0);
            out.push(if *repeats == 0 { base } else { format!("{base}-{repeats}") });
            *repeats += 1;
        }
    }
    out
}

/// The targets of `[text](target)` links outside code blocks, with their lines.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn relative_links_resolve() {
    let mut problems = Vec::new();
    for doc in documents() {
        let text = read(&doc);
        for (line, target) in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').map_or((target.as_str(), None), |(f, a)| (f, Some(a)));
            let (path, target_text) = if file.is_empty() {
                (doc.clone(), Some(text.clone()))
            } else {
                let path = doc.parent().unwrap().join(file);
                let target_text = if path.extension().is_some_and(|x| x == "md") {
                    std::fs::read_to_string(&path).ok()
                } else {
                    None
                };
                (path, target_text)
            };
            if !path.exists() {
                problems.push(format!("{}:{line}: link to a missing file: {target}", relative(&doc)));
            } else if let (Some(anchor), Some(target_text)) = (anchor, target_text) {
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    problems.push(format!("{}:{line}: no heading for the anchor of {target}", relative(&doc)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
