//! Decoding a Parquet file while its bytes are still arriving, in order.

use std::io::Read;
use std::sync::Arc;

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use ::parquet::errors::ParquetError;
use ::parquet::file::FOOTER_SIZE;
use ::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use ::parquet::file::reader::{ChunkReader, Length};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::{Bytes, BytesMut};

use super::{Decoded, NAME, caught, decode_row_groups, key_value_metadata, reader_footer, row_group_batches};
use crate::SerializeError;

/// A Parquet file being decoded as it arrives from the front, its footer
/// read first from the end: each row group can be decoded as soon as all of its
/// bytes are in, while the rest of the file is still on its way.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::Int64Array;
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::{RecordBatch, RecordBatchIterator};
/// use store_serializers::parquet::{self, ArrivingFile, ParquetOptions};
///
/// # let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
/// # let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// let file = parquet::encode(RecordBatchIterator::new([Ok(batch)], schema), &ParquetOptions::default())?;
/// let size = file.len() as u64;
/// let tail = file.slice(file.len().saturating_sub(parquet::FOOTER_READ as usize)..);
/// let mut arriving = ArrivingFile::new(tail, size)?.expect("the footer fits in the tail");
/// let mut decoded = Vec::new();
/// for piece in file.chunks(100) {
///     for group in arriving.push(bytes::Bytes::copy_from_slice(piece)) {
///         decoded.push(group.decode()?); // on another thread, in practice
///     }
/// }
/// let (_, batches, _) = arriving.finish(decoded)?;
/// assert_eq!(batches[0].num_rows(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrivingFile {
    footer: ArrowReaderMetadata,
    schema: SchemaRef,
    /// The file's last bytes, as read for the footer.
    tail: Bytes,
    size: u64,
    /// Where each row group's bytes start and end, in file order.
    groups: Vec<(u64, u64)>,
    /// The row each row group starts at.
    first_rows: Vec<u64>,
    received: Received,
    /// Row groups handed out so far.
    handed_out: usize,
}

/// How many bytes from the end of a file to read for [`ArrivingFile::new`]:
/// enough for the footer of most tables.
pub const FOOTER_READ: u64 = 64 << 10;

