//! One job: the storage backends that implement [`store_core::Backend`], each
//! behind its own cargo feature so a Rust user compiles only what they use:
//!
//! | feature  | backend                      | URI scheme  |
//! |----------|------------------------------|-------------|
//! | `local`  | [`LocalBackend`]: files under a root folder, atomic writes, optional fsync | `file://`   |
//! | `memory` | [`MemoryBackend`]: per-process memory, for tests and ephemeral runs | `memory://` |
//! | `s3`     | `S3Backend`: Amazon S3 and S3-compatible servers | `s3://`     |
//! | `azure`  | `AzureBackend`: Azure Blob Storage | the blob's URL, `https://` |
//! | `gcs`    | `GcsBackend`: Google Cloud Storage | `gs://`     |
//! | `sftp`   | `SftpBackend`: any SFTP server (OpenSSH), through libssh2 | `sftp://`   |
//! | `registry` | `registry`: stores by name from a TOML or JSON config, with `${VAR}` interpolation and credentials held as `store_core::Secret` | — |
//!
//! The other way round, `ObjectStoreAdapter` makes any `Store` an `object_store::ObjectStore`, for the
//! Rust tools built on `object_store` (DataFusion, Polars, delta-rs): feature `object-store-adapter`
//! (on by default) for `object_store` 0.14, `object-store-0-13` for 0.13 (DataFusion 55).
//!
//! Layering, dependencies pointing one way: this crate depends on `store-core`
//! only; `py-bindings` depends on it (and `io-manager` uses it in its tests).
//!
//! Backends built on `object_store` share one adapter,
//! [`ObjectStoreBackend`], so they map errors and paths the same way; every
//! backend runs `store_core`'s conformance suite in its tests, the remote ones
//! against real servers that `cargo xtask test` starts.
//!
//! Errors: each module has its own `thiserror` type (the private `error`
//! module lists every way a backend fails) and `From` maps it onto one
//! [`store_core::ErrorKind`], keeping the typed error as the source. Callers see
//! [`store_core::Error`] only.
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
#![deny(unsafe_code)]

mod error;
#[cfg(any(feature = "object-store-adapter", feature = "object-store-0-13"))]
mod object_store_adapter;
mod object_store_backend;

#[cfg(feature = "azure")]
mod azure;
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
mod cloud;
#[cfg(feature = "gcs")]
mod gcs;
#[cfg(feature = "s3")]
mod s3;

#[cfg(feature = "local")]
mod local;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "sftp")]
mod sftp;
#[cfg(any(feature = "s3", feature = "gcs"))]
mod uploads;
mod uri;

#[cfg(feature = "registry")]
pub mod registry;

#[cfg(feature = "azure")]
pub use azure::{AzureBackend, AzureConfig};
#[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
pub use cloud::ClientConfig;
#[cfg(feature = "gcs")]
pub use gcs::{GcsBackend, GcsConfig};
#[cfg(feature = "local")]
pub use local::LocalBackend;
#[cfg(feature = "memory")]
pub use memory::MemoryBackend;
#[cfg(any(feature = "object-store-adapter", feature = "object-store-0-13"))]
pub use object_store_adapter::ObjectStoreAdapter;
pub use object_store_backend::{DEFAULT_PART_SIZE, DEFAULT_PARTS_IN_FLIGHT, ObjectStoreBackend};
#[cfg(feature = "s3")]
pub use s3::{S3Backend, S3Config};
#[cfg(feature = "sftp")]
pub use sftp::{SftpAuth, SftpBackend, SftpConfig, SftpHostKey};
