//! `cargo xtask wheel`: what users install, in `<repo>/dist/`: the sdist, and the wheels built from it for
//! manylinux_2_28 (glibc 2.28 and newer): one abi3 wheel for every CPython from 3.11 on, and one wheel for each
//! older supported CPython found here. The tools are pinned in xtask/release-requirements.txt and live in their
//! own venv, `<target>/xtask/release-venv`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Dirs;
use crate::python::{self, ABI3_FROM, BasePython, SUPPORTED};
use crate::run::{Error, Result, output, run, step};
use crate::servers::fresh_dir;

/// The oldest glibc the wheels run on, as a manylinux tag: 2.28 is RHEL/Rocky 8's and Debian 10's.
const MANYLINUX: &str = "manylinux_2_28";

/// The C compiler settings a build may find in the environment. Any of them would win over zig's and build the
/// C dependencies (aws-lc-sys, OpenSSL, libssh2) against this machine's glibc rather than 2.28.
const HOST_C_TOOLCHAIN: [&str; 6] = ["CC", "CXX", "HOST_CC", "HOST_CXX", "CFLAGS", "CXXFLAGS"];

/// Unpacks the one sdist in `argv[1]` into `argv[2]`, and prints the folder it unpacked to. The files get the
/// current time: the sdist dates them all to one fixed day, by which cargo, which compares times, would take
/// changed sources for ones it already built.
const UNPACK: &str = r#"
import glob, sys, tarfile, time
now = time.time()
found = glob.glob(glob.escape(sys.argv[1]) + "/*.tar.gz")
if len(found) != 1:
    sys.exit(f"expected one sdist in {sys.argv[1]}, found {found}")
with tarfile.open(found[0]) as sdist:
    members = sdist.getmembers()
    for member in members:
        member.mtime = now
    sdist.extractall(sys.argv[2], members, filter="data")
print(members[0].name.split("/")[0])
"#;

/// Prints the uncompressed size and the name of each extension module in the wheel `argv[1]`.
const MODULES: &str = r#"
import sys, zipfile
for member in zipfile.ZipFile(sys.argv[1]).infolist():
    if member.filename.endswith(".so"):
        print(member.file_size, member.filename)
"#;

/// Builds the sdist and the wheels into `<repo>/dist/` (emptied first), and shows what each wheel needs.
pub fn wheel() -> Result {
    let dirs = Dirs::new()?;
    let venv = dirs.target.join("xtask").join("release-venv");
    let requirements = dirs.root.join("xtask").join("release-requirements.txt");
    let python = step("release venv", || python::ensure_venv(&dirs, &venv, &requirements, &BasePython::newest()?))?;
    let interpreters = step("Python interpreters", || interpreters(&python))?;
    let dist = fresh_dir(dirs.root.join("dist")).map_err(Error::new)?;
    step("sdist", || {
        let manifest = dirs.root.join("crates/py-bindings/Cargo.toml");
        run(maturin(&dirs, &python).arg("sdist").arg("--manifest-path").arg(manifest).arg("--out").arg(&dist))
    })?;
    let wheels = step("wheels, built from the sdist", || build_wheels(&dirs, &python, &dist, &interpreters))?;
    step("auditwheel show", || wheels.iter().try_for_each(|wheel| show(&dirs, &python, wheel)))
}

/// The interpreters to build for: each supported Python older than [`ABI3_FROM`] that is installed here, for a
/// wheel of its own, and the venv's Python (3.11 or newer) for the abi3 wheel.
fn interpreters(venv_python: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for &version in SUPPORTED.iter().filter(|&&version| version < ABI3_FROM) {
        match python::find(version) {
            Some(path) => found.push(path),
            None => println!("    Python {version} not found on PATH or in pyenv: no wheel is built for it"),
        }
    }
    match python::version_of(venv_python)? {
        Some(version) if version >= ABI3_FROM => found.push(venv_python.to_owned()),
        version => {
            return Err(Error::new(format!(
                "the abi3 wheel needs Python {ABI3_FROM} or newer, but the release venv's {} is {}",
                venv_python.display(),
                version.map_or_else(|| "broken".to_owned(), |v| format!("Python {v}"))
            )));
        }
    }
    for python in &found {
        println!("    {}", python.display());
    }
    Ok(found)
}