impl ArrivingFile {
    /// From `tail`, the last bytes of a Parquet file of `size` bytes.
    ///
    /// `Ok(None)` when the footer is longer than `tail`: read the last
    /// [`footer_length`](Self::footer_length) bytes and try again.
    ///
    /// # Errors
    ///
    /// A decode error if `tail` does not end in a Parquet footer.
    pub fn new(tail: Bytes, size: u64) -> Result<Option<Self>, SerializeError> {
        caught(SerializeError::decode, || {
            let decode_error = |e| SerializeError::decode(NAME, e);
            let needed = Self::footer_length(&tail)?;
            if needed > tail.len() as u64 {
                return Ok(None);
            }
            let metadata_start = tail.len() - needed as usize;
            let metadata = ParquetMetaDataReader::decode_metadata(&tail[metadata_start..tail.len() - FOOTER_SIZE])
                .map_err(decode_error)?;
            let footer = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::default())
                .map_err(decode_error)?;
            let (footer, schema) = reader_footer(footer)?;
            let groups = footer
                .metadata()
                .row_groups()
                .iter()
                .map(|group| {
                    let ranges = group.columns().iter().map(|column| column.byte_range());
                    let start = ranges.clone().map(|(at, _)| at).min().unwrap_or(0);
                    (start, ranges.map(|(at, len)| at + len).max().unwrap_or(0))
                })
                .collect();
            let first_rows = (footer.metadata().row_groups().iter())
                .scan(0, |row, group| Some(std::mem::replace(row, *row + group.num_rows() as u64)))
                .collect();
            let received = Received::new(size);
            Ok(Some(Self { footer, schema, tail, size, groups, first_rows, received, handed_out: 0 }))
        })
    }

    /// How many bytes from the end of the file its footer takes, from the file's
    /// last bytes `tail` (at least the last 8).
    ///
    /// # Errors
    ///
    /// A decode error if `tail` does not end in a Parquet footer.
    pub fn footer_length(tail: &[u8]) -> Result<u64, SerializeError> {
        let last: [u8; FOOTER_SIZE] = tail
            .get(tail.len().saturating_sub(FOOTER_SIZE)..)
            .and_then(|last| last.try_into().ok())
            .ok_or_else(|| SerializeError::decode(NAME, "a Parquet file is at least 8 bytes long"))?;
        let footer = FooterTail::try_from(last).map_err(|e| SerializeError::decode(NAME, e))?;
        Ok((footer.metadata_length() + FOOTER_SIZE) as u64)
    }

    /// The Arrow schema the file decodes to, as written (its metadata included).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The file's key-value metadata, as [`decode`](super::decode) returns it.
    pub fn key_value_metadata(&self) -> Vec<(String, String)> {
        key_value_metadata(self.footer.metadata())
    }

    /// Rows in all row groups.
    pub fn row_count(&self) -> u64 {
        self.footer.metadata().file_metadata().num_rows() as u64
    }

    /// Whether the footer's statistics say that no column chunk holds a null; a
    /// chunk without statistics might.
    pub fn has_no_nulls(&self) -> bool {
        let columns = self.footer.metadata().row_groups().iter().flat_map(|group| group.columns());
        columns.into_iter().all(|column| column.statistics().and_then(|s| s.null_count_opt()) == Some(0))
    }

    /// Takes the next bytes of the file; returns the row groups that are now complete, in file order.
    ///
    /// Bytes that no row group still to come needs are let go of: each row group
    /// handed out keeps its own, until it is decoded.
    pub fn push(&mut self, chunk: Bytes) -> Vec<RowGroup> {
        self.received.push(chunk);
        let arrived = self.received.arrived;
        let complete = self.groups[self.handed_out..].iter().take_while(|&&(_, end)| end <= arrived).count();
        let groups = (self.handed_out..self.handed_out + complete)
            .map(|index| RowGroup {
                index,
                first_row: self.first_rows[index],
                received: self.received.clone(),
                footer: self.footer.clone(),
                schema: self.schema.clone(),
            })
            .collect();
        self.handed_out += complete;
        // The tail stays for `finish` to compare with the footer it was read from.
        let tail_start = self.size - self.tail.len() as u64;
        let next_start = self.groups.get(self.handed_out).map_or(tail_start, |&(start, _)| start);
        self.received.drop_before(next_start.min(tail_start));
        groups
    }

    /// How many bytes of the file it holds.
    #[cfg(test)]
    pub(super) fn held(&self) -> u64 {
        self.received.chunks.iter().map(|(_, chunk)| chunk.len() as u64).sum()
    }

    /// The whole file, from the row groups `decoded` (in file order) once every
    /// byte has arrived.
    ///
    /// # Errors
    ///
    /// A decode error if the file did not arrive whole, or its end is not the
    /// tail the footer was read from (the file changed in between).
    pub fn finish(self, decoded: Vec<Vec<RecordBatch>>) -> Result<Decoded, SerializeError> {
        let decode_error = |message: String| SerializeError::decode(NAME, message);
        if self.received.arrived != self.size {
            return Err(decode_error(format!("{} of the file's {} bytes arrived", self.received.arrived, self.size)));
        }
        let tail_start = self.size - self.tail.len() as u64;
        let tail = self.received.get_bytes(tail_start, self.tail.len()).map_err(|e| SerializeError::decode(NAME, e))?;
        if tail != self.tail {
            return Err(decode_error("the file's footer changed while it was read".into()));
        }
        if decoded.len() != self.groups.len() {
            return Err(decode_error(format!("{} of {} row groups decoded", decoded.len(), self.groups.len())));
        }
        let metadata = key_value_metadata(self.footer.metadata());
        Ok((self.schema, decoded.into_iter().flatten().collect(), metadata))
    }
}

/// A complete row group of an [`ArrivingFile`], ready to decode.
pub struct RowGroup {
    index: usize,
    first_row: u64,
    received: Received,
    footer: ArrowReaderMetadata,
    schema: SchemaRef,
}

