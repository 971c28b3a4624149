//! The binary's own contract, in its own crate: it starts, knows its version and documents every
//! subcommand. (Cargo builds a package's binary for that package's integration tests, so this test
//! is also what makes `cargo test` at the workspace root build `sparsedisk` for the end-to-end tests
//! of `tests/`, which drive it as users do.)

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sparsedisk")).args(args).output().expect("run sparsedisk")
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("sparsedisk {}", env!("CARGO_PKG_VERSION")));
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands = [
        "demo",
        "generate",
        "import",
        "spmv",
        "spmm",
        "spgemm",
        "transpose",
        "convert",
        "add",
        "pagerank",
        "bfs",
        "components",
        "cg",
        "bench",
        "info",
        "verify",
        "clean",
        "export",
    ];
    for command in commands {
        assert!(text.contains(&format!("  {command} ")), "top-level help lacks {command}: {text}");
        let out = run(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: sparsedisk"), "{command} --help");
    }
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
