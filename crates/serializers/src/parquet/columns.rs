//! Some columns of a Parquet file, decoded from only the bytes that hold them.

use std::ops::Range;
use std::sync::Arc;

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::arriving::Received;
use super::{Decoded, NAME, caught, decode_from, reader_footer};
use crate::SerializeError;

/// Some byte ranges of a Parquet file of known size, each with the offset it starts at:
/// what [`column_ranges`] and [`decode_columns`] read from.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::{Int64Array, StringArray};
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::{RecordBatch, RecordBatchIterator};
/// use store_serializers::parquet::{self, ParquetOptions, Pieces};
///
/// # let schema = Arc::new(Schema::new(vec![
/// #     Field::new("id", DataType::Int64, false),
/// #     Field::new("name", DataType::Utf8, false),
/// # ]));
/// # let columns = vec![Arc::new(Int64Array::from(vec![1, 2])) as _, Arc::new(StringArray::from(vec!["a", "b"])) as _];
/// # let batch = RecordBatch::try_new(schema.clone(), columns)?;
/// let file = parquet::encode(RecordBatchIterator::new([Ok(batch)], schema), &ParquetOptions::default())?;
/// let size = file.len() as u64;
/// let footer = parquet::ArrivingFile::footer_length(&file)?; // from the last 8 bytes
/// let tail = (size - footer, file.slice(file.len() - footer as usize..));
///
/// // The footer says where the chosen columns are; only those bytes are needed to decode them.
/// let wanted = ["name".to_owned()];
/// let mut pieces = vec![tail.clone()];
/// for range in parquet::column_ranges(&Pieces::new(size, vec![tail]), &wanted)? {
///     pieces.push((range.start, file.slice(range.start as usize..range.end as usize)));
/// }
/// let (schema, batches, _) = parquet::decode_columns(Pieces::new(size, pieces), &wanted)?;
/// assert_eq!(schema.fields().len(), 1);
/// assert_eq!(batches[0].column(0).as_any().downcast_ref::<StringArray>().unwrap().value(1), "b");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pieces(Received);

impl Pieces {
    /// `pieces` of a file of `size` bytes, in any order, each with the offset it starts at.
    pub fn new(size: u64, pieces: Vec<(u64, Bytes)>) -> Self {
        Self(Received::from_pieces(size, pieces))
    }
}

/// Where the top-level columns `columns` names are in the file whose footer is among
/// `file`'s pieces: the byte range of each of their column chunks, in every row group.
///
/// # Errors
///
/// A decode error if the pieces do not hold the file's footer, or naming a column the
/// file does not have.
pub fn column_ranges(file: &Pieces, columns: &[String]) -> Result<Vec<Range<u64>>, SerializeError> {
    caught(SerializeError::decode, || {
        let footer = ArrowReaderMetadata::load(&file.0, Default::default()).map_err(|e| decode_error(&e))?;
        let (footer, schema) = reader_footer(footer)?;
        let roots = chosen(&schema, columns)?;
        let parquet = footer.metadata();
        let descr = parquet.file_metadata().schema_descr();
        let leaves: Vec<bool> =
            (0..descr.num_columns()).map(|leaf| roots.contains(&descr.get_column_root_idx(leaf))).collect();
        Ok(parquet
            .row_groups()
            .iter()
            .flat_map(|group| group.columns().iter().zip(&leaves).filter(|(_, wanted)| **wanted))
            .map(|(column, _)| {
                let (start, length) = column.byte_range();
                start..start + length
            })
            .collect())
    })
}

/// The top-level columns `columns` names, in that order, decoded from `file`, whose
/// pieces hold the file's footer and the ranges [`column_ranges`] gave. Columns that a
/// pandas frame's index was stored in come along (after the others), as pandas'
/// `read_parquet(columns=...)` brings them.
///
/// # Errors
///
/// A decode error if a piece the columns need is missing, if the bytes are not valid
/// Parquet, or naming a column the file does not have.
pub fn decode_columns(file: Pieces, columns: &[String]) -> Result<Decoded, SerializeError> {
    decode_from(file.0, Some(columns))
}

fn decode_error(e: &dyn std::fmt::Display) -> SerializeError {
    SerializeError::decode(NAME, e.to_string())
}

/// The indices in `schema` of the columns `columns` names, in that order (each once),
/// then those of a pandas index recorded in the schema's `pandas` metadata, if not named.
pub(super) fn chosen(schema: &Schema, columns: &[String]) -> Result<Vec<usize>, SerializeError> {
    let names: Vec<&str> = schema.fields().iter().map(|field| field.name().as_str()).collect();
    let mut chosen = Vec::new();
    for column in columns {
        let index = names.iter().position(|name| name == column).ok_or_else(|| {
            SerializeError::decode(
                NAME,
                format!("the table has no column {column:?}; its columns: {}", names.join(", ")),
            )
        })?;
        if !chosen.contains(&index) {
            chosen.push(index);
        }
    }
    for index in pandas_index(schema) {
        if let Some(index) = names.iter().position(|name| *name == index).filter(|i| !chosen.contains(i)) {
            chosen.push(index);
        }
    }
    Ok(chosen)
}