impl RowGroup {
    /// Its batches (one, as large as the row group).
    ///
    /// # Errors
    ///
    /// A decode error if its bytes are not valid Parquet.
    pub fn decode(self) -> Result<Vec<RecordBatch>, SerializeError> {
        decode_row_groups(self.received, self.footer, vec![self.index], &ProjectionMask::all(), &self.schema)
    }

    /// Its batches, `batch_rows` rows at most each, each decoded only when the one
    /// before has been taken: a caller that copies each elsewhere holds one at a time.
    ///
    /// # Errors
    ///
    /// A decode error if its bytes are not valid Parquet, when it starts or at the batch it hits.
    pub fn decode_in_batches(
        self,
        batch_rows: usize,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, SerializeError>>, SerializeError> {
        let all = ProjectionMask::all();
        row_group_batches(self.received, self.footer, vec![self.index], &all, &self.schema, batch_rows.max(1))
    }

    /// The row of the file it starts at.
    pub fn first_row(&self) -> u64 {
        self.first_row
    }
}

/// The bytes of a file received so far, as the chunks they came in: read
/// without copying, except a range that spans two chunks.
#[derive(Clone)]
pub(super) struct Received {
    /// Each chunk with the file offset it starts at.
    chunks: Vec<(u64, Bytes)>,
    /// How many bytes have arrived.
    arrived: u64,
    size: u64,
}

impl Received {
    fn new(size: u64) -> Self {
        Self { chunks: Vec::new(), arrived: 0, size }
    }

    /// Some pieces of a file of `size` bytes, each with the offset it starts at, in any order;
    /// where two overlap, the bytes of the later one are not read.
    pub(super) fn from_pieces(size: u64, mut pieces: Vec<(u64, Bytes)>) -> Self {
        pieces.retain(|(_, piece)| !piece.is_empty());
        pieces.sort_by_key(|(start, _)| *start);
        let arrived = pieces.last().map_or(0, |(start, piece)| start + piece.len() as u64);
        Self { chunks: pieces, arrived, size }
    }

    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            let len = chunk.len() as u64;
            self.chunks.push((self.arrived, chunk));
            self.arrived += len;
        }
    }

    /// Lets go of the chunks that end before byte `at`.
    fn drop_before(&mut self, at: u64) {
        let ended = self.chunks.partition_point(|(start, chunk)| start + chunk.len() as u64 <= at);
        self.chunks.drain(..ended);
    }

    /// The index of the chunk holding byte `at`, if it is still held.
    fn chunk_at(&self, at: u64) -> Option<usize> {
        let index = self.chunks.partition_point(|(start, _)| *start <= at).checked_sub(1)?;
        let (start, chunk) = &self.chunks[index];
        (at < start + chunk.len() as u64).then_some(index)
    }

    fn missing(&self, at: u64) -> ParquetError {
        ParquetError::EOF(format!("byte {at} of the file has not arrived ({} have)", self.arrived))
    }
}

impl Length for Received {
    /// The whole file's size, not what has arrived: readers use it to find the footer.
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Received {
    type T = ReceivedReader;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(ReceivedReader { received: self.clone(), at: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let first = self.chunk_at(start).ok_or_else(|| self.missing(start))?;
        let (chunk_start, chunk) = &self.chunks[first];
        let offset = (start - chunk_start) as usize;
        if offset + length <= chunk.len() {
            return Ok(chunk.slice(offset..offset + length));
        }
        let mut joined = BytesMut::with_capacity(length);
        let mut reader = self.get_read(start)?;
        joined.resize(length, 0);
        reader.read_exact(&mut joined).map_err(|_| self.missing(start + length as u64 - 1))?;
        Ok(joined.freeze())
    }
}

/// Reads [`Received`] bytes from an offset on.
pub(super) struct ReceivedReader {
    received: Received,
    at: u64,
}

impl Read for ReceivedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(index) = self.received.chunk_at(self.at) else { return Ok(0) };
        let (start, chunk) = &self.received.chunks[index];
        let from = (self.at - start) as usize;
        let n = buf.len().min(chunk.len() - from);
        buf[..n].copy_from_slice(&chunk[from..from + n]);
        self.at += n as u64;
        Ok(n)
    }
}
