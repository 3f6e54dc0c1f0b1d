//! Project automation, run as `cargo xtask <command>`: plain Rust instead of
//! shell scripts, so it works wherever cargo does.

mod bench;
mod publish;
mod python;
mod release;
mod run;
mod servers;

use std::env;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

use run::{Error, Result, run, step};

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  test [-- PYTEST_ARGS...]  lint the code (ruff check, mypy, clippy, rustdoc), run publish-check,
                            start the test servers,
                            cargo test --workspace, then build the wheel, check its stubs
                            (stubtest) and run pytest on
                            tests/python with PYTEST_ARGS, with the newest pinned dependencies
                            and then with the oldest supported
  servers                   start the test servers, print their DRS_TEST_* variables as
                            `export` lines, and keep them up until Ctrl-C or end of stdin
  demo                      build the wheel and run examples/demo.py into demo-output/
  bench [-- BENCH_ARGS...]  build the wheel for release, start an S3 server (s3s-fs) and proxies
                            that add 20 and 80 ms a round trip, and run benches/bench.py with
                            BENCH_ARGS (`-- --only large size` reruns those families)
  wheel                     build the release sdist and, from it, the manylinux_2_28 wheels (abi3 for
                            CPython 3.11+, and one for 3.10 if it is installed) into dist/, and show
                            each wheel's size, platform tag and newest glibc symbol
  publish-check [-- ARGS...]
                            cargo publish --workspace --dry-run with ARGS: package the library
                            crates and build each from its package alone, uploading nothing

The Python venv lives in <target dir>/xtask/venv, on the newest supported Python installed,
pinned by tests/python/requirements.txt; the oldest supported dependencies' in
<target dir>/xtask/venv-oldest, on the oldest supported Python installed, pinned by
tests/python/requirements-oldest.txt; the benchmark's in <target dir>/xtask/bench-venv,
pinned by benches/requirements.txt; the release tools' in <target dir>/xtask/release-venv, pinned by
xtask/release-requirements.txt.
The test servers (S3, Azure Blob, GCS, SFTP on 127.0.0.1) keep their state in
<target dir>/xtask/servers; with CI=true a server that does not start fails the run.";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] | ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["test"] => test(&[]),
        ["test", "--", pytest_args @ ..] => test(pytest_args),
        ["servers"] => servers(),
        ["demo"] => demo(),
        ["bench"] => bench::bench(&[]),
        ["bench", "--", bench_args @ ..] => bench::bench(bench_args),
        ["wheel"] => release::wheel(),
        ["publish-check"] => publish::check(&[]),
        ["publish-check", "--", cargo_args @ ..] => publish::check(cargo_args),
        _ => {
            eprintln!("error: unknown arguments: {}\n\n{USAGE}", args.join(" "));
            process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {}", e.message);
        process::exit(e.code);
    }
}