/// The wheels, built from the sdist in `dist` rather than from the repo, so that a release proves its sdist
/// builds; returns them.
fn build_wheels(dirs: &Dirs, python: &Path, dist: &Path, interpreters: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let unpacked = fresh_dir(dirs.target.join("xtask").join("release-sdist")).map_err(Error::new)?;
    let top = output(dirs.command(python).args(["-c", UNPACK]).arg(dist).arg(&unpacked))?;
    let mut build = maturin(dirs, python);
    build
        .current_dir(unpacked.join(top.trim()))
        .args(["build", "--release", "--strip", "--zig", "--compatibility", MANYLINUX, "--auditwheel", "check"])
        .arg("--out")
        .arg(dist)
        // cargo-zigbuild, inside maturin, runs zig as `python3 -m ziglang`: the venv's python has it.
        .env("CARGO_ZIGBUILD_PYTHON_PATH", python)
        // libssh2's zlib built in, as the manylinux set has no libz.
        .env("LIBZ_SYS_STATIC", "1");
    for interpreter in interpreters {
        build.arg("--interpreter").arg(interpreter);
    }
    for variable in HOST_C_TOOLCHAIN {
        build.env_remove(variable);
    }
    run(&mut build)?;
    let mut wheels = python::list_wheels(dist)?;
    if wheels.len() != interpreters.len() {
        return Err(Error::new(format!(
            "expected {} wheels in {} after maturin build, found {wheels:?}",
            interpreters.len(),
            dist.display()
        )));
    }
    wheels.sort();
    Ok(wheels)
}

/// Prints the wheel's size, its extension module's, its platform tag and the newest glibc symbol it links, as
/// `auditwheel show` reports them.
fn show(dirs: &Dirs, python: &Path, wheel: &Path) -> Result {
    let report = output(dirs.command(python).args(["-m", "auditwheel", "show"]).arg(wheel))?;
    let unexpected = || Error::new(format!("unexpected `auditwheel show` report for {}:\n{report}", wheel.display()));
    let tag = report.split('"').nth(1).ok_or_else(unexpected)?;
    let glibc = newest_glibc(&report).ok_or_else(unexpected)?;
    let size = fs::metadata(wheel).map_err(|e| Error::new(format!("cannot read {}: {e}", wheel.display())))?.len();
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    println!("    {name}: {}, {tag}, newest symbol GLIBC_{glibc}", mib(size));
    for module in output(dirs.command(python).args(["-c", MODULES]).arg(wheel))?.lines() {
        let (size, path) = module.split_once(' ').unwrap_or_default();
        let size = size.parse().map_err(|_| Error::new(format!("cannot read the modules of {name}: {module}")))?;
        println!("      {path}: {} unpacked", mib(size));
    }
    Ok(())
}

/// The newest `GLIBC_x.y` version among the symbol versions in an `auditwheel show` report.
fn newest_glibc(report: &str) -> Option<String> {
    report
        .split("GLIBC_")
        .skip(1)
        .filter_map(|after| {
            let version: String = after.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let version = version.trim_end_matches('.').to_owned();
            let parts: Option<Vec<u32>> = version.split('.').map(|part| part.parse().ok()).collect();
            Some((parts?, version))
        })
        .max()
        .map(|(_, version)| version)
}

/// The venv's maturin.
fn maturin(dirs: &Dirs, python: &Path) -> Command {
    let mut cmd = dirs.command(python);
    cmd.args(["-m", "maturin"]);
    cmd
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
