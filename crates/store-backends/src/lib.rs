//! Storage backends for [`store_core`], each behind its own cargo feature so a
//! Rust user compiles only what they use:
//!
//! | feature  | backend                      | URI scheme  |
//! |----------|------------------------------|-------------|
//! | `local`  | [`LocalBackend`]: files under a root folder, atomic writes, optional fsync | `file://`   |
//! | `memory` | [`MemoryBackend`]: per-process memory, for tests and ephemeral runs | `memory://` |
//!
//! Backends built on `object_store` share one adapter,
//! [`ObjectStoreBackend`], so they map errors and paths the same way; every
//! backend runs `store_core`'s conformance suite in its tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
//! use store_core::{Store, WriteMode};
//! use store_backends::MemoryBackend;
//!
//! let store = Store::new(MemoryBackend::new());
//! let path = "reports/daily.json".parse()?;
//! store.write(&path, "{}".into(), WriteMode::CreateNew).await?;
//! assert!(store.exists(&path).await?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod object_store_backend;

#[cfg(feature = "local")]
mod local;
#[cfg(feature = "memory")]
mod memory;

#[cfg(feature = "local")]
pub use local::LocalBackend;
#[cfg(feature = "memory")]
pub use memory::MemoryBackend;
pub use object_store_backend::ObjectStoreBackend;
