//! Pandas frames filled while a Parquet file arrives. A table whose columns share
//! one numeric type and hold no nulls (what pandas keeps in one NumPy block) gets
//! that block before its first row group is in, and each row group is decoded
//! straight into it, 64 Ki rows at a time. So the decoded table is never
//! held beside the frame, its memory is reused from one batch to the next rather
//! than faulted in afresh, and no copy of the whole table is left for after the
//! last byte. Every other table goes through pyarrow's `to_pandas()`.

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use io_manager::tables::RowGroupTarget;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PySchema;
use serde_json::Value;
use serializers::SerializeError;
use serializers::parquet::{self, ArrivingFile, RowGroup};

use crate::stream::byte_buffer;

/// Rows decoded at a time: a column's batch (512 KiB of 8-byte values) stays among
/// the small blocks the allocator reuses.
const BATCH_ROWS: usize = 64 << 10;

/// The one NumPy block of a frame being filled, `[column][row]`, and what the
/// frame needs besides: its index, and pyarrow's reading of the file's pandas
/// metadata (column labels, `attrs`) from an empty frame of the same schema.
pub struct FrameBlock {
    block: Py<PyAny>,
    empty: Py<PyAny>,
    start: *mut u8,
    data_type: DataType,
    width: usize,
    columns: usize,
    rows: usize,
    index: RangeIndex,
}

// SAFETY: `start` points into `block`'s memory, which `block` keeps alive and
// nothing else references; row groups write disjoint rows of it (`fill`), and
// the frame is only built once every write has finished.
unsafe impl Send for FrameBlock {}
unsafe impl Sync for FrameBlock {}

/// The frame's index as pandas' metadata records it: `RangeIndex(start, stop, step, name)`.
struct RangeIndex {
    start: i64,
    stop: i64,
    step: i64,
    name: Option<String>,
}

impl RowGroupTarget for FrameBlock {
    /// Decodes `group` into its rows of the block.
    ///
    /// # Errors
    ///
    /// A decode error if the row group does not decode, or does not hold what the
    /// footer said (a null, another type, rows beyond the file's count).
    fn fill(&self, group: RowGroup) -> Result<(), SerializeError> {
        let mut row = usize::try_from(group.first_row()).unwrap_or(usize::MAX);
        for batch in group.decode_in_batches(BATCH_ROWS)? {
            let batch = batch?;
            self.copy(row, &batch)?;
            row += batch.num_rows();
        }
        Ok(())
    }
}

impl FrameBlock {
    /// The block for the file `arriving`, if its table is one pandas keeps in one
    /// block and has a range index (or none recorded); `None` for any other table,
    /// or if pandas or pyarrow is missing (the ordinary load then says so).
    pub fn for_file(arriving: &ArrivingFile) -> Option<Self> {
        let schema = arriving.schema();
        let rows = usize::try_from(arriving.row_count()).ok().filter(|&rows| rows > 0)?;
        let data_type = schema.fields().first()?.data_type().clone();
        let (dtype, width) = numpy_dtype(&data_type)?;
        if !schema.fields().iter().all(|field| field.data_type() == &data_type) || !arriving.has_no_nulls() {
            return None;
        }
        let index = range_index(schema, rows)?;
        let columns = schema.fields().len();
        Python::attach(|py| {
            let empty = empty_frame(py, schema).ok()?;
            // pyarrow's reading of the metadata must give these columns, of this dtype.
            let dtypes: Vec<String> = (empty.getattr("dtypes").and_then(|d| d.call_method0("tolist")))
                .and_then(|d| d.try_iter()?.map(|d| d?.str()?.extract::<String>()).collect::<PyResult<_>>())
                .ok()?;
            if dtypes.len() != columns || dtypes.iter().any(|d| d != dtype) {
                return None;
            }
            let block = py.import("numpy").ok()?.call_method1("empty", ((columns, rows), dtype)).ok()?;
            let start = byte_buffer(&block).ok()?.buf_ptr().cast::<u8>();
            Some(Self { block: block.unbind(), empty: empty.unbind(), start, data_type, width, columns, rows, index })
        })
    }

