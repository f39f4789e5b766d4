//! The container of every binary file of the index: a header naming typed
//! sections, each with its length and CRC-32, then the sections, 64-byte
//! aligned. Files are written once, fsynced, and never modified.
//!
//! ```text
//! magic "MXSIDX\0\x01" | kind u32 | n u32 | n × (name [u8; 16], offset u64, len u64, crc u32, 0 u32) | header crc u32
//! ```
//! Little-endian throughout. Opening checks the magic, the header checksum and
//! that every section lies inside the file (a truncated file is caught here);
//! `verify` also checks each section's checksum, reading the file with plain
//! reads so that the check does not make the mapping resident.

use crate::error::{corrupt, io_error, Result};
use memmap2::Mmap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: [u8; 8] = *b"MXSIDX\0\x01";
const ENTRY: usize = 40;
const ALIGN: usize = 64;

/// What a file holds (checked on open, so one file is never read as another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    Training = 1,
    Segment = 2,
    Store = 3,
    Tombstones = 4,
}

/// Writes a sectioned file: `sections` in order, then fsync.
pub fn write(path: &Path, kind: Kind, sections: &[(&str, &[u8])]) -> Result<u64> {
    let header_len = 8 + 4 + 4 + sections.len() * ENTRY + 4;
    let mut offset = header_len.div_ceil(ALIGN) * ALIGN;
    let mut header = Vec::with_capacity(header_len);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&(kind as u32).to_le_bytes());
    header.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let mut layout = Vec::with_capacity(sections.len());
    for (name, data) in sections {
        let mut name_bytes = [0u8; 16];
        assert!(
            name.len() <= 16,
            "section name {name:?} longer than 16 bytes"
        );
        name_bytes[..name.len()].copy_from_slice(name.as_bytes());
        header.extend_from_slice(&name_bytes);
        header.extend_from_slice(&(offset as u64).to_le_bytes());
        header.extend_from_slice(&(data.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        layout.push(offset);
        offset = (offset + data.len()).div_ceil(ALIGN) * ALIGN;
    }
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    let file = File::create(path).map_err(|e| io_error(path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0usize;
    let pad = |out: &mut std::io::BufWriter<File>, from: usize, to: usize| {
        out.write_all(&vec![0u8; to - from])
    };
    let io = |e| io_error(path, e);
    out.write_all(&header).map_err(io)?;
    written += header.len();
    for ((_, data), &at) in sections.iter().zip(&layout) {
        pad(&mut out, written, at).map_err(io)?;
        out.write_all(data).map_err(io)?;
        written = at + data.len();
    }
    let file = out
        .into_inner()
        .map_err(|e| io_error(path, e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(written as u64)
}

/// fsync of a directory, so that a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// The bytes of a file: a read-only mapping, or the file read into memory.
enum Bytes {
    Mapped(Mmap),
    /// 8-byte words (so sections are aligned for any number type) and the length.
    Owned(Vec<u64>, usize),
}

/// `f32` values computed in memory, or a section of an open file, mapped
/// rather than copied so that an opened index holds no private copy of them
/// (centroids, codebooks).
pub enum F32Rows {
    Owned(Vec<f32>),
    File {
        /// Keeps the bytes `rows` points into alive (a mapping or a heap
        /// buffer; neither moves while the file is held).
        _file: Arc<Sectioned>,
        rows: *const f32,
        len: usize,
    },
}

// SAFETY: the rows are read only, and the file that owns them is Send + Sync.
unsafe impl Send for F32Rows {}
unsafe impl Sync for F32Rows {}

impl F32Rows {
    /// Section `name` of `file` (`count` values when given), not copied.
    pub fn section(file: &Arc<Sectioned>, name: &str, count: Option<usize>) -> Result<F32Rows> {
        let rows = file.slice::<f32>(name, count)?;
        Ok(F32Rows::File {
            _file: Arc::clone(file),
            rows: rows.as_ptr(),
            len: rows.len(),
        })
    }
}

impl std::ops::Deref for F32Rows {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            F32Rows::Owned(v) => v,
            // SAFETY: `rows` and `len` came from a checked `slice` of `_file`.
            F32Rows::File { rows, len, .. } => unsafe { std::slice::from_raw_parts(*rows, *len) },
        }
    }
}

impl std::fmt::Debug for F32Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            F32Rows::Owned(_) => "owned",
            F32Rows::File { .. } => "mapped",
        };
        write!(f, "F32Rows({} values, {kind})", self.len())
    }
}

/// An open sectioned file.
pub struct Sectioned {
    path: PathBuf,
    bytes: Bytes,
    sections: Vec<(String, usize, usize)>,
}

