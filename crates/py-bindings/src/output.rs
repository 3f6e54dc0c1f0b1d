//! What a stored output reports, as the dict the Python IO manager turns into Dagster metadata.

use arrow::datatypes::Schema;
use io_manager::OutputMetadata;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PySchema;
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
/// `columns` (see [`columns`]), `schema` (the stored Arrow schema, for the
/// Python side to name its types as pyarrow does) and `compression`.
pub fn table_metadata(out: &Bound<'_, PyDict>, encoded: &Encoded, compression: Compression) -> PyResult<()> {
    out.set_item("row_count", encoded.row_count)?;
    out.set_item("columns", columns(&encoded.schema))?;
    out.set_item("schema", PySchema::new(encoded.schema.clone()))?;
    out.set_item("compression", compression.to_string())
}

/// Each column's name and stored type, as arrow-rs names it (`Utf8`, `Timestamp(ns, "UTC")`).
pub fn columns(schema: &Schema) -> Vec<(String, String)> {
    schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect()
}
