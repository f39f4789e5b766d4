//! A consistent, read-only view of one committed state: the training, the
//! segments with their tombstones, and the id map. Searches run on a
//! snapshot; a commit makes a new one, so a search (or a reader that has not
//! reloaded) keeps the state it started with.

use crate::error::{corrupt, Error, Result};
use crate::ids::{DocId, IdMap};
use crate::manifest::Manifest;
use crate::reader::{Expect, Segment};
use crate::segment::Training;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub training: Option<Arc<Training>>,
    pub segments: Vec<Arc<Segment>>,
    /// Ordinal of each segment's first document; one more entry for the total.
    pub bases: Vec<u64>,
    pub ids: Arc<IdMap>,
    /// Per centroid, the largest residual norm of any token (0 where none).
    pub res_norm: Vec<f32>,
    pub n_live: usize,
    pub mmap: bool,
}

impl Snapshot {
    /// Opens the state `manifest` names, sharing files with `previous` where
    /// they are the same.
    pub fn load(
        dir: &Path,
        manifest: Manifest,
        (mmap, verify): (bool, bool),
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot> {
        let training = match (&manifest.training, previous) {
            (Some(f), Some(p)) if p.manifest.training.as_ref() == Some(f) => p.training.clone(),
            (Some(f), _) => Some(Arc::new(Training::read(
                &dir.join(&f.name),
                f.size,
                manifest.dim,
                (manifest.nbits, manifest.codec),
                (mmap, verify),
            )?)),
            (None, _) => None,
        };
        if training.is_none() && !manifest.segments.is_empty() {
            return Err(corrupt(
                &dir.join(crate::manifest::MANIFEST),
                "training",
                "segments without a training file",
            ));
        }
        let n_centroids = training.as_ref().map_or(0, |t| t.n_centroids());
        let expect = Expect {
            dim: manifest.dim,
            bytes_per_token: training.as_ref().map_or(0, |t| t.codec.bytes_per_token()),
            n_centroids,
            store: manifest.store,
        };
        let mut segments = Vec::with_capacity(manifest.segments.len());
        let mut bases = vec![0u64];
        let mut res_norm = vec![0.0f32; n_centroids];
        let mut ids = IdMap::new();
        let mut n_live = 0;
        for meta in &manifest.segments {
            let reuse = previous.and_then(|p| p.segments.iter().find(|s| s.meta.id == meta.id));
            let seg = Segment::open(dir, meta, &expect, (mmap, verify), reuse.map(|s| &**s))?;
            let view = seg.view()?;
            for (&c, &r) in view.ivf_cents.iter().zip(view.res_norms) {
                res_norm[c as usize] = res_norm[c as usize].max(r);
            }
            let base = *bases.last().unwrap();
            for d in 0..meta.n_docs as usize {
                if !seg.is_deleted(d) {
                    if ids.insert(view.id(d), base + d as u64).is_some() {
                        return Err(corrupt(
                            &dir.join(&meta.index.name),
                            "ids",
                            format!("id {} is in the index twice", view.id(d)),
                        ));
                    }
                    n_live += 1;
                }
            }
            bases.push(base + meta.n_docs);
            segments.push(Arc::new(seg));
        }
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
            training,
            segments,
            bases,
            ids: Arc::new(ids),
            res_norm,
            n_live,
            mmap,
        })
    }

    /// Reads the manifest and opens its state, retrying when a writer
    /// replaced files between the two (a compaction removes old segments).
    pub fn open_latest(
        dir: &Path,
        opts: (bool, bool),
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot> {
        let mut attempt = 0;
        loop {
            let manifest = Manifest::read(dir)?;
            let generation = manifest.generation;
            match Snapshot::load(dir, manifest, opts, previous) {
                Err(Error::Missing { .. })
                    if attempt < 5
                        && Manifest::read(dir).is_ok_and(|m| m.generation != generation) =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Documents in the segments, deleted ones included (ordinals are below this).
    pub fn total_docs(&self) -> u64 {
        *self.bases.last().unwrap()
    }

    /// `(segment, local document)` of an ordinal.
    pub fn locate(&self, ordinal: u64) -> (usize, usize) {
        let s = self.bases.partition_point(|&b| b <= ordinal) - 1;
        (s, (ordinal - self.bases[s]) as usize)
    }

    pub fn doc_id(&self, ordinal: u64) -> Result<DocId> {
        let (s, d) = self.locate(ordinal);
        Ok(self.segments[s].view()?.id(d))
    }

    pub fn is_live(&self, ordinal: u64) -> bool {
        let (s, d) = self.locate(ordinal);
        !self.segments[s].is_deleted(d)
    }

    /// Live ids in ordinal (insertion) order.
    pub fn live_ids(&self) -> Result<Vec<DocId>> {
        let mut out = Vec::with_capacity(self.n_live);
        for seg in &self.segments {
            let view = seg.view()?;
            for d in 0..seg.meta.n_docs as usize {
                if !seg.is_deleted(d) {
                    out.push(view.id(d));
                }
            }
        }
        Ok(out)
    }
}

impl Snapshot {
    /// The vectors of a document (`n_tokens × dim`, row-major): the stored
    /// full vectors as f32 when there is a store, else the decompressed
    /// residuals (centroid + bucket weights).
    pub fn vectors(&self, ordinal: u64) -> Result<Vec<f32>> {
        use crate::reader::StoreView;
        let dim = self.manifest.dim;
        let (s, d) = self.locate(ordinal);
        let view = self.segments[s].view()?;
        let (a, b) = view.tokens(d);
        let range = a * dim..b * dim;
        Ok(match view.store {
            Some(StoreView::F32(x)) => x[range].to_vec(),
            Some(StoreView::F16(x)) => x[range].iter().map(|v| v.to_f32()).collect(),
            Some(StoreView::Bf16(x)) => x[range].iter().map(|v| v.to_f32()).collect(),
            Some(StoreView::Int8(x, scales)) => x[range]
                .iter()
                .enumerate()
                .map(|(i, &c)| c as f32 * scales[a + i / dim])
                .collect(),
            None => {
                let training = self.training.as_ref().expect("a document implies training");
                let bpt = training.codec.bytes_per_token();
                let mut out = vec![0.0f32; (b - a) * dim];
                for (row, t) in out.chunks_mut(dim).zip(a..b) {
                    let c = view.codes.get(t);
                    training.codec.decode_add(
                        &view.residuals[t * bpt..(t + 1) * bpt],
                        training.centroid(c),
                        row,
                    );
                }
                out
            }
        })
    }
}
