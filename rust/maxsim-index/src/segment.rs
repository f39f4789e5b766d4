//! Immutable segments: the compressed documents of one `add` (or of a
//! compaction), their inverted lists, ids and optional full vectors, and the
//! training (centroids and residual buckets) they are encoded against.
//!
//! Segment file sections (all little-endian):
//! - `doc_offsets` u64 × (n_docs + 1): token range of each document;
//! - `codes16` u16 or `codes32` u32 × n_tokens: each token's centroid;
//! - `residuals` u8 × n_tokens × ⌈dim·nbits/8⌉: packed residual codes;
//! - `ivf_cents` u32 × m: the centroids that have tokens here, increasing;
//!   `ivf_offsets` u32 × (m + 1) and `ivf_docs` u32: for each, the local
//!   documents with a token there, increasing and distinct;
//! - `res_norms` f32 × m: each listed centroid's largest residual norm (of
//!   the stored full vector when there is a store), the certificate's bound;
//! - `ids_int` i64 × n_docs, or `id_offsets` u64 × (n_docs + 1) and `id_bytes`.
//!
//! The store file holds `vectors` (n_tokens × dim values of the store's
//! type) and, for int8, `scales` f32 × n_tokens.

use crate::codec::{Codec, ProductCodec, ScalarCodec, CODEWORDS};
use crate::error::{corrupt, Result};
use crate::file::{as_bytes, write, F32Rows, Kind, Sectioned};
use crate::ids::DocId;
use crate::kmeans;
use crate::manifest::{CodecKind, FileRef, Manifest, SegmentRef, StoreKind};
use maxsim_core::float::argmax::PreparedCentroids;
use maxsim_core::reduced::{bf16, f16, quantize_int8};
use rayon::prelude::*;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Tokens per parallel encoding task.
const ENCODE_CHUNK: usize = 4096;

/// Centroids and residual buckets.
pub struct Training {
    pub dim: usize,
    /// `n × dim`, row-major (mapped from the training file once written).
    pub centroids: F32Rows,
    pub codec: Codec,
    l2: OnceLock<PreparedCentroids>,
}

impl Training {
    pub fn new(dim: usize, centroids: Vec<f32>, codec: Codec) -> Training {
        Self::with_rows(dim, F32Rows::Owned(centroids), codec)
    }

    fn with_rows(dim: usize, centroids: F32Rows, codec: Codec) -> Training {
        Training {
            dim,
            centroids,
            codec,
            l2: OnceLock::new(),
        }
    }

    pub fn n_centroids(&self) -> usize {
        self.centroids.len() / self.dim
    }

    pub fn centroid(&self, c: usize) -> &[f32] {
        &self.centroids[c * self.dim..(c + 1) * self.dim]
    }

    /// The centroids prepared for nearest-centroid assignment (built on first use).
    pub fn l2(&self) -> Result<&PreparedCentroids> {
        if let Some(p) = self.l2.get() {
            return Ok(p);
        }
        let prepared = kmeans::prepare_l2(&self.centroids, self.dim)?;
        Ok(self.l2.get_or_init(|| prepared))
    }

    /// Writes the centroids and the codec: `cutoffs` and `weights` (scalar)
    /// or `codebooks` (product).
    pub fn write(&self, path: &Path) -> Result<u64> {
        let centroids = ("centroids", as_bytes(&self.centroids));
        match &self.codec {
            Codec::Scalar(c) => write(
                path,
                Kind::Training,
                &[
                    centroids,
                    ("cutoffs", as_bytes(c.cutoffs())),
                    ("weights", as_bytes(c.weights())),
                ],
            ),
            Codec::Product(c) => write(
                path,
                Kind::Training,
                &[centroids, ("codebooks", as_bytes(c.codebooks()))],
            ),
        }
    }

