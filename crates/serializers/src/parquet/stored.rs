//! The Arrow types a table is stored with: each type as pyarrow's own Parquet round
//! trip gives it back, so that a table loads the same whichever writer wrote it, and
//! pyarrow reads our files as it reads its own.

use std::convert::Infallible;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, FieldRef, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};

use super::NAME;
use crate::SerializeError;

/// A table's batches with the types they are stored as; see [`prepare`].
pub struct Stored<R> {
    reader: R,
    schema: SchemaRef,
    /// The columns whose type changes.
    changed: Vec<usize>,
}

/// The batches of `reader` with the types Parquet stores them as, the ones pyarrow's
/// own Parquet round trip gives back:
///
/// - timestamps in seconds become milliseconds, `Time32` seconds milliseconds, and
///   `Date64` days (`Date32`), as Parquet has no such units;
/// - a dictionary of strings or binaries keeps its keys, values and their order, its
///   values as `Utf8` or `Binary` (not large or view); a dictionary of any other values
///   becomes its values (Parquet readers give those back without the dictionary).
///
/// Field names, nullability and metadata (pandas' and polars' included) are kept.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::{Date64Array, RecordBatch, RecordBatchIterator, RecordBatchReader};
/// # use arrow::datatypes::{DataType, Field, Schema};
/// use store_serializers::parquet::prepare;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("day", DataType::Date64, true)]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Date64Array::from(vec![86_400_000]))])?;
/// let mut stored = prepare(RecordBatchIterator::new([Ok(batch)], schema))?;
/// assert_eq!(stored.schema().field(0).data_type(), &DataType::Date32);
/// assert_eq!(stored.next().unwrap()?.column(0).data_type(), &DataType::Date32);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// An encode error naming the first column (`outer.inner` for a nested one) whose type
/// Parquet cannot store: unions, month-day-nanosecond intervals and run-end encoded arrays. A batch fails as it
/// arrives if its values do not fit the stored type (timestamps beyond the range of
/// milliseconds, `Date64` values that are not whole days).
pub fn prepare<R: RecordBatchReader>(reader: R) -> Result<Stored<R>, SerializeError> {
    let schema = reader.schema();
    let fields = schema
        .fields()
        .iter()
        .map(|field| stored_field(field.name(), field))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| SerializeError::encode(NAME, message))?;
    let changed = (0..fields.len()).filter(|&i| fields[i].data_type() != schema.field(i).data_type()).collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(Stored { reader, schema, changed })
}

/// Whether `data_type`, or a type it holds (a field of a struct, the items of a list, a
/// dictionary's values, ...), is one that `found` looks for.
///
/// ```
/// use arrow::datatypes::{DataType, Field};
/// use store_serializers::parquet::holds;
///
/// let categories = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8));
/// let nested = DataType::new_list(categories, true);
/// assert!(holds(&nested, &|t| matches!(t, DataType::Dictionary(..))));
/// assert!(!holds(&DataType::Utf8, &|t| matches!(t, DataType::Dictionary(..))));
/// ```
pub fn holds(data_type: &DataType, found: &impl Fn(&DataType) -> bool) -> bool {
    found(data_type)
        || match data_type {
            DataType::Dictionary(_, values) => holds(values, found),
            _ => children(data_type).iter().any(|f| holds(f.data_type(), found)),
        }
}