impl Sectioned {
    /// Opens `path`, checking it is a `kind` file of `expected_len` bytes
    /// (when given) whose sections lie inside it; `verify` checks every
    /// section's CRC-32 too.
    pub fn open(
        path: &Path,
        kind: Kind,
        expected_len: Option<u64>,
        mmap: bool,
        verify: bool,
    ) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| io_error(path, e))?;
        let len = file.metadata().map_err(|e| io_error(path, e))?.len();
        if let Some(expected) = expected_len {
            if len != expected {
                return Err(corrupt(
                    path,
                    "size",
                    format!("file holds {len} bytes, the manifest records {expected} (truncated or replaced)"),
                ));
            }
        }
        let bytes = if mmap && len > 0 {
            // SAFETY: index files are written once and never modified in
            // place (a commit writes new files and renames the manifest), so
            // the mapping's contents do not change under it; a file deleted
            // by compaction stays mapped until this reader drops it.
            Bytes::Mapped(unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, e))?)
        } else {
            let n = len as usize;
            let mut words = vec![0u64; n.div_ceil(8)];
            // SAFETY: the byte view covers `n <= 8 * words.len()` bytes of the buffer.
            let buf = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, n) };
            file.read_exact(buf).map_err(|e| io_error(path, e))?;
            Bytes::Owned(words, n)
        };
        let mut opened = Sectioned {
            path: path.to_path_buf(),
            bytes,
            sections: Vec::new(),
        };
        opened.parse_header(kind)?;
        if verify {
            opened.verify()?;
        }
        Ok(opened)
    }

    fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(m) => m,
            // SAFETY: `n` bytes of the word buffer, all initialised.
            Bytes::Owned(words, n) => unsafe {
                std::slice::from_raw_parts(words.as_ptr() as *const u8, *n)
            },
        }
    }

    fn parse_header(&mut self, kind: Kind) -> Result<()> {
        let path = self.path.clone();
        let data = self.data();
        let bad = |field: &str, msg: String| Err(corrupt(&path, field, msg));
        if data.len() < 20 || data[..8] != MAGIC {
            return bad(
                "magic",
                "not a maxsim index file (bad magic or too short)".into(),
            );
        }
        let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
        let n = u32_at(12) as usize;
        let header_len = 16 + n.saturating_mul(ENTRY);
        if n > 1024 || data.len() < header_len + 4 {
            return bad(
                "header",
                format!("header of {n} sections does not fit the file"),
            );
        }
        if crc32fast::hash(&data[..header_len]) != u32_at(header_len) {
            return bad("header", "checksum mismatch".into());
        }
        if u32_at(8) != kind as u32 {
            return bad(
                "kind",
                format!("file kind {} where {kind:?} was expected", u32_at(8)),
            );
        }
        let mut sections = Vec::with_capacity(n);
        for i in 0..n {
            let at = 16 + i * ENTRY;
            let name_bytes = &data[at..at + 16];
            let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(16);
            let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
            let (offset, len) = (u64_at(at + 16), u64_at(at + 24));
            let fits = offset
                .checked_add(len)
                .is_some_and(|e| e <= data.len() as u64);
            if !fits || offset % ALIGN as u64 != 0 {
                return bad(
                    &name,
                    format!(
                        "section at {offset} of {len} bytes runs past the end of the {}-byte file (truncated)",
                        data.len()
                    ),
                );
            }
            sections.push((name, offset as usize, len as usize));
        }
        self.sections = sections;
        Ok(())
    }

    /// Checks every section's CRC-32 with plain reads (not through the mapping).
    pub fn verify(&self) -> Result<()> {
        let header_crcs: Vec<u32> = (0..self.sections.len())
            .map(|i| {
                let at = 16 + i * ENTRY + 32;
                u32::from_le_bytes(self.data()[at..at + 4].try_into().unwrap())
            })
            .collect();
        let mut file = File::open(&self.path).map_err(|e| io_error(&self.path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0usize;
        let mut order: Vec<usize> = (0..self.sections.len()).collect();
        order.sort_by_key(|&i| self.sections[i].1);
        for i in order {
            let (name, offset, len) = &self.sections[i];
            let mut skip = offset - pos;
            while skip > 0 {
                let n = skip.min(buf.len());
                file.read_exact(&mut buf[..n])
                    .map_err(|e| io_error(&self.path, e))?;
                skip -= n;
            }
            let mut hasher = crc32fast::Hasher::new();
            let mut left = *len;
            while left > 0 {
                let n = left.min(buf.len());
                file.read_exact(&mut buf[..n])
                    .map_err(|e| io_error(&self.path, e))?;
                hasher.update(&buf[..n]);
                left -= n;
            }
            pos = offset + len;
            if hasher.finalize() != header_crcs[i] {
                return Err(corrupt(
                    &self.path,
                    name,
                    "checksum mismatch (the file is corrupt)",
                ));
            }
        }
        Ok(())
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Section `name`'s bytes.
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        let (_, offset, len) = self
            .sections
            .iter()
            .find(|s| s.0 == name)
            .ok_or_else(|| corrupt(&self.path, name, "section missing"))?;
        Ok(&self.data()[*offset..offset + len])
    }

    /// Section `name` as `T` values (`T` a plain little-endian number type),
    /// `count` of them when given.
    pub fn slice<T: Pod>(&self, name: &str, count: Option<usize>) -> Result<&[T]> {
        let bytes = self.bytes(name)?;
        let size = std::mem::size_of::<T>();
        if !bytes.len().is_multiple_of(size) {
            return Err(corrupt(
                &self.path,
                name,
                format!(
                    "{} bytes is not a whole number of {size}-byte values",
                    bytes.len()
                ),
            ));
        }
        let n = bytes.len() / size;
        if let Some(count) = count {
            if n != count {
                return Err(corrupt(
                    &self.path,
                    name,
                    format!("holds {n} values where {count} were expected"),
                ));
            }
        }
        // Sections are 64-byte aligned in a page-aligned mapping (or a heap
        // buffer, aligned for any type), so the cast is aligned.
        let ptr = bytes.as_ptr();
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(corrupt(&self.path, name, "misaligned section"));
        }
        // SAFETY: `ptr` is aligned for `T` (checked) and valid for `n * size`
        // bytes borrowed from `self`; `T: Pod` has no invalid bit patterns.
        Ok(unsafe { std::slice::from_raw_parts(ptr as *const T, n) })
    }
}