    fn copy(&self, row: usize, batch: &RecordBatch) -> Result<(), SerializeError> {
        let rows = batch.num_rows();
        let mismatch =
            |what: &str| SerializeError::decode(parquet::NAME, format!("a row group {what} its footer said"));
        if row.checked_add(rows).is_none_or(|end| end > self.rows) || batch.num_columns() != self.columns {
            return Err(mismatch("holds more than"));
        }
        for (column, array) in batch.columns().iter().enumerate() {
            let data = array.to_data();
            if array.null_count() > 0 || data.data_type() != &self.data_type {
                return Err(mismatch("holds other values than"));
            }
            let values = &data.buffers()[0].as_slice()[data.offset() * self.width..][..rows * self.width];
            // SAFETY: `column < columns` and `row + rows <= self.rows` (checked above), so the
            // target lies inside the block; each row group writes only its own rows, and
            // Arrow's memory never overlaps NumPy's.
            unsafe {
                let at = self.start.add((column * self.rows + row) * self.width);
                std::ptr::copy_nonoverlapping(values.as_ptr(), at, values.len());
            }
        }
        Ok(())
    }

    /// The filled block as a frame: consolidated and writable, as pyarrow's `to_pandas()` makes it.
    pub fn into_frame(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let pandas = py.import("pandas")?;
        let RangeIndex { start, stop, step, name } = self.index;
        let kwargs = PyDict::new(py);
        kwargs.set_item("name", name)?;
        let index = pandas.getattr("RangeIndex")?.call((start, stop, step), Some(&kwargs))?;
        let empty = self.empty.bind(py);
        let kwargs = PyDict::new(py);
        kwargs.set_item("index", index)?;
        kwargs.set_item("columns", empty.getattr("columns")?)?;
        kwargs.set_item("copy", false)?;
        // The frame's block is the transpose of what it is given: this one, not a copy.
        let frame = pandas.getattr("DataFrame")?.call((self.block.bind(py).getattr("T")?,), Some(&kwargs))?;
        frame.setattr("attrs", empty.getattr("attrs")?)?;
        Ok(frame)
    }
}

/// pyarrow's frame of `schema` with no rows.
fn empty_frame<'py>(py: Python<'py>, schema: &SchemaRef) -> PyResult<Bound<'py, PyAny>> {
    let schema = pyarrow_schema(&py.import("pyarrow")?, schema.clone())?;
    schema.call_method0("empty_table")?.call_method0("to_pandas")
}

/// The NumPy dtype pandas holds a column of `data_type` without nulls in, and its width.
fn numpy_dtype(data_type: &DataType) -> Option<(&'static str, usize)> {
    let dtype = match data_type {
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        _ => return None,
    };
    Some((dtype, data_type.primitive_width()?))
}

/// The range index pandas' metadata in `schema` records for `rows` rows, or the
/// default one where none is recorded; `None` for an index stored as columns.
fn range_index(schema: &SchemaRef, rows: usize) -> Option<RangeIndex> {
    let whole = RangeIndex { start: 0, stop: i64::try_from(rows).ok()?, step: 1, name: None };
    let Some(metadata) = schema.metadata().get("pandas") else { return Some(whole) };
    let metadata: Value = serde_json::from_str(metadata).ok()?;
    match metadata.get("index_columns")?.as_array()?.as_slice() {
        [] => Some(whole),
        [range] if range.get("kind")?.as_str()? == "range" => {
            let number = |key: &str| range.get(key)?.as_i64();
            let (start, stop, step) = (number("start")?, number("stop")?, number("step")?);
            let name = match range.get("name")? {
                Value::Null => None,
                Value::String(name) => Some(name.clone()),
                _ => return None,
            };
            // pyarrow drops a recorded range that does not fit the rows; so does the ordinary load.
            let len = if step > 0 && stop > start { (stop - start + step - 1) / step } else { 0 };
            (usize::try_from(len).ok()? == rows).then_some(RangeIndex { start, stop, step, name })
        }
        _ => None,
    }
}

/// `schema` as a `pyarrow.Schema`, its metadata included.
pub fn pyarrow_schema<'py>(pyarrow: &Bound<'py, PyModule>, schema: SchemaRef) -> PyResult<Bound<'py, PyAny>> {
    pyarrow.call_method1("schema", (PySchema::new(schema),))
}
