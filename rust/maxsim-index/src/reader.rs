//! An opened segment: its files mapped (or read), checked for consistency,
//! and its tombstones loaded.

use crate::error::{corrupt, Result};
use crate::file::{as_bytes, write, Kind, Sectioned};
use crate::ids::DocId;
use crate::manifest::{FileRef, SegmentRef, StoreKind};
use maxsim_core::reduced::{bf16, f16};
use std::path::Path;
use std::sync::Arc;

/// A segment of a snapshot.
pub struct Segment {
    pub meta: SegmentRef,
    file: Arc<Sectioned>,
    store: Option<Arc<Sectioned>>,
    store_kind: Option<StoreKind>,
    /// Bit `d` set: local document `d` is deleted.
    deleted: Vec<u64>,
}

/// Centroid codes of the tokens.
#[derive(Clone, Copy)]
pub enum Codes<'a> {
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl Codes<'_> {
    #[inline]
    pub fn get(&self, t: usize) -> usize {
        match self {
            Codes::U16(c) => c[t] as usize,
            Codes::U32(c) => c[t] as usize,
        }
    }
}

/// Stored full vectors.
#[derive(Clone, Copy)]
pub enum StoreView<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
    Int8(&'a [i8], &'a [f32]),
}

/// The typed sections of a segment.
pub struct SegView<'a> {
    pub doc_offsets: &'a [u64],
    pub codes: Codes<'a>,
    pub residuals: &'a [u8],
    pub ivf_cents: &'a [u32],
    pub ivf_offsets: &'a [u32],
    pub ivf_docs: &'a [u32],
    pub res_norms: &'a [f32],
    pub ids_int: Option<&'a [i64]>,
    pub id_offsets: Option<&'a [u64]>,
    pub id_bytes: &'a [u8],
    pub store: Option<StoreView<'a>>,
}

impl SegView<'_> {
    /// Token range of local document `d`.
    #[inline]
    pub fn tokens(&self, d: usize) -> (usize, usize) {
        (
            self.doc_offsets[d] as usize,
            self.doc_offsets[d + 1] as usize,
        )
    }

    /// Local documents with a token at centroid `c` (empty if none).
    #[inline]
    pub fn list(&self, c: u32) -> &[u32] {
        match self.ivf_cents.binary_search(&c) {
            Ok(i) => &self.ivf_docs[self.ivf_offsets[i] as usize..self.ivf_offsets[i + 1] as usize],
            Err(_) => &[],
        }
    }

    pub fn id(&self, d: usize) -> DocId {
        match (self.ids_int, self.id_offsets) {
            (Some(ints), _) => DocId::Int(ints[d]),
            (None, Some(offs)) => {
                let bytes = &self.id_bytes[offs[d] as usize..offs[d + 1] as usize];
                DocId::Str(String::from_utf8_lossy(bytes).into_owned())
            }
            (None, None) => unreachable!("checked at open"),
        }
    }
}

/// What a segment must agree with.
pub struct Expect {
    pub dim: usize,
    pub bytes_per_token: usize,
    pub n_centroids: usize,
    pub store: Option<StoreKind>,
}

impl Segment {
    /// Opens a segment's files in `dir`, checking them against `meta` and `expect`.
    /// `reuse`: an opened segment of an earlier snapshot whose files (same
    /// names) are shared instead of opened again; only tombstones are read.
    pub fn open(
        dir: &Path,
        meta: &SegmentRef,
        expect: &Expect,
        (mmap, verify): (bool, bool),
        reuse: Option<&Segment>,
    ) -> Result<Segment> {
        let path = dir.join(&meta.index.name);
        let shared = reuse.filter(|r| r.meta.index == meta.index && r.meta.store == meta.store);
        let (file, store) = match shared {
            Some(r) => (Arc::clone(&r.file), r.store.clone()),
            None => {
                let file =
                    Sectioned::open(&path, Kind::Segment, Some(meta.index.size), mmap, verify)?;
                let store = match (&meta.store, expect.store) {
                    (Some(f), Some(_)) => Some(Arc::new(Sectioned::open(
                        &dir.join(&f.name),
                        Kind::Store,
                        Some(f.size),
                        mmap,
                        verify,
                    )?)),
                    (None, None) => None,
                    _ => {
                        return Err(corrupt(
                            &path,
                            "store",
                            "store file and the manifest's store setting disagree",
                        ))
                    }
                };
                (Arc::new(file), store)
            }
        };
        let deleted = match &meta.tombstones {
            None => vec![0u64; (meta.n_docs as usize).div_ceil(64)],
            Some(f) => read_tombstones(&dir.join(&f.name), f.size, meta, verify)?,
        };
        let segment = Segment {
            meta: meta.clone(),
            file,
            store,
            store_kind: expect.store,
            deleted,
        };
        segment.check(expect, verify && shared.is_none())?;
        Ok(segment)
    }