    pub fn read(
        path: &Path,
        size: u64,
        dim: usize,
        (nbits, kind): (usize, CodecKind),
        (mmap, verify): (bool, bool),
    ) -> Result<Training> {
        let f = Arc::new(Sectioned::open(
            path,
            Kind::Training,
            Some(size),
            mmap,
            verify,
        )?);
        let centroids = F32Rows::section(&f, "centroids", None)?;
        if centroids.is_empty() || !centroids.len().is_multiple_of(dim) {
            return Err(corrupt(
                path,
                "centroids",
                format!("{} values for dim {dim}", centroids.len()),
            ));
        }
        let codec = match kind {
            CodecKind::Scalar => {
                let levels = 1usize << nbits;
                // Per dimension, or (format version 1) one set shared by all dimensions.
                let per_dim = f.slice::<f32>("cutoffs", None)?.len() != levels - 1;
                let scale = if per_dim { dim } else { 1 };
                let cutoffs = f
                    .slice::<f32>("cutoffs", Some(scale * (levels - 1)))?
                    .to_vec();
                let weights = f.slice::<f32>("weights", Some(scale * levels))?.to_vec();
                Codec::Scalar(
                    ScalarCodec::new(dim, nbits, cutoffs, weights)
                        .map_err(|e| corrupt(path, "cutoffs", e.to_string()))?,
                )
            }
            CodecKind::Product => {
                // Mapped, not copied (nor read through to check values: the
                // section's checksum covers them).
                let books = F32Rows::section(&f, "codebooks", Some(CODEWORDS * dim))?;
                Codec::Product(
                    ProductCodec::mapped(dim, nbits, books)
                        .map_err(|e| corrupt(path, "codebooks", e.to_string()))?,
                )
            }
        };
        Ok(Training::with_rows(dim, centroids, codec))
    }
}

/// Stored full vectors of a batch, in the store's type.
pub enum StoreData {
    F32(Vec<f32>),
    Half(Vec<u16>),
    Int8(Vec<i8>, Vec<f32>),
}

/// The stored vectors of `flat`, and those values read back as f32 (what
/// exact rerank will score, and so what the residual bound must cover).
fn store_values(
    kind: StoreKind,
    flat: &[f32],
    dim: usize,
) -> Result<(StoreData, Option<Vec<f32>>)> {
    Ok(match kind {
        StoreKind::Float32 => (StoreData::F32(flat.to_vec()), None),
        StoreKind::Float16 => {
            let bits: Vec<u16> = flat
                .par_iter()
                .map(|&v| f16::from_f32(v).to_bits())
                .collect();
            let back = bits
                .par_iter()
                .map(|&b| f16::from_bits(b).to_f32())
                .collect();
            (StoreData::Half(bits), Some(back))
        }
        StoreKind::Bfloat16 => {
            let bits: Vec<u16> = flat
                .par_iter()
                .map(|&v| bf16::from_f32(v).to_bits())
                .collect();
            let back = bits
                .par_iter()
                .map(|&b| bf16::from_bits(b).to_f32())
                .collect();
            (StoreData::Half(bits), Some(back))
        }
        StoreKind::Int8 => {
            let (codes, scales) = quantize_int8(flat, dim)?;
            (StoreData::Int8(codes, scales), None)
        }
    })
}

/// One document batch to write as a segment.
pub struct Batch<'a> {
    /// `n_tokens × dim`, row-major.
    pub flat: &'a [f32],
    /// `n_docs + 1` token offsets, from 0.
    pub offsets: &'a [u64],
    pub ids: &'a [DocId],
}

/// A segment's contents before they are written.
pub struct Parts {
    /// `n_docs + 1` token offsets, from 0.
    pub offsets: Vec<u64>,
    pub codes: Vec<u32>,
    pub residuals: Vec<u8>,
    /// Per centroid, the largest residual norm of this segment's tokens there.
    pub res_max: Vec<f32>,
    pub ids: Vec<DocId>,
    pub store: Option<StoreData>,
}

