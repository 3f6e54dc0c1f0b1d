//! One job: the `dagster_remote_store._core` extension module of the Python
//! wheel: the Store, its backends, the serializers (pickle, JSON, Parquet) and
//! the Rust half of the Dagster IO manager. The Python package around it
//! (`python/dagster_remote_store`) holds the Dagster glue.
//!
//! Layering, dependencies pointing one way: this crate depends on
//! `store-core`, `store-backends`, `serializers`, `asset-paths` and
//! `io-manager`; no crate depends on it.
#![deny(unsafe_code)]

#[allow(unsafe_code)] // a global allocator is unsafe to implement
mod allocator;
mod backends;
mod builtin;
mod errors;
mod files;
mod foreign;
#[allow(unsafe_code)] // decodes row groups straight into the NumPy block
mod frame;
mod io;
mod output;
mod owner;
mod parquet;
mod pickle;
#[allow(unsafe_code)] // writes borrow Python's buffers without a copy
mod pickle_stream;
mod registry;
mod runtime;
mod serializers;
mod store;
#[allow(unsafe_code)] // `readinto` fills Python's buffer in place
mod stream;
mod value;

use pyo3::prelude::*;

/// Tables freed by this extension go back to the kernel (see `LargeMappings`): a Parquet
/// load lets go of each column as pandas copies it, and streams reuse their parts' memory.
#[global_allocator]
static ALLOCATOR: allocator::LargeMappings = allocator::LargeMappings::new();

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHECKSUM_RECORDS_SUFFIX", io_manager::integrity::RECORDS_SUFFIX)?;
    m.add("CHECKSUM_SIDECAR_SUFFIX", io_manager::integrity::SIDECAR_SUFFIX)?;
    m.add_class::<backends::Backend>()?;
    m.add_class::<backends::LocalBackend>()?;
    m.add_class::<backends::MemoryBackend>()?;
    m.add_class::<backends::S3Backend>()?;
    m.add_class::<backends::AzureBackend>()?;
    m.add_class::<backends::GcsBackend>()?;
    m.add_class::<backends::SftpBackend>()?;
    m.add_class::<store::Store>()?;
    m.add_class::<store::FileInfo>()?;
    m.add_class::<stream::ObjectWriter>()?;
    m.add_class::<stream::ObjectReader>()?;
    m.add_class::<builtin::BuiltinSerializer>()?;
    m.add_class::<serializers::PickleSerializer>()?;
    m.add_class::<serializers::JsonSerializer>()?;
    m.add_class::<parquet::ParquetSerializer>()?;
    m.add_class::<io::IoManagerCore>()?;
    m.add_class::<files::OutputWriter>()?;
    m.add_class::<files::RangedReader>()?;
    m.add_function(wrap_pyfunction!(serializers::serializer_names, m)?)?;
    m.add_function(wrap_pyfunction!(foreign::foreign_store, m)?)?;
    m.add_class::<registry::Registry>()?;
    m.add_class::<registry::Secret>()?;
    m.add_function(wrap_pyfunction!(registry::redact_secrets, m)?)?;
    Ok(())
}
