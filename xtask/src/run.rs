//! Running subprocesses and timing steps: every failure carries a message and
//! the exit code the xtask leaves with, so nothing fails silently.

use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// Why the xtask stops, and the exit code it stops with.
pub struct Error {
    pub message: String,
    pub code: i32,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error { message: message.into(), code: 1 }
    }
}

pub type Result<T = ()> = std::result::Result<T, Error>;

/// Runs `cmd` with inherited stdio; a nonzero exit becomes an [`Error`] that
/// names the command line and keeps the child's exit code (so `demo` and
/// `test` propagate it).
pub fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| spawn_error(cmd, e))?;
    succeeded(cmd, status)
}

/// Runs `cmd` as [`run`] does, but returns its stdout instead of showing it.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| spawn_error(cmd, e))?;
    succeeded(cmd, out.status)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn succeeded(cmd: &Command, status: ExitStatus) -> Result {
    if status.success() {
        return Ok(());
    }
    Err(Error {
        // A child killed by a signal has no code; 1 still marks the failure.
        code: status.code().unwrap_or(1),
        message: format!("`{}` failed ({status})", display(cmd)),
    })
}

/// Prints `==> name`, runs `f`, then the elapsed seconds, so CI logs show
/// where the time goes (also for a failed step).
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("==> {name}");
    let start = Instant::now();
    let result = f();
    let outcome = if result.is_ok() { "done" } else { "FAILED" };
    println!("<== {name}: {outcome} in {:.1}s", start.elapsed().as_secs_f64());
    result
}

fn spawn_error(cmd: &Command, e: std::io::Error) -> Error {
    Error::new(format!("cannot run `{}`: {e}", display(cmd)))
}

/// The command line as a user would type it (arguments with spaces quoted).
fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains(char::is_whitespace) { format!("'{arg}'") } else { arg.into_owned() }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