/// Encodes `batch` against `training`: codes, residuals, residual norms and
/// the stored vectors (`store`).
pub fn encode(training: &Training, store: Option<StoreKind>, batch: &Batch<'_>) -> Result<Parts> {
    let dim = training.dim;
    let n_tokens = batch.flat.len() / dim;
    let codes = kmeans::assign(training.l2()?, batch.flat)?;
    let (store, stored_f32) = match store {
        Some(kind) => {
            let (data, back) = store_values(kind, batch.flat, dim)?;
            (Some(data), back)
        }
        None => (None, None),
    };
    // The vectors exact rerank scores: residual norms must bound these.
    let exact = stored_f32.as_deref().unwrap_or(batch.flat);
    let codec = &training.codec;
    let bpt = codec.bytes_per_token();
    let mut residuals = vec![0u8; n_tokens * bpt];
    let mut norms = vec![0.0f32; n_tokens];
    residuals
        .par_chunks_mut(ENCODE_CHUNK * bpt)
        .zip(norms.par_chunks_mut(ENCODE_CHUNK))
        .enumerate()
        .try_for_each(|(chunk, (res, nrm))| {
            let first = chunk * ENCODE_CHUNK;
            let mut r = Vec::with_capacity(nrm.len() * dim);
            for (j, norm) in nrm.iter_mut().enumerate() {
                let t = first + j;
                let c = training.centroid(codes[t] as usize);
                let x = &batch.flat[t * dim..(t + 1) * dim];
                r.extend(x.iter().zip(c).map(|(&a, &b)| a - b));
                let e = &exact[t * dim..(t + 1) * dim];
                let sq: f64 = e
                    .iter()
                    .zip(c)
                    .map(|(&a, &b)| ((a - b) as f64).powi(2))
                    .sum();
                *norm = sq.sqrt() as f32;
            }
            codec.encode_rows(&r, res)
        })?;
    let mut res_max = vec![0.0f32; training.n_centroids()];
    for (&c, &n) in codes.iter().zip(&norms) {
        res_max[c as usize] = res_max[c as usize].max(n);
    }
    Ok(Parts {
        offsets: batch.offsets.to_vec(),
        codes,
        residuals,
        res_max,
        ids: batch.ids.to_vec(),
        store,
    })
}