    fn check(&self, expect: &Expect, deep: bool) -> Result<()> {
        let path = self.file.path();
        let v = self.view()?;
        let (n_docs, n_tokens) = (self.meta.n_docs as usize, self.meta.n_tokens as usize);
        let bad = |field: &str, msg: String| Err(corrupt(path, field, msg));
        if v.doc_offsets.len() != n_docs + 1
            || v.doc_offsets[0] != 0
            || v.doc_offsets[n_docs] as usize != n_tokens
            || v.doc_offsets.windows(2).any(|w| w[1] <= w[0])
        {
            return bad(
                "doc_offsets",
                "not increasing from 0 to the token count".into(),
            );
        }
        let codes_len = match v.codes {
            Codes::U16(c) => c.len(),
            Codes::U32(c) => c.len(),
        };
        if codes_len != n_tokens {
            return bad("codes", format!("{codes_len} codes for {n_tokens} tokens"));
        }
        if v.residuals.len() != n_tokens * expect.bytes_per_token {
            return bad(
                "residuals",
                format!("{} bytes for {n_tokens} tokens", v.residuals.len()),
            );
        }
        let m = v.ivf_cents.len();
        if v.ivf_offsets.len() != m + 1
            || v.res_norms.len() != m
            || v.ivf_offsets[0] != 0
            || v.ivf_offsets[m] as usize != v.ivf_docs.len()
            || v.ivf_offsets.windows(2).any(|w| w[1] <= w[0])
            || v.ivf_cents.windows(2).any(|w| w[1] <= w[0])
            || v.ivf_cents
                .last()
                .is_some_and(|&c| c as usize >= expect.n_centroids)
        {
            return bad("ivf", "inverted lists are inconsistent".into());
        }
        if let Some(ints) = v.ids_int {
            if ints.len() != n_docs {
                return bad(
                    "ids_int",
                    format!("{} ids for {n_docs} documents", ints.len()),
                );
            }
        } else if let Some(offs) = v.id_offsets {
            if offs.len() != n_docs + 1
                || offs[n_docs] as usize != v.id_bytes.len()
                || offs.windows(2).any(|w| w[1] < w[0])
            {
                return bad(
                    "id_offsets",
                    "not increasing to the id bytes' length".into(),
                );
            }
        } else {
            return bad("ids", "no ids section".into());
        }
        if let Some(store) = v.store {
            let values = n_tokens * expect.dim;
            let ok = match store {
                StoreView::F32(x) => x.len() == values,
                StoreView::F16(x) => x.len() == values,
                StoreView::Bf16(x) => x.len() == values,
                StoreView::Int8(x, s) => x.len() == values && s.len() == n_tokens,
            };
            if !ok {
                let store_path = self.store.as_ref().map_or(path, |s| s.path());
                return Err(corrupt(
                    store_path,
                    "vectors",
                    format!(
                        "size does not match {n_tokens} tokens of dim {}",
                        expect.dim
                    ),
                ));
            }
        }
        if deep {
            let k = expect.n_centroids;
            let codes_ok = match v.codes {
                Codes::U16(c) => c.iter().all(|&x| (x as usize) < k),
                Codes::U32(c) => c.iter().all(|&x| (x as usize) < k),
            };
            if !codes_ok {
                return bad("codes", format!("a code is not below the {k} centroids"));
            }
            if v.ivf_docs.iter().any(|&d| d as usize >= n_docs) {
                return bad("ivf_docs", "a document number is out of range".into());
            }
        }
        Ok(())
    }

