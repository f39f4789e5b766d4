//! The manifest: the one mutable file of an index folder, naming the
//! immutable files of the current state. A commit writes a new manifest to a
//! temporary file, fsyncs it, renames it over `manifest.json` and fsyncs the
//! folder, so a reader sees the old state or the new one, never a mix.
//!
//! The file is one line of JSON, then a line `crc32 <hex>` of that JSON.

use crate::error::{corrupt, io_error, Error, Result};
use crate::file::sync_dir;
use crate::ids::IdKind;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// File name of the manifest inside the index folder.
pub const MANIFEST: &str = "manifest.json";
/// The `format` field of every manifest.
const FORMAT: &str = "maxsim-index";
/// The format version this build writes; it reads [`OLDEST_VERSION`] up to it.
/// Version 2: the residual buckets are per dimension (version 1: shared).
/// Version 3: the `codec` field, and the product codec's `codebooks`.
pub const VERSION: u64 = 3;
/// The oldest format version this build reads.
pub const OLDEST_VERSION: u64 = 1;

/// Full-vector storage kept for exact rerank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreKind {
    #[serde(rename = "float32")]
    Float32,
    #[serde(rename = "float16")]
    Float16,
    #[serde(rename = "bfloat16")]
    Bfloat16,
    #[serde(rename = "int8")]
    Int8,
}

impl StoreKind {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(StoreKind::Float32),
            "float16" => Ok(StoreKind::Float16),
            "bfloat16" => Ok(StoreKind::Bfloat16),
            "int8" => Ok(StoreKind::Int8),
            _ => Err(Error::InvalidArgument(format!(
                "store: expected None, 'float16', 'bfloat16', 'int8' or 'float32', got {name:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Float32 => "float32",
            StoreKind::Float16 => "float16",
            StoreKind::Bfloat16 => "bfloat16",
            StoreKind::Int8 => "int8",
        }
    }

    /// Bytes of one stored value.
    pub fn value_bytes(self) -> usize {
        match self {
            StoreKind::Float32 => 4,
            StoreKind::Float16 | StoreKind::Bfloat16 => 2,
            StoreKind::Int8 => 1,
        }
    }
}

/// How residuals are compressed (see [`crate::codec`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodecKind {
    /// Per-dimension buckets; the only codec before format version 3.
    #[default]
    #[serde(rename = "scalar")]
    Scalar,
    /// Product quantization, one byte per sub-vector.
    #[serde(rename = "pq")]
    Product,
}

impl CodecKind {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "pq" => Ok(CodecKind::Product),
            "scalar" => Ok(CodecKind::Scalar),
            _ => Err(Error::InvalidArgument(format!(
                "codec: expected 'pq' or 'scalar', got {name:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Scalar => "scalar",
            CodecKind::Product => "pq",
        }
    }
}

/// A file of the index and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub size: u64,
}

/// One immutable segment: the documents of one `add` (or of a compaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: u64,
    pub n_docs: u64,
    pub n_tokens: u64,
    pub index: FileRef,
    pub store: Option<FileRef>,
    pub tombstones: Option<FileRef>,
    pub n_deleted: u64,
}

/// Everything that defines the committed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u64,
    pub generation: u64,
    pub dim: usize,
    pub nbits: usize,
    /// Absent before format version 3: the scalar codec.
    #[serde(default)]
    pub codec: CodecKind,
    pub store: Option<StoreKind>,
    pub id_kind: Option<IdKind>,
    pub seed: u64,
    /// The user's centroid count, or `None` for PLAID's rule.
    pub n_centroids: Option<usize>,
    pub kmeans_iters: usize,
    pub max_points_per_centroid: usize,
    pub training: Option<FileRef>,
    pub segments: Vec<SegmentRef>,
    /// The number the next new file takes.
    pub next_file: u64,
}

impl Manifest {
    /// The manifest of a new, empty index.
    pub fn new(
        dim: usize,
        (nbits, codec): (usize, CodecKind),
        store: Option<StoreKind>,
        seed: u64,
        n_centroids: Option<usize>,
        kmeans_iters: usize,
        max_points_per_centroid: usize,
    ) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            generation: 0,
            dim,
            nbits,
            codec,
            store,
            id_kind: None,
            seed,
            n_centroids,
            kmeans_iters,
            max_points_per_centroid,
            training: None,
            segments: Vec::new(),
            next_file: 1,
        }
    }

    /// A fresh file name `<prefix>-<number>.<ext>`, reserving the number.
    pub fn new_file(&mut self, prefix: &str, ext: &str) -> String {
        let name = format!("{prefix}-{:06}.{ext}", self.next_file);
        self.next_file += 1;
        name
    }

    /// Every file the manifest names.
    pub fn files(&self) -> Vec<&FileRef> {
        let mut files: Vec<&FileRef> = self.training.iter().collect();
        for s in &self.segments {
            files.push(&s.index);
            files.extend(s.store.iter());
            files.extend(s.tombstones.iter());
        }
        files
    }

    /// Reads and checks `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        let text =
            String::from_utf8(text).map_err(|_| corrupt(&path, "manifest", "not UTF-8 text"))?;
        let mut lines = text.lines();
        let json = lines.next().unwrap_or("");
        let crc_line = lines.next().unwrap_or("");
        let expected = crc_line
            .strip_prefix("crc32 ")
            .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
            .ok_or_else(|| {
                corrupt(
                    &path,
                    "crc32",
                    "checksum line missing or malformed (truncated?)",
                )
            })?;
        if crc32fast::hash(json.as_bytes()) != expected {
            return Err(corrupt(
                &path,
                "crc32",
                "checksum mismatch (the manifest is corrupt)",
            ));
        }
        // Check the format and version before the fields, so that a newer
        // version's manifest gives a version error, not a field error.
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| corrupt(&path, "manifest", format!("invalid JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(corrupt(&path, "format", format!("expected {FORMAT:?}")));
        }
        let version = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| corrupt(&path, "version", "missing"))?;
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(Error::Version {
                path: path.display().to_string(),
                found: version,
                supported: VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| corrupt(&path, "manifest", format!("{e}")))?;
        manifest.check(&path)?;
        Ok(manifest)
    }

    fn check(&self, path: &Path) -> Result<()> {
        if self.dim == 0 {
            return Err(corrupt(path, "dim", "must be at least 1"));
        }
        if !matches!(self.nbits, 1 | 2 | 4) {
            return Err(corrupt(
                path,
                "nbits",
                format!("{} is not 1, 2 or 4", self.nbits),
            ));
        }
        for s in &self.segments {
            if s.n_deleted > s.n_docs || s.id >= self.next_file {
                return Err(corrupt(
                    path,
                    "segments",
                    format!("segment {} is inconsistent", s.id),
                ));
            }
        }
        for f in self.files() {
            if f.name.contains('/') || f.name.contains('\\') || f.name.starts_with('.') {
                return Err(corrupt(
                    path,
                    "segments",
                    format!("bad file name {:?}", f.name),
                ));
            }
        }
        Ok(())
    }

    /// Commits this manifest atomically into `dir` (every file it names must
    /// already be written and fsynced).
    pub fn commit(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string(self).expect("a manifest always serialises");
        let text = format!("{json}\ncrc32 {:08x}\n", crc32fast::hash(json.as_bytes()));
        let tmp = dir.join(format!("{MANIFEST}.tmp-{}", self.generation));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| io_error(&tmp, e))?;
        let path = dir.join(MANIFEST);
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
        sync_dir(dir)
    }
}
