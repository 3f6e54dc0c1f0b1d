//! The Python side: pinned venvs under the target dir (the tests' and the
//! benchmark's), the lint of the Python sources, and the wheel built from
//! crates/py-bindings installed into one.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Dirs;
use crate::run::{Error, Result, run};

/// Oldest Python the wheel supports (pyo3's `abi3-py311`).
const MIN_PYTHON: (u32, u32) = (3, 11);

/// Makes sure the venv at `venv` exists, works, and has exactly the pins of
/// `requirements` installed; returns the venv's python.
pub fn ensure_venv(dirs: &Dirs, venv: &Path, requirements: &Path) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");

    // A venv whose base interpreter moved or vanished cannot be repaired: recreate it.
    let usable = dirs.command(&python).args(["-c", ""]).status().is_ok_and(|s| s.success());
    if !usable {
        if venv.exists() {
            println!("    venv at {} is broken; recreating it", venv.display());
            fs::remove_dir_all(venv).map_err(|e| io_error("remove", venv, e))?;
        }
        let base = base_python()?;
        run(dirs.command(base).args(["-m", "venv"]).arg(venv))?;
        run(pip(dirs, &python).args(["install", "-q", "--upgrade", "pip"]))?;
    }

    // The stamp holds the requirements last installed, so an unchanged venv
    // costs no pip run at all.
    let wanted = fs::read_to_string(requirements).map_err(|e| io_error("read", requirements, e))?;
    let stamp = venv.join("xtask-requirements.stamp");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(pip(dirs, &python).args(["install", "-q", "-r"]).arg(requirements))?;
        fs::write(&stamp, &wanted).map_err(|e| io_error("write", &stamp, e))?;
    }
    Ok(python)
}

/// The Python lint, with the venv's pinned tools: `ruff check` on the package and
/// tests/python (rules in crates/py-bindings/pyproject.toml, which tests/python/ruff.toml
/// extends), then `mypy` (strict, on the package; also set up in that pyproject.toml).
/// It reads sources only, so it needs no wheel and takes seconds.
pub fn lint(dirs: &Dirs, python: &Path) -> Result {
    // The tools' caches go to the target dir, not into the source tree.
    let cache = dirs.target.join("xtask").join("lint-cache");
    run(dirs
        .command(python)
        .args(["-m", "ruff", "check", "--cache-dir"])
        .arg(cache.join("ruff"))
        .args(["crates/py-bindings/python", "tests/python"]))
    .map_err(|e| Error {
        message: format!(
            "ruff reported the problems above in the Python code; `{} check --fix crates/py-bindings/python \
             tests/python` fixes those marked [*] ({})",
            python.with_file_name("ruff").display(),
            e.message
        ),
        code: e.code,
    })?;
    // From crates/py-bindings, where its pyproject.toml names the files to check.
    run(dirs
        .command(python)
        .current_dir(dirs.root.join("crates/py-bindings"))
        .args(["-m", "mypy", "--cache-dir"])
        .arg(cache.join("mypy")))
    .map_err(|e| Error {
        message: format!("mypy reported the type errors above in crates/py-bindings/python ({})", e.message),
        code: e.code,
    })
}

/// `stubtest`: the extension module's stubs (`_core.pyi`) against the wheel installed in the venv of
/// `python`, so that a signature changed in Rust and not in the stub fails the run. Names that only type
/// checkers see are listed in crates/py-bindings/stubtest-allowlist.txt.
pub fn stubtest(dirs: &Dirs, python: &Path) -> Result {
    let allowlist = dirs.root.join("crates/py-bindings/stubtest-allowlist.txt");
    run(dirs
        .command(python)
        .env("MYPY_CACHE_DIR", dirs.target.join("xtask").join("lint-cache").join("stubtest"))
        .args(["-m", "mypy.stubtest", "dagster_remote_store._core", "--allowlist"])
        .arg(allowlist))
    .map_err(|e| Error {
        message: format!(
            "crates/py-bindings/python/dagster_remote_store/_core.pyi differs from the extension module as \
             stubtest reports above ({})",
            e.message
        ),
        code: e.code,
    })
}

