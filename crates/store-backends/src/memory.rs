//! In-memory storage, per process.

use object_store::memory::InMemory;

use crate::ObjectStoreBackend;

/// Objects held in this process's memory: for tests and ephemeral runs.
///
/// Each `MemoryBackend::new()` is its own empty space, shared by every Store
/// built on it (clones share it too), and gone when the process ends. Another
/// process, such as a Dagster step launched by the multiprocess executor, does
/// not see it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
/// use store_core::{Store, WriteMode};
/// let store = Store::new(store_backends::MemoryBackend::new());
/// store.write(&"k.txt".parse()?, "v".into(), WriteMode::Overwrite).await?;
/// assert_eq!(store.uri(&"k.txt".parse()?), "memory:///k.txt");
/// # Ok(()) }
/// ```
pub type MemoryBackend = ObjectStoreBackend<InMemory>;

impl ObjectStoreBackend<InMemory> {
    /// A new, empty in-memory space.
    pub fn new() -> Self {
        Self::from_store(InMemory::new(), "memory", "memory://".into())
    }
}

impl Default for ObjectStoreBackend<InMemory> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use store_core::Store;

    async fn make_store() -> Store {
        Store::new(super::MemoryBackend::new())
    }

    store_core::conformance_tests!(make_store);
}