    /// The typed sections.
    pub fn view(&self) -> Result<SegView<'_>> {
        let f = &self.file;
        let codes = if let Ok(c) = f.slice::<u16>("codes16", None) {
            Codes::U16(c)
        } else {
            Codes::U32(f.slice::<u32>("codes32", None)?)
        };
        let ids_int = f.slice::<i64>("ids_int", None).ok();
        let (id_offsets, id_bytes) = if ids_int.is_none() {
            (
                Some(f.slice::<u64>("id_offsets", None)?),
                f.bytes("id_bytes")?,
            )
        } else {
            (None, &[][..])
        };
        let store = match (&self.store, self.store_kind) {
            (Some(s), Some(kind)) => Some(match kind {
                StoreKind::Float32 => StoreView::F32(s.slice::<f32>("vectors", None)?),
                StoreKind::Int8 => StoreView::Int8(
                    s.slice::<i8>("vectors", None)?,
                    s.slice::<f32>("scales", None)?,
                ),
                StoreKind::Float16 | StoreKind::Bfloat16 => {
                    let bits = s.slice::<u16>("vectors", None)?;
                    let (p, len) = (bits.as_ptr(), bits.len());
                    if kind == StoreKind::Bfloat16 {
                        // SAFETY: bf16 is `repr(transparent)` over u16.
                        StoreView::Bf16(unsafe {
                            std::slice::from_raw_parts(p as *const bf16, len)
                        })
                    } else {
                        // SAFETY: f16 is `repr(transparent)` over u16.
                        StoreView::F16(unsafe { std::slice::from_raw_parts(p as *const f16, len) })
                    }
                }
            }),
            _ => None,
        };
        Ok(SegView {
            doc_offsets: f.slice::<u64>("doc_offsets", None)?,
            codes,
            residuals: f.bytes("residuals")?,
            ivf_cents: f.slice::<u32>("ivf_cents", None)?,
            ivf_offsets: f.slice::<u32>("ivf_offsets", None)?,
            ivf_docs: f.slice::<u32>("ivf_docs", None)?,
            res_norms: f.slice::<f32>("res_norms", None)?,
            ids_int,
            id_offsets,
            id_bytes,
            store,
        })
    }

    #[inline]
    pub fn is_deleted(&self, d: usize) -> bool {
        self.deleted[d / 64] >> (d % 64) & 1 == 1
    }

    pub fn n_live(&self) -> usize {
        (self.meta.n_docs - self.meta.n_deleted) as usize
    }

    /// Deleted local documents, increasing.
    pub fn deleted_list(&self) -> Vec<u32> {
        (0..self.meta.n_docs as usize)
            .filter(|&d| self.is_deleted(d))
            .map(|d| d as u32)
            .collect()
    }

    /// Bytes of the segment's index file (without the store).
    pub fn index_bytes(&self) -> u64 {
        self.meta.index.size
    }
}

/// Writes a tombstone file listing `deleted` (increasing local documents).
pub fn write_tombstones(path: &Path, deleted: &[u32]) -> Result<u64> {
    write(path, Kind::Tombstones, &[("deleted", as_bytes(deleted))])
}

fn read_tombstones(path: &Path, size: u64, meta: &SegmentRef, verify: bool) -> Result<Vec<u64>> {
    let f = Sectioned::open(path, Kind::Tombstones, Some(size), false, verify)?;
    let list = f.slice::<u32>("deleted", Some(meta.n_deleted as usize))?;
    if list.windows(2).any(|w| w[1] <= w[0])
        || list.last().is_some_and(|&d| d as u64 >= meta.n_docs)
    {
        return Err(corrupt(
            path,
            "deleted",
            "not increasing document numbers of the segment",
        ));
    }
    let mut bits = vec![0u64; (meta.n_docs as usize).div_ceil(64)];
    for &d in list {
        bits[d as usize / 64] |= 1 << (d % 64);
    }
    Ok(bits)
}

/// The file reference of a tombstone file written at `path`.
pub fn tombstone_ref(name: String, size: u64) -> FileRef {
    FileRef { name, size }
}