/// The columns a pandas frame's index was stored in (pandas' `index_columns` entry; a
/// range index is stored in the metadata alone and names none).
fn pandas_index(schema: &Schema) -> Vec<String> {
    let Some(pandas) = schema.metadata().get("pandas") else { return Vec::new() };
    let Ok(pandas) = serde_json::from_str::<serde_json::Value>(pandas) else { return Vec::new() };
    let columns = pandas.get("index_columns").and_then(serde_json::Value::as_array);
    columns.into_iter().flatten().filter_map(|column| column.as_str().map(str::to_owned)).collect()
}

/// What decoding the columns `columns` names of a file with `schema` needs: the mask that
/// picks them, the schema of what it decodes (in file order), and where each column asked
/// for is in it.
pub(super) fn projection(
    footer: &ArrowReaderMetadata,
    schema: &SchemaRef,
    columns: &[String],
) -> Result<(ProjectionMask, SchemaRef, Vec<usize>), SerializeError> {
    let chosen = chosen(schema, columns)?;
    let mut roots = chosen.clone();
    roots.sort_unstable();
    let mask = ProjectionMask::roots(footer.metadata().file_metadata().schema_descr(), roots.iter().copied());
    let read = Arc::new(schema.project(&roots).map_err(|e| decode_error(&e))?);
    let order = chosen.iter().map(|index| roots.binary_search(index).expect("each chosen column is read")).collect();
    Ok((mask, read, order))
}

/// `batches` of `schema` with their columns in `order`.
pub(super) fn reorder(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    order: &[usize],
) -> Result<(SchemaRef, Vec<RecordBatch>), SerializeError> {
    let schema = Arc::new(schema.project(order).map_err(|e| decode_error(&e))?);
    let batches: Result<Vec<_>, _> =
        batches.iter().map(|batch| batch.project(order).map_err(|e| decode_error(&e))).collect();
    Ok((schema, batches?))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{Float64Array, Int64Array, RecordBatchIterator, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::parquet::{self, Compression, ParquetOptions};

    /// Three columns (and a pandas index column), 200 000 rows in row groups of 64 Ki.
    fn file() -> (Bytes, RecordBatch) {
        let pandas = r#"{"index_columns": ["__index_level_0__"], "columns": []}"#;
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("price", DataType::Float64, false),
                Field::new("name", DataType::Utf8, false),
                Field::new("__index_level_0__", DataType::Int64, false),
            ],
            HashMap::from([("pandas".to_owned(), pandas.to_owned())]),
        ));
        let ids: Int64Array = (0..200_000).collect();
        let prices: Float64Array = ids.values().iter().map(|&n| n as f64 / 4.0).collect();
        let names: StringArray = ids.values().iter().map(|n| Some(format!("item {n}"))).collect();
        let index: Int64Array = ids.values().iter().map(|n| n * 10).collect();
        let columns = vec![Arc::new(ids) as _, Arc::new(prices) as _, Arc::new(names) as _, Arc::new(index) as _];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let batches: Vec<_> = (0..4).map(|i| batch.slice(i * 50_000, 50_000)).collect();
        let options = ParquetOptions { compression: Compression::None, ..Default::default() };
        (parquet::encode(RecordBatchIterator::new(batches.into_iter().map(Ok), schema), &options).unwrap(), batch)
    }

    fn tail(file: &Bytes) -> (u64, Bytes) {
        let start = file.len() - 64 * 1024;
        (start as u64, file.slice(start..))
    }

    fn names(schema: &SchemaRef) -> Vec<&str> {
        schema.fields().iter().map(|field| field.name().as_str()).collect()
    }

    #[test]
    fn chosen_columns_decode_in_the_order_asked_from_their_own_bytes() {
        let (file, whole) = file();
        let size = file.len() as u64;
        let wanted = ["name".to_owned(), "id".to_owned()];
        let ranges = column_ranges(&Pieces::new(size, vec![tail(&file)]), &wanted).unwrap();
        let read: u64 = ranges.iter().map(|range| range.end - range.start).sum();
        assert!(read <= size - 200_000 * 8, "{read} of {size} bytes: the prices' 8 bytes a row are not needed");
        let mut pieces = vec![tail(&file)];
        pieces.extend(ranges.iter().map(|r| (r.start, file.slice(r.start as usize..r.end as usize))));
        let (schema, batches, _) = decode_columns(Pieces::new(size, pieces), &wanted).unwrap();
        assert_eq!(names(&schema), ["name", "id", "__index_level_0__"], "pandas' index comes along");
        let decoded = arrow::compute::concat_batches(&schema, &batches).unwrap();
        assert_eq!(decoded, whole.project(&[2, 0, 3]).unwrap());
    }

    #[test]
    fn a_missing_piece_or_an_unknown_column_is_an_error_not_a_guess() {
        let (file, _) = file();
        let size = file.len() as u64;
        let wanted = ["price".to_owned()];
        let err = decode_columns(Pieces::new(size, vec![tail(&file)]), &wanted).unwrap_err();
        assert!(err.is_decode(), "{err}");
        let unknown = ["prices".to_owned()];
        let err = column_ranges(&Pieces::new(size, vec![tail(&file)]), &unknown).unwrap_err();
        assert!(err.to_string().contains("no column \"prices\"; its columns: id, price, name"), "{err}");
    }
}
