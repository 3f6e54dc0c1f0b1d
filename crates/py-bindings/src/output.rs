//! What a stored output reports, as the dict the Python IO manager turns into Dagster metadata.

use io_manager::OutputMetadata;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serializers::parquet::{Compression, Encoded};

/// `path`, `uri`, `size` and `checksum` of a written object.
pub fn metadata(py: Python<'_>, written: OutputMetadata) -> PyResult<Bound<'_, PyDict>> {
    let metadata = PyDict::new(py);
    metadata.set_item("path", written.path.as_str())?;
    metadata.set_item("uri", written.uri)?;
    metadata.set_item("size", written.size)?;
    metadata.set_item("checksum", written.checksum.to_string())?;
    Ok(metadata)
}

/// Adds what a stored table holds to its output metadata: `row_count`,
/// `columns` (name and Arrow type) and `compression`.
pub fn table_metadata(out: &Bound<'_, PyDict>, encoded: &Encoded, compression: Compression) -> PyResult<()> {
    let columns: Vec<(String, String)> =
        encoded.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect();
    out.set_item("row_count", encoded.row_count)?;
    out.set_item("columns", columns)?;
    out.set_item("compression", compression.to_string())
}