impl<R: RecordBatchReader> Stored<R> {
    fn convert(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        if self.changed.is_empty() {
            return Ok(batch);
        }
        let mut columns = batch.columns().to_vec();
        for &i in &self.changed {
            let field = self.schema.field(i);
            columns[i] = cast_column(field.name(), &columns[i], field.data_type())?;
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

impl<R: RecordBatchReader> Iterator for Stored<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(batch.and_then(|batch| self.convert(batch)))
    }
}

impl<R: RecordBatchReader> RecordBatchReader for Stored<R> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// `column` (named `name`) cast to `to`, failing where a value would change.
fn cast_column(name: &str, column: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let options = CastOptions { safe: false, ..Default::default() };
    let at_column = |e: ArrowError| ArrowError::ComputeError(format!("column {name:?}: {e}"));
    let stored = cast_with_options(column, to, &options).map_err(at_column)?;
    // Date64 to Date32 drops the time of day: only whole days may go.
    if holds(column.data_type(), &|t| t == &DataType::Date64) {
        let back = cast_with_options(&stored, column.data_type(), &options).map_err(at_column)?;
        if back.as_ref() != column.as_ref() {
            return Err(ArrowError::ComputeError(format!(
                "column {name:?} holds Date64 values that are not whole days; Parquet stores dates as days"
            )));
        }
    }
    Ok(stored)
}

/// `field` (at `path`) with its stored type.
fn stored_field(path: &str, field: &FieldRef) -> Result<FieldRef, String> {
    let data_type = stored_type(path, field.data_type())?;
    Ok(if &data_type == field.data_type() {
        field.clone()
    } else {
        Arc::new(field.as_ref().clone().with_data_type(data_type))
    })
}

/// The type a value of `data_type` at `path` is stored as (see [`prepare`]), or why it cannot be.
fn stored_type(path: &str, data_type: &DataType) -> Result<DataType, String> {
    use DataType::*;
    Ok(match data_type {
        Timestamp(TimeUnit::Second, tz) => Timestamp(TimeUnit::Millisecond, tz.clone()),
        Time32(TimeUnit::Second) => Time32(TimeUnit::Millisecond),
        Date64 => Date32,
        Dictionary(key, values) => match values.as_ref() {
            Utf8 | Binary => data_type.clone(),
            LargeUtf8 | Utf8View => Dictionary(key.clone(), Box::new(Utf8)),
            LargeBinary | BinaryView => Dictionary(key.clone(), Box::new(Binary)),
            values => stored_type(path, values)?,
        },
        // Parquet has no run-end encoding: such a column would come back as its values.
        Union(..) | Interval(IntervalUnit::MonthDayNano) | RunEndEncoded(..) => {
            return Err(format!("column {path:?} is {data_type}, which Parquet cannot store"));
        }
        nested => map_children(nested, |f| stored_field(&format!("{path}.{}", f.name()), f))?,
    })
}

/// `data_type` as a file's Arrow schema records it, as pyarrow reads it: a dictionary of
/// large strings or binaries as one of strings or binaries, and one of any other values
/// as its values (the Parquet reader cannot give back a dictionary of booleans, decimals
/// or fixed-size binaries at all). Only files written elsewhere, or before [`prepare`],
/// record such types.
pub(super) fn read_type(data_type: &DataType) -> DataType {
    use DataType::*;
    match data_type {
        Dictionary(key, values) => match values.as_ref() {
            Utf8 | Binary | Utf8View | BinaryView => data_type.clone(),
            LargeUtf8 => Dictionary(key.clone(), Box::new(Utf8)),
            LargeBinary => Dictionary(key.clone(), Box::new(Binary)),
            values => read_type(values),
        },
        nested => map_children(nested, |f| {
            Ok::<_, Infallible>(Arc::new(f.as_ref().clone().with_data_type(read_type(f.data_type()))))
        })
        .unwrap_or_else(|never| match never {}),
    }
}

/// The fields a nested type holds; none for any other type (a dictionary's values are a type, not a field).
fn children(data_type: &DataType) -> &[FieldRef] {
    use DataType::*;
    match data_type {
        List(f) | LargeList(f) | FixedSizeList(f, _) | ListView(f) | LargeListView(f) | Map(f, _) => {
            std::slice::from_ref(f)
        }
        RunEndEncoded(_, values) => std::slice::from_ref(values),
        Struct(fields) => fields,
        _ => &[],
    }
}

/// `data_type` with `map` applied to each of its [`children`].
fn map_children<E>(data_type: &DataType, mut map: impl FnMut(&FieldRef) -> Result<FieldRef, E>) -> Result<DataType, E> {
    use DataType::*;
    Ok(match data_type {
        List(f) => List(map(f)?),
        LargeList(f) => LargeList(map(f)?),
        FixedSizeList(f, size) => FixedSizeList(map(f)?, *size),
        ListView(f) => ListView(map(f)?),
        LargeListView(f) => LargeListView(map(f)?),
        Map(f, sorted) => Map(map(f)?, *sorted),
        RunEndEncoded(ends, values) => RunEndEncoded(ends.clone(), map(values)?),
        Struct(fields) => Struct(fields.iter().map(map).collect::<Result<Fields, _>>()?),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, BooleanArray, Date64Array, DictionaryArray, FixedSizeBinaryArray, Int8Array, Int64Array, ListArray,
        RecordBatchIterator, StringArray, StringViewArray, StructArray, Time32SecondArray, TimestampSecondArray,
        UInt32Array,
    };
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{Field, Int8Type, IntervalUnit, UInt32Type};
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::parquet::{ParquetOptions, decode, encode};

    fn table(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn stored(batch: &RecordBatch) -> Result<RecordBatch, SerializeError> {
        let mut stored = prepare(RecordBatchIterator::new([Ok(batch.clone())], batch.schema()))?;
        stored.next().unwrap().map_err(|e| SerializeError::encode(NAME, e))
    }

    fn roundtrip(batch: &RecordBatch) -> RecordBatch {
        let file = encode(RecordBatchIterator::new([Ok(batch.clone())], batch.schema()), &ParquetOptions::default());
        let (schema, batches, _) = decode(file.unwrap()).unwrap();
        arrow::compute::concat_batches(&schema, &batches).unwrap()
    }

    /// Categories `small`, `medium`, `large`, `huge` (unused), the rows using them out of order.
    fn categories(values: ArrayRef) -> ArrayRef {
        let keys = UInt32Array::from(vec![Some(2), Some(0), None, Some(1), Some(2)]);
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).unwrap())
    }

    #[test]
    fn dictionaries_of_views_are_stored_as_dictionaries_of_strings() {
        // As polars exports `Categorical` and `Enum` columns: the Parquet writer panicked on them.
        let words = ["small", "medium", "large", "huge"];
        let view = categories(Arc::new(StringViewArray::from_iter_values(words)));
        let item = Arc::new(Field::new("item", view.data_type().clone(), true));
        let nested = ListArray::new(item, OffsetBuffer::from_lengths([2, 3, 0, 0, 0]), view.clone(), None);
        let batch = table(vec![("size", view), ("sizes", Arc::new(nested))]);

        let prepared = stored(&batch).unwrap();
        let size = prepared.column(0).as_any().downcast_ref::<DictionaryArray<UInt32Type>>().unwrap();
        assert_eq!(
            size.values().as_ref(),
            &StringArray::from_iter_values(words) as &dyn Array,
            "every category, in order"
        );
        assert_eq!(size.keys(), &UInt32Array::from(vec![Some(2), Some(0), None, Some(1), Some(2)]));
        let strings = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
        assert_eq!(prepared.schema().field(1).data_type(), &DataType::new_list(strings, true));

        let read = roundtrip(&batch);
        assert_eq!(read.schema(), prepared.schema());
        let as_strings = |a: &ArrayRef| arrow::compute::cast(a, &DataType::Utf8).unwrap();
        assert_eq!(as_strings(read.column(0)).as_ref(), as_strings(prepared.column(0)).as_ref());
    }

    #[test]
    fn dictionaries_of_other_values_are_stored_as_their_values() {
        let keys = || Int8Array::from(vec![Some(1), None, Some(0), Some(1), Some(1)]);
        let booleans = DictionaryArray::<Int8Type>::try_new(keys(), Arc::new(BooleanArray::from(vec![true, false])));
        let numbers = DictionaryArray::<Int8Type>::try_new(keys(), Arc::new(Int64Array::from(vec![7, -7])));
        let binaries = FixedSizeBinaryArray::try_from_iter([b"ab", b"cd"].into_iter()).unwrap();
        let binaries = DictionaryArray::<Int8Type>::try_new(keys(), Arc::new(binaries));
        let batch = table(vec![
            ("flag", Arc::new(booleans.unwrap())),
            ("n", Arc::new(numbers.unwrap())),
            ("code", Arc::new(binaries.unwrap())),
        ]);
        let read = roundtrip(&batch);
        let expected = table(vec![
            ("flag", Arc::new(BooleanArray::from(vec![Some(false), None, Some(true), Some(false), Some(false)]))),
            ("n", Arc::new(Int64Array::from(vec![Some(-7), None, Some(7), Some(-7), Some(-7)]))),
            (
                "code",
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        [Some(b"cd"), None, Some(b"ab"), Some(b"cd"), Some(b"cd")].into_iter(),
                        2,
                    )
                    .unwrap(),
                ),
            ),
        ]);
        assert_eq!(read, expected);
    }

    #[test]
    fn a_file_with_a_dictionary_of_booleans_decodes_to_booleans() {
        // Written by the Parquet crate as it is: its reader cannot give such a dictionary back.
        let keys = Int8Array::from(vec![Some(1), None, Some(0)]);
        let flags = DictionaryArray::<Int8Type>::try_new(keys, Arc::new(BooleanArray::from(vec![true, false])));
        let batch = table(vec![("flag", Arc::new(flags.unwrap()))]);
        let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        let (schema, batches, _) = decode(bytes::Bytes::from(writer.into_inner().unwrap())).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Boolean);
        assert_eq!(
            batches[0].column(0).as_ref(),
            &BooleanArray::from(vec![Some(false), None, Some(true)]) as &dyn Array
        );
    }

    #[test]
    fn units_parquet_lacks_are_stored_in_the_next_finer_one() {
        let batch = table(vec![
            ("at", Arc::new(TimestampSecondArray::from(vec![Some(1), None]).with_timezone("Europe/Paris"))),
            ("time", Arc::new(Time32SecondArray::from(vec![Some(3600), None]))),
            ("day", Arc::new(Date64Array::from(vec![Some(86_400_000), None]))),
        ]);
        let read = roundtrip(&batch);
        let types: Vec<_> = read.schema().fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Paris".into())),
                DataType::Time32(TimeUnit::Millisecond),
                DataType::Date32,
            ]
        );
        for (column, back) in batch.columns().iter().zip(read.columns()) {
            assert_eq!(arrow::compute::cast(back, column.data_type()).unwrap().as_ref(), column.as_ref());
        }
    }

    #[test]
    fn values_the_stored_type_cannot_hold_are_an_encode_error_naming_the_column() {
        let part_of_a_day = table(vec![("day", Arc::new(Date64Array::from(vec![86_400_000 + 5])))]);
        let far = table(vec![("at", Arc::new(TimestampSecondArray::from(vec![i64::MAX / 10])))]);
        for (batch, expected) in
            [(part_of_a_day, r#"column "day" holds Date64 values that are not whole days"#), (far, r#"column "at": "#)]
        {
            let err = encode(RecordBatchIterator::new([Ok(batch.clone())], batch.schema()), &Default::default());
            let err = err.unwrap_err();
            assert!(!err.is_decode());
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn types_parquet_cannot_store_are_refused_before_anything_is_written() {
        let interval = DataType::Interval(IntervalUnit::MonthDayNano);
        let union = DataType::Union(arrow::datatypes::UnionFields::empty(), arrow::datatypes::UnionMode::Dense);
        let run_ends = DataType::RunEndEncoded(
            Arc::new(Field::new("run_ends", DataType::Int32, false)),
            Arc::new(Field::new("values", DataType::Utf8, true)),
        );
        for (data_type, shown) in [(interval, "Interval(MonthDayNano)"), (union, "Union"), (run_ends, "RunEndEncoded")]
        {
            let inner = Fields::from(vec![Field::new("id", DataType::Int64, true), Field::new("x", data_type, true)]);
            let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Struct(inner), true)]));
            let none = RecordBatchIterator::new(std::iter::empty(), schema);
            let err = prepare(none).err().expect("refused");
            assert!(err.to_string().contains(r#"column "s.x" is "#) && err.to_string().contains(shown), "{err}");
            assert!(err.to_string().ends_with("which Parquet cannot store"), "{err}");
        }
    }

    #[test]
    fn a_table_without_such_types_passes_through() {
        let batch = table(vec![(
            "s",
            Arc::new(StructArray::from(vec![(
                Arc::new(Field::new("n", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            )])),
        )]);
        let prepared = prepare(RecordBatchIterator::new([Ok(batch.clone())], batch.schema())).unwrap();
        assert!(prepared.changed.is_empty());
        assert_eq!(stored(&batch).unwrap(), batch);
    }
}
