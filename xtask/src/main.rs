//! Project automation, run as `cargo xtask <command>`: plain Rust instead of
//! shell scripts, so it works wherever cargo does.

mod python;
mod run;

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

use run::{Error, Result, run, step};

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  test [-- PYTEST_ARGS...]  cargo test --workspace, then build the wheel and run
                            pytest on tests/python with PYTEST_ARGS
  demo                      build the wheel and run examples/demo.py into demo-output/

The Python venv lives in <target dir>/xtask/venv, pinned by tests/python/requirements.txt.";

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
        ["demo"] => demo(),
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
    let dirs = Dirs::new()?;
    // Unit, integration and doc tests of every crate; py-bindings is tested from Python below.
    step("cargo test --workspace", || run(dirs.cargo().args(["test", "--workspace"])))?;
    let python = prepare_python(&dirs)?;
    step("pytest tests/python", || {
        run(dirs.command(&python).args(["-m", "pytest", "tests/python", "-q"]).args(pytest_args))
    })
}

fn demo() -> Result {
    let dirs = Dirs::new()?;
    let python = prepare_python(&dirs)?;
    step("examples/demo.py", || run(dirs.command(&python).arg("examples/demo.py").arg(dirs.root.join("demo-output"))))
}

/// The venv with a freshly built wheel installed (shared by `test` and `demo`,
/// so both exercise the same build); returns the venv's python.
fn prepare_python(dirs: &Dirs) -> Result<PathBuf> {
    let python = step("Python venv", || python::ensure_venv(dirs))?;
    step("build and install the wheel", || python::build_and_install_wheel(dirs, &python))?;
    Ok(python)
}

/// Where the xtask works: the repo root and cargo's target dir.
struct Dirs {
    root: PathBuf,
    target: PathBuf,
}

impl Dirs {
    fn new() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo").to_owned();
        // Made absolute here, as cargo reads it relative to the directory it was started in.
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => std::path::absolute(&dir)
                .map_err(|e| Error::new(format!("bad CARGO_TARGET_DIR {}: {e}", Path::new(&dir).display())))?,
            None => root.join("target"),
        };
        Ok(Dirs { root, target })
    }

    /// `program` run from the repo root; every cargo it starts (directly or
    /// through maturin) builds into the one target dir.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root).env("CARGO_TARGET_DIR", &self.target);
        cmd
    }

    /// The cargo that runs this xtask (`$CARGO`), so one toolchain does everything.
    fn cargo(&self) -> Command {
        self.command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    }
}