fn test(pytest_args: &[&str]) -> Result {
    let mut dirs = Dirs::new()?;
    let python = venv(&dirs)?;
    // First, as it takes seconds: ruff and mypy on the Python sources.
    step("Python lint (ruff check, mypy)", || python::lint(&dirs, &python))?;
    // Then the Rust side: clippy with the workspace's lints (`[workspace.lints]`) and rustdoc, warnings as errors.
    step("Rust lint (clippy, rustdoc)", || {
        let every_target = ["--workspace", "--all-targets", "--all-features"];
        run(dirs.cargo().arg("clippy").args(every_target).args(["--", "-D", "warnings"]))?;
        run(dirs.cargo().args(["doc", "--no-deps", "--workspace", "--all-features"]).env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    publish::check(&[])?;
    // The floor the package declares (dagster, and the table libraries), tested as well as the newest.
    let oldest = step("Python venv (oldest supported dependencies)", || {
        let venv = dirs.target.join("xtask").join("venv-oldest");
        let requirements = dirs.root.join("tests/python/requirements-oldest.txt");
        python::ensure_venv(&dirs, &venv, &requirements, &python::BasePython::oldest()?)
    })?;
    // Up for the Rust tests and pytest alike; stopped when `servers` drops, also when a step fails.
    let servers = step("test servers", || servers::start(&dirs, &python))?;
    dirs.env = servers.env().to_vec();
    dirs.env.push(remote_store_suite(&dirs, &python)?);
    // Unit, integration and doc tests of every crate; py-bindings is tested from Python below.
    step("cargo test --workspace", || run(dirs.cargo().args(["test", "--workspace"])))?;
    // DataFusion reading and writing Parquet on the SFTP server through ObjectStoreAdapter: a workspace of its
    // own, so that no other step compiles DataFusion; built in the shared target dir, which CI caches.
    step("examples/datafusion-sftp (DataFusion over SFTP)", || {
        let servers = dirs.env.iter().find(|(key, _)| *key == "DRS_TEST_SERVERS");
        if !servers.is_some_and(|(_, up)| up.split(',').any(|server| server == "sftp")) {
            println!("skipped: the SFTP test server is not up");
            return Ok(());
        }
        run(dirs.cargo().args(["run", "--locked", "--manifest-path", "examples/datafusion-sftp/Cargo.toml"]))
    })?;
    let wheel = wheel(&dirs, &python)?;
    step("stubtest (the .pyi stubs against the wheel)", || python::stubtest(&dirs, &python))?;
    let pytest =
        |python: &Path| run(dirs.command(python).args(["-m", "pytest", "tests/python", "-q"]).args(pytest_args));
    step("pytest tests/python", || pytest(&python))?;
    // The abi3 wheel serves every Python from 3.11 on; an older one needs a build of its own.
    step("install the wheel in the oldest venv", || match python::version_of(&oldest)? {
        Some(version) if version >= python::ABI3_FROM => python::install_wheel(&dirs, &oldest, &wheel),
        _ => python::build_and_install_wheel(&dirs, &python, &oldest, "dev").map(drop),
    })?;
    step("pytest tests/python (oldest supported dependencies)", || pytest(&oldest))
}

/// For running tests by hand: the servers stay up until Ctrl-C or the end of stdin. Ctrl-C needs no handler:
/// it kills the xtask, and the kernel then kills the servers (see `servers::die_with_parent`).
fn servers() -> Result {
    let dirs = Dirs::new()?;
    let python = venv(&dirs)?;
    let servers = step("test servers", || servers::start(&dirs, &python))?;
    for (key, value) in servers.env().iter().chain([&remote_store_suite(&dirs, &python)?]) {
        println!("export {key}={}", shell_quote(value));
    }
    println!("# The servers are up: Ctrl-C or end of stdin (Ctrl-D) stops them.");
    io::copy(&mut io::stdin(), &mut io::sink()).map_err(|e| Error::new(format!("cannot read stdin: {e}")))?;
    Ok(())
}

fn demo() -> Result {
    let dirs = Dirs::new()?;
    let python = venv(&dirs)?;
    wheel(&dirs, &python)?;
    step("examples/demo.py", || run(dirs.command(&python).arg("examples/demo.py").arg(dirs.root.join("demo-output"))))
}

/// The environment variable that points tests/python/test_remote_store_suite.py to remote-store's own
/// Dagster tests.
fn remote_store_suite(dirs: &Dirs, python: &Path) -> Result<(&'static str, String)> {
    let requirements = dirs.root.join("tests/python/requirements.txt");
    let suite = step("remote-store's Dagster tests", || python::remote_store_suite(dirs, python, &requirements))?;
    Ok(("DRS_REMOTE_STORE_SUITE", suite.to_string_lossy().into_owned()))
}

/// The tests' pinned venv; returns its python.
fn venv(dirs: &Dirs) -> Result<PathBuf> {
    let venv = dirs.target.join("xtask").join("venv");
    let requirements = dirs.root.join("tests/python/requirements.txt");
    step("Python venv", || python::ensure_venv(dirs, &venv, &requirements, &python::BasePython::newest()?))
}

/// A freshly built wheel in the venv (`test` and `demo` exercise the same build); returns the wheel.
fn wheel(dirs: &Dirs, python: &Path) -> Result<PathBuf> {
    step("build and install the wheel", || python::build_and_install_wheel(dirs, python, python, "dev"))
}

/// `value` as one word for a POSIX shell: quoted only when it has to be.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Where the xtask works (the repo root and cargo's target dir), and the variables its commands get.
struct Dirs {
    root: PathBuf,
    target: PathBuf,
    /// The test servers' `DRS_TEST_*` variables, once they are up.
    env: Vec<(&'static str, String)>,
}

impl Dirs {
    fn new() -> Result<Self> {
        // `cargo run` says where this checkout's xtask is. The path compiled in is only
        // a fallback: cargo reuses the binary for another clone that shares the target dir.
        let manifest_dir =
            env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
        let root = manifest_dir.parent().expect("xtask lives in the repo").to_owned();
        // Made absolute here, as cargo reads it relative to the directory it was started in.
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => std::path::absolute(&dir)
                .map_err(|e| Error::new(format!("bad CARGO_TARGET_DIR {}: {e}", Path::new(&dir).display())))?,
            None => root.join("target"),
        };
        Ok(Dirs { root, target, env: Vec::new() })
    }

    /// `program` run from the repo root with the servers' variables; every cargo
    /// it starts (directly or through maturin) builds into the one target dir.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root).env("CARGO_TARGET_DIR", &self.target).envs(self.env.iter().cloned());
        cmd
    }

    /// The cargo that runs this xtask (`$CARGO`), so one toolchain does everything.
    fn cargo(&self) -> Command {
        self.command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    }
}
