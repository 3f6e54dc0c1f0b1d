//! One job, the Store API: a narrow async [`Backend`] trait, a [`Store`] (a
//! backend plus a root prefix), one validated [`StorePath`] type and one
//! [`Error`] type.
//!
//! Layering, dependencies pointing one way: this crate depends on no other
//! crate of the workspace; `store-backends` (which implements [`Backend`]),
//! `io-manager` and `py-bindings` depend on it. Its examples use
//! `store-backends`' memory backend as a dev-dependency only.
//!
//! Backends live in the `store-backends` crate, each behind its own cargo
//! feature; they all run the shared conformance suite in the `conformance`
//! module (feature `conformance`), so a Store behaves the same on every backend.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> store_core::Result<()> {
//! use futures::TryStreamExt;
//! use store_core::{ListEntry, Store, StorePath, WriteMode};
//!
//! let store = Store::new(store_backends::MemoryBackend::new());
//! for name in ["daily/2026-01-01.pkl", "daily/2026-01-02.pkl"] {
//!     store.write(&name.parse()?, "data".into(), WriteMode::Overwrite).await?;
//! }
//! let daily: StorePath = "daily".parse()?;
//! let mut names: Vec<String> = store
//!     .list(Some(&daily), true)
//!     .map_ok(|entry| match entry {
//!         ListEntry::Object(meta) => meta.path.to_string(),
//!         ListEntry::Prefix(prefix) => prefix.to_string(),
//!     })
//!     .try_collect()
//!     .await?;
//! names.sort();
//! assert_eq!(names, ["daily/2026-01-01.pkl", "daily/2026-01-02.pkl"]);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod backend;
pub mod buffer;
mod error;
mod path;
mod secret;
mod store;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use backend::{
    Backend, BackendExt, GetOptions, GetResult, HeadOptions, Leftover, ListEntry, Metadata, ObjectMeta, ObjectStream,
    Payload, PutOptions, UpdateVersion, WriteMode, WriteResult,
};
pub use error::{Error, ErrorKind, Result};
pub use path::StorePath;
pub use secret::Secret;
pub use store::Store;
