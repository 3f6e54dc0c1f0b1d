//! `cargo xtask publish-check`: the library crates as crates.io would receive them, without uploading anything.
//!
//! `cargo publish --workspace --dry-run` packages every member that is not `publish = false` (store-core,
//! asset-paths, store-serializers, store-backends, io-manager), checks each manifest (description, license,
//! a version on every path dependency), and then builds each crate from its packaged files alone, in
//! dependency order, against the others' packages rather than their folders. A file the package leaves out,
//! or a build script that reads outside its crate, fails here and not after the upload. cargo prints each
//! package's file count and size as it packages it. Warnings fail the build here, as clippy's do: this is the one
//! build of each crate with its default features alone, as most users build it (clippy runs with all features).
//!
//! The crates' metadata fields (readme, keywords, categories, documentation, ...) are checked without a build
//! by the tidy test, `crate_manifests_have_crates_io_metadata`.

use std::env;

use crate::Dirs;
use crate::run::{Result, run, step};

/// Runs the dry run; `cargo_args` go to `cargo publish` (e.g. `--all-features` to build every feature, or
/// `--exclude io-manager` to leave one out).
pub fn check(cargo_args: &[&str]) -> Result {
    let dirs = Dirs::new()?;
    step("cargo publish --workspace --dry-run", || {
        // The working tree as it is, committed or not: this is a check to run while working. The real
        // `cargo publish` (no --dry-run, no --allow-dirty) refuses uncommitted changes.
        let dry_run = ["publish", "--workspace", "--dry-run", "--allow-dirty"];
        let rustflags = env::var("RUSTFLAGS").map_or_else(|_| "-D warnings".to_owned(), |f| format!("{f} -D warnings"));
        run(dirs.cargo().args(dry_run).args(cargo_args).env("RUSTFLAGS", rustflags))
    })
}