/// Builds the py-bindings wheel with cargo's `profile` (`dev`, `release`) into
/// `<target>/wheels` with the venv's maturin and force-installs it into the
/// venv; returns the wheel, for other venvs to install the same build.
pub fn build_and_install_wheel(dirs: &Dirs, python: &Path, profile: &str) -> Result<PathBuf> {
    let wheels = dirs.target.join("wheels");
    // Old wheels would make "the wheel just built" ambiguous.
    for wheel in list_wheels(&wheels)? {
        fs::remove_file(&wheel).map_err(|e| io_error("remove", &wheel, e))?;
    }
    run(dirs
        .command(python)
        .args(["-m", "maturin", "build", "--profile", profile])
        // The dev wheel, which the tests run, carries the test-only panic hook (py-bindings `errors::test_panic`).
        .args(if profile == "dev" { &["--features", "test-hooks"][..] } else { &[] })
        .arg("--manifest-path")
        .arg(dirs.root.join("crates/py-bindings/Cargo.toml"))
        .arg("--interpreter")
        .arg(python)
        .arg("--out")
        .arg(&wheels)
        // The wheel links nothing outside the manylinux set (OpenSSL is vendored):
        // maturin's audit checks that on every build.
        .args(["--auditwheel", "check"]))?;

    let wheel = match list_wheels(&wheels)?.as_slice() {
        [wheel] => wheel.clone(),
        found => {
            return Err(Error::new(format!(
                "expected exactly one wheel in {} after maturin build, found {}",
                wheels.display(),
                found.len()
            )));
        }
    };
    install_wheel(dirs, python, &wheel)?;
    Ok(wheel)
}

/// remote-store's own Dagster tests, `tests/ext/test_dagster.py` from the sdist of the
/// remote-store version `requirements` pins, extracted under the target dir once per version
/// (tests/python/test_remote_store_suite.py runs them against this package); returns the file.
pub fn remote_store_suite(dirs: &Dirs, python: &Path, requirements: &Path) -> Result<PathBuf> {
    let pins = fs::read_to_string(requirements).map_err(|e| io_error("read", requirements, e))?;
    let version = pins
        .lines()
        .find_map(|line| line.trim().strip_prefix("remote-store=="))
        .ok_or_else(|| Error::new(format!("{} pins no remote-store version", requirements.display())))?;
    let dir = dirs.target.join("xtask").join(format!("remote-store-{version}"));
    let suite = dir.join("test_dagster.py");
    if suite.is_file() {
        return Ok(suite);
    }
    run(pip(dirs, python)
        .args(["download", "-q", "--no-deps", "--no-binary", ":all:"])
        .arg(format!("remote-store=={version}"))
        .arg("--dest")
        .arg(&dir))?;
    let extract = r#"
import sys, tarfile
with tarfile.open(sys.argv[1]) as sdist:
    [suite] = [m for m in sdist.getmembers() if m.name.endswith("/tests/ext/test_dagster.py")]
    open(sys.argv[2], "wb").write(sdist.extractfile(suite).read())
"#;
    let sdist = dir.join(format!("remote_store-{version}.tar.gz"));
    run(dirs.command(python).args(["-c", extract]).arg(&sdist).arg(&suite))?;
    Ok(suite)
}

/// Force-installs `wheel` into the venv of `python`, without its dependencies:
/// the venv's pins provide them.
pub fn install_wheel(dirs: &Dirs, python: &Path, wheel: &Path) -> Result {
    run(pip(dirs, python).args(["install", "-q", "--force-reinstall", "--no-deps"]).arg(wheel))
}

/// `python3` (or `python` where there is no `python3`), checked to be new enough.
fn base_python() -> Result<&'static str> {
    let script = "import sys; print('%d.%d' % sys.version_info[:2])";
    for candidate in ["python3", "python"] {
        let out = match Command::new(candidate).args(["-c", script]).output() {
            Ok(out) => out,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::new(format!("cannot run `{candidate}`: {e}"))),
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(format!("`{candidate}` does not run ({}): {}", out.status, stderr.trim())));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let parsed =
            version.split_once('.').and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
        return match parsed {
            Some(found) if found >= MIN_PYTHON => Ok(candidate),
            _ => Err(Error::new(format!(
                "Python >= {}.{} is required, but `{candidate}` is Python {version}",
                MIN_PYTHON.0, MIN_PYTHON.1
            ))),
        };
    }
    Err(Error::new("no Python found: neither `python3` nor `python` is on PATH"))
}

fn pip(dirs: &Dirs, python: &Path) -> Command {
    let mut cmd = dirs.command(python);
    cmd.args(["-m", "pip"]).env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    cmd
}

pub(crate) fn list_wheels(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir, e)),
    };
    let mut wheels = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error("list", dir, e))?.path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            wheels.push(path);
        }
    }
    Ok(wheels)
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(format!("cannot {action} {}: {e}", path.display()))
}
