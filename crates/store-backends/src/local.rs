//! Local (or mounted) filesystem storage with atomic writes.

use std::path::{Path, PathBuf};

use object_store::local::LocalFileSystem;
use store_core::{Error, ErrorKind, Result};

use crate::ObjectStoreBackend;
use crate::object_store_backend::uri_escape;

/// Objects as files under a root folder.
///
/// Writes go to a temporary file beside the target (`name#N`) and are renamed
/// into place, so a reader sees the old or the new file, never a mix, and a
/// failed or crashed write never leaves a partial file at the target (it may
/// leave the hidden temporary, which listings skip). Create-only writes use a
/// hard link, so exactly one of several racing writers wins. With
/// [`with_fsync`](Self::with_fsync) files and their folders are synced before
/// a write returns. Names ending in `#` plus digits are reserved for those
/// temporaries and rejected as invalid paths.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_core::{Store, WriteMode};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::new(store_backends::LocalBackend::new(dir.path())?);
/// store.write(&"assets/orders.json".parse()?, "[]".into(), WriteMode::Overwrite).await?;
/// assert!(dir.path().join("assets/orders.json").is_file());
/// # Ok(()) }
/// ```
pub type LocalBackend = ObjectStoreBackend<LocalFileSystem>;

impl ObjectStoreBackend<LocalFileSystem> {
    /// A backend rooted at `root`, which is created if missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        Self::with_options(root, false)
    }

    /// A backend rooted at `root` that syncs every write to disk before returning.
    pub fn with_fsync(root: impl AsRef<Path>) -> Result<Self> {
        Self::with_options(root, true)
    }

    fn with_options(root: impl AsRef<Path>, fsync: bool) -> Result<Self> {
        let root = root.as_ref();
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            Error::new(ErrorKind::Other, format!("cannot {what} local root {}: {e}", root.display()))
        };
        std::fs::create_dir_all(root).map_err(|e| failed("create", &e))?;
        let root: PathBuf = root.canonicalize().map_err(|e| failed("resolve", &e))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| failed("open", &e))?
            .with_fsync(fsync)
            .with_automatic_cleanup(true);
        let uri_root = format!("file://{}", uri_escape(root.to_string_lossy().trim_end_matches('/')));
        Ok(Self::from_store(store, "local", uri_root).without_metadata())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use store_core::{Store, StorePath, WriteMode};

    use super::LocalBackend;

    fn shared_root() -> &'static tempfile::TempDir {
        static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
        ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir"))
    }

    async fn make_store() -> Store {
        Store::new(LocalBackend::new(shared_root().path()).expect("local backend"))
    }

    store_core::conformance_tests!(make_store);

    #[tokio::test]
    async fn a_failed_write_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let path: StorePath = "blocked/target.bin".parse().unwrap();
        // A file where the parent folder should be makes the write fail part-way.
        std::fs::write(dir.path().join("blocked"), b"not a folder").unwrap();
        assert!(store.write(&path, vec![1u8; 1 << 20].into(), WriteMode::Overwrite).await.is_err());
        assert_eq!(std::fs::read(dir.path().join("blocked")).unwrap(), b"not a folder");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["blocked"], "no temporary or partial file is left at the root");
    }

    #[tokio::test]
    async fn uri_is_a_file_uri_of_the_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::new(dir.path()).unwrap());
        let uri = store.uri(&"a b/c.pkl".parse().unwrap());
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(uri, format!("file://{}/a%20b/c.pkl", root.display()));
    }

    #[tokio::test]
    async fn fsync_mode_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(LocalBackend::with_fsync(dir.path()).unwrap());
        let path: StorePath = "durable.txt".parse().unwrap();
        store.write(&path, "kept".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("durable.txt")).unwrap(), b"kept");
    }
}