/// Writes `parts` as a segment into `dir`, naming its files from `manifest`
/// (whose file counter advances). Returns the segment's manifest entry.
pub fn write_parts(
    dir: &Path,
    manifest: &mut Manifest,
    n_cent: usize,
    parts: &Parts,
) -> Result<SegmentRef> {
    let n_docs = parts.offsets.len() - 1;
    let n_tokens = parts.codes.len();
    let codes = &parts.codes;
    // Inverted lists: distinct (centroid, document) pairs in order.
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(n_tokens);
    for d in 0..n_docs {
        let (a, b) = (parts.offsets[d] as usize, parts.offsets[d + 1] as usize);
        let mut doc_codes: Vec<u32> = codes[a..b].to_vec();
        doc_codes.sort_unstable();
        doc_codes.dedup();
        pairs.extend(doc_codes.into_iter().map(|c| (c, d as u32)));
    }
    pairs.sort_unstable();
    let mut ivf_cents = Vec::new();
    let mut ivf_offsets = vec![0u32];
    let mut ivf_docs = Vec::with_capacity(pairs.len());
    let mut res_norms = Vec::new();
    for (i, &(c, d)) in pairs.iter().enumerate() {
        if i == 0 || pairs[i - 1].0 != c {
            if i > 0 {
                ivf_offsets.push(ivf_docs.len() as u32);
            }
            ivf_cents.push(c);
            // Rounded up a little so that float error in the norm never
            // makes the bound a hair too small.
            res_norms.push(parts.res_max[c as usize] * (1.0 + 1e-6) + 1e-7);
        }
        ivf_docs.push(d);
    }
    if !pairs.is_empty() {
        ivf_offsets.push(ivf_docs.len() as u32);
    }
    let codes16: Vec<u16>;
    let codes_section: (&str, &[u8]) = if n_cent <= 1 << 16 {
        codes16 = codes.iter().map(|&c| c as u16).collect();
        ("codes16", as_bytes(&codes16))
    } else {
        ("codes32", as_bytes(codes))
    };
    let ints: Vec<i64>;
    let id_offsets: Vec<u64>;
    let mut id_bytes: Vec<u8> = Vec::new();
    let mut sections: Vec<(&str, &[u8])> = vec![
        ("doc_offsets", as_bytes(&parts.offsets)),
        codes_section,
        ("residuals", &parts.residuals),
        ("ivf_cents", as_bytes(&ivf_cents)),
        ("ivf_offsets", as_bytes(&ivf_offsets)),
        ("ivf_docs", as_bytes(&ivf_docs)),
        ("res_norms", as_bytes(&res_norms)),
    ];
    if matches!(parts.ids.first(), Some(DocId::Str(_))) {
        let mut offs = vec![0u64];
        for id in &parts.ids {
            if let DocId::Str(s) = id {
                id_bytes.extend_from_slice(s.as_bytes());
            }
            offs.push(id_bytes.len() as u64);
        }
        id_offsets = offs;
        sections.push(("id_offsets", as_bytes(&id_offsets)));
        sections.push(("id_bytes", &id_bytes));
    } else {
        ints = parts
            .ids
            .iter()
            .map(|id| match id {
                DocId::Int(v) => *v,
                DocId::Str(_) => unreachable!("one id kind per index"),
            })
            .collect();
        sections.push(("ids_int", as_bytes(&ints)));
    }
    let id = manifest.next_file;
    let index_name = manifest.new_file("seg", "idx");
    let size = write(&dir.join(&index_name), Kind::Segment, &sections)?;
    let store_ref = match &parts.store {
        None => None,
        Some(data) => {
            let name = format!("seg-{id:06}.store");
            let path = dir.join(&name);
            let size = match data {
                StoreData::F32(v) => write(&path, Kind::Store, &[("vectors", as_bytes(v))])?,
                StoreData::Half(v) => write(&path, Kind::Store, &[("vectors", as_bytes(v))])?,
                StoreData::Int8(c, s) => write(
                    &path,
                    Kind::Store,
                    &[("vectors", as_bytes(c)), ("scales", as_bytes(s))],
                )?,
            };
            Some(FileRef { name, size })
        }
    };
    Ok(SegmentRef {
        id,
        n_docs: n_docs as u64,
        n_tokens: n_tokens as u64,
        index: FileRef {
            name: index_name,
            size,
        },
        store: store_ref,
        tombstones: None,
        n_deleted: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_reads_per_dimension_and_shared_buckets_mapped_or_not() {
        let dir = crate::test_dir("training");
        let (dim, nbits) = (3usize, 1usize);
        let centroids: Vec<f32> = (0..2 * dim).map(|v| v as f32 * 0.5).collect();
        // A training written by this build: per-dimension buckets.
        let codec = ScalarCodec::new(
            dim,
            nbits,
            vec![0.1, 0.2, 0.3],
            vec![-1., 1., -2., 2., -3., 3.],
        )
        .unwrap();
        let path = dir.join("per_dim.bin");
        let size = Training::new(dim, centroids.clone(), Codec::Scalar(codec.clone()))
            .write(&path)
            .unwrap();
        // A format version 1 training: one set of buckets for all dimensions.
        let shared = dir.join("shared.bin");
        let shared_size = write(
            &shared,
            Kind::Training,
            &[
                ("centroids", as_bytes(&centroids)),
                ("cutoffs", as_bytes(&[0.25f32])),
                ("weights", as_bytes(&[-0.5f32, 0.5])),
            ],
        )
        .unwrap();
        for mmap in [true, false] {
            let t =
                Training::read(&path, size, dim, (nbits, CodecKind::Scalar), (mmap, true)).unwrap();
            assert_eq!(&*t.centroids, &centroids[..]);
            assert_eq!(t.centroid(1), &[1.5, 2.0, 2.5]);
            let Codec::Scalar(read) = &t.codec else {
                panic!("a scalar training read as {:?}", t.codec.kind())
            };
            assert_eq!(read.cutoffs(), codec.cutoffs());
            assert_eq!(read.weights(), codec.weights());
            let t = Training::read(
                &shared,
                shared_size,
                dim,
                (nbits, CodecKind::Scalar),
                (mmap, true),
            )
            .unwrap();
            let Codec::Scalar(read) = &t.codec else {
                panic!("a scalar training read as {:?}", t.codec.kind())
            };
            assert_eq!(read.cutoffs(), &[0.25; 3]);
            assert_eq!(read.weights(), &[-0.5, 0.5, -0.5, 0.5, -0.5, 0.5]);
        }
        // Buckets of neither shape: a corrupt file naming the field.
        let bad = dir.join("bad.bin");
        let bad_size = write(
            &bad,
            Kind::Training,
            &[
                ("centroids", as_bytes(&centroids)),
                ("cutoffs", as_bytes(&[0.25f32, 0.5])),
                ("weights", as_bytes(&[-0.5f32, 0.5])),
            ],
        )
        .unwrap();
        let err = Training::read(
            &bad,
            bad_size,
            dim,
            (nbits, CodecKind::Scalar),
            (true, true),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("cutoffs"), "{err}");
    }
}
