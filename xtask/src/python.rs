//! The Python side: pinned venvs under the target dir (the tests' and the
//! benchmark's), the lint of the Python sources, and the wheel built from
//! crates/py-bindings installed into one.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fmt};

use crate::Dirs;
use crate::run::{Error, Result, run};

/// The CPython minor versions the package supports (`requires-python` in crates/py-bindings/pyproject.toml),
/// oldest first.
pub(crate) const SUPPORTED: [Version; 5] =
    [Version(3, 10), Version(3, 11), Version(3, 12), Version(3, 13), Version(3, 14)];

/// From this version on the wheel is abi3 (one build serves every newer Python); older ones get a wheel each
/// (`[tool.maturin] features` in crates/py-bindings/pyproject.toml).
pub const ABI3_FROM: Version = Version(3, 11);

/// The feature that makes the abi3 build, as `[tool.maturin] features` enables it: maturin's `--features`
/// replaces that list, so a build that names features of its own names this one too.
const ABI3_FEATURE: &str = "pyo3/abi3-py311";

/// A base interpreter that venvs are made from.
pub struct BasePython {
    pub path: PathBuf,
    pub version: Version,
}

/// A Python `major.minor`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl BasePython {
    /// The newest supported Python on this machine: the newest venv runs on it.
    pub fn newest() -> Result<Self> {
        Self::first_of(SUPPORTED.iter().rev(), "newest")
    }

    /// The oldest supported Python on this machine: the oldest-dependencies venv runs on it.
    pub fn oldest() -> Result<Self> {
        Self::first_of(SUPPORTED.iter(), "oldest")
    }

    /// `python3` (or `python`), for venvs whose figures should not depend on which Pythons are installed.
    pub fn on_path() -> Result<Self> {
        let path = PathBuf::from(default_python()?);
        let version = version_of(&path)?.ok_or_else(|| Error::new(format!("`{}` does not run", path.display())))?;
        Self::supported(path, version)
    }

    /// The first of `wanted` found on PATH or in pyenv's versions; each one passed over is reported,
    /// so a run says which Pythons it did not test. Falls back to `python3`.
    fn first_of<'a>(wanted: impl Iterator<Item = &'a Version>, which: &str) -> Result<Self> {
        for &version in wanted {
            if let Some(path) = find(version) {
                return Ok(BasePython { path, version });
            }
            println!("    Python {version} not found on PATH or in pyenv: the {which} venv skips it");
        }
        Self::on_path()
    }

    fn supported(path: PathBuf, version: Version) -> Result<Self> {
        if version < SUPPORTED[0] {
            return Err(Error::new(format!(
                "Python >= {} is required, but `{}` is Python {version}",
                SUPPORTED[0],
                path.display()
            )));
        }
        Ok(BasePython { path, version })
    }
}

/// Makes sure the venv at `venv` exists, works, runs `base`'s Python version, and has exactly the pins of
/// `requirements` installed; returns the venv's python.
pub fn ensure_venv(dirs: &Dirs, venv: &Path, requirements: &Path, base: &BasePython) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");

    // A venv whose base interpreter moved, vanished or is another version cannot be repaired: recreate it.
    if version_of(&python)? != Some(base.version) {
        if venv.exists() {
            println!("    venv at {} is broken or not on Python {}; recreating it", venv.display(), base.version);
            fs::remove_dir_all(venv).map_err(|e| io_error("remove", venv, e))?;
        }
        run(dirs.command(&base.path).args(["-m", "venv"]).arg(venv))?;
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

/// Builds the py-bindings wheel for the Python `python` with cargo's `profile` (`dev`, `release`) into
/// `<target>/wheels/python<version>`, with the maturin of the venv of `tools` (a venv with the oldest
/// dependencies has none), and force-installs it into the venv of `python`; returns the wheel, for
/// other venvs to install the same build.
pub fn build_and_install_wheel(dirs: &Dirs, tools: &Path, python: &Path, profile: &str) -> Result<PathBuf> {
    let version = version_of(python)?.ok_or_else(|| Error::new(format!("{} does not run", python.display())))?;
    let wheels = dirs.target.join("wheels").join(format!("python{version}"));
    // Old wheels would make "the wheel just built" ambiguous.
    for wheel in list_wheels(&wheels)? {
        fs::remove_file(&wheel).map_err(|e| io_error("remove", &wheel, e))?;
    }
    run(dirs
        .command(tools)
        .args(["-m", "maturin", "build", "--profile", profile])
        .args(if profile == "dev" { dev_features(version) } else { Vec::new() })
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

/// The dev wheel's features: the test-only panic hook (py-bindings `errors::test_panic`), and abi3 where
/// the release has it, so the tests run the wheel's ABI.
fn dev_features(version: Version) -> Vec<String> {
    let mut features = vec!["test-hooks"];
    if version >= ABI3_FROM {
        features.push(ABI3_FEATURE);
    }
    vec!["--features".to_owned(), features.join(",")]
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

/// `python3`, or `python` where there is no `python3`.
fn default_python() -> Result<&'static str> {
    for candidate in ["python3", "python"] {
        match Command::new(candidate).arg("--version").output() {
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::new(format!("cannot run `{candidate}`: {e}"))),
        }
    }
    Err(Error::new("no Python found: neither `python3` nor `python` is on PATH"))
}

/// `python3.X` on PATH, else the newest patch release of it in pyenv's versions (pyenv's shims run only the
/// versions selected in pyenv, so the interpreters are looked up where pyenv keeps them).
pub(crate) fn find(version: Version) -> Option<PathBuf> {
    let name = format!("python{version}");
    let pyenv = env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")))?;
    let prefix = format!("{version}.");
    let mut installed: Vec<(u32, PathBuf)> = fs::read_dir(pyenv.join("versions"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let patch = dir.file_name()?.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((patch, dir.join("bin").join(&name)))
        })
        .collect();
    installed.sort();
    let newest_first = installed.into_iter().rev().map(|(_, path)| path);
    std::iter::once(PathBuf::from(&name))
        .chain(newest_first)
        .find(|path| version_of(path).ok().flatten() == Some(version))
}

/// The `major.minor` of the Python at `python`, or `None` when it does not run.
pub fn version_of(python: &Path) -> Result<Option<Version>> {
    let out = match Command::new(python).args(["-c", "import sys; print(*sys.version_info[:2])"]).output() {
        Ok(out) if out.status.success() => out,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::new(format!("cannot run {}: {e}", python.display()))),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(str::parse);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok(Some(Version(major, minor))),
        _ => Err(Error::new(format!("{} printed an unexpected version: {}", python.display(), text.trim()))),
    }
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