/// Plain number types whose every bit pattern is a value.
///
/// # Safety
/// Implementors must be `Copy` types with no padding and no invalid bit patterns.
pub unsafe trait Pod: Copy {}
// SAFETY: primitive numbers.
unsafe impl Pod for u8 {}
// SAFETY: primitive numbers.
unsafe impl Pod for i8 {}
// SAFETY: primitive numbers.
unsafe impl Pod for u16 {}
// SAFETY: primitive numbers.
unsafe impl Pod for u32 {}
// SAFETY: primitive numbers.
unsafe impl Pod for u64 {}
// SAFETY: primitive numbers.
unsafe impl Pod for i64 {}
// SAFETY: primitive numbers.
unsafe impl Pod for f32 {}

/// The bytes of a slice of plain numbers (little-endian on every supported target).
pub fn as_bytes<T: Pod>(values: &[T]) -> &[u8] {
    // SAFETY: `T: Pod` has no padding; the byte view covers exactly the slice.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_truncation_and_corruption() {
        let dir = crate::test_dir("file");
        let path = dir.join("a.bin");
        let values: Vec<u32> = (0..1000).collect();
        let len = write(
            &path,
            Kind::Segment,
            &[("nums", as_bytes(&values)), ("x", b"hello")],
        )
        .unwrap();
        for mmap in [true, false] {
            let f = Sectioned::open(&path, Kind::Segment, Some(len), mmap, true).unwrap();
            assert_eq!(f.slice::<u32>("nums", Some(1000)).unwrap(), &values[..]);
            assert_eq!(f.bytes("x").unwrap(), b"hello");
            assert!(f.slice::<u32>("nums", Some(3)).is_err());
            assert!(f.bytes("nope").is_err());
        }
        assert!(matches!(
            Sectioned::open(&path, Kind::Store, None, true, false),
            Err(crate::Error::Corrupt { .. })
        ));
        // One flipped byte in a section: caught by verify.
        let mut raw = std::fs::read(&path).unwrap();
        raw[200] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let err = Sectioned::open(&path, Kind::Segment, Some(len), true, true)
            .err()
            .unwrap();
        assert!(err.to_string().contains("nums: checksum mismatch"), "{err}");
        // Truncated: caught by the size and section bounds.
        std::fs::write(&path, &raw[..raw.len() - 3]).unwrap();
        let err = Sectioned::open(&path, Kind::Segment, Some(len), true, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("size"), "{err}");
        let err = Sectioned::open(&path, Kind::Segment, None, true, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(Sectioned::open(&path, Kind::Segment, None, true, false).is_err());
    }
}
