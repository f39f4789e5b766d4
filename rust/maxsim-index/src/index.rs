//! The index: one writer (a lock file), any number of readers, atomic commits.
//!
//! Every write (`train`, `add`, `delete`, `compact`) writes new immutable
//! files, fsyncs them, then commits a new manifest (see [`crate::manifest`])
//! and swaps in a new snapshot. A process killed at any point leaves either
//! the last committed state or the new one; files a killed writer left
//! behind are removed by the next writer when it takes the lock.

use crate::codec::{check_nbits, Codec, ScalarCodec};
use crate::error::{invalid, io_error, Error, Result};
use crate::ids::{list_some, DocId};
use crate::kmeans;
use crate::manifest::{CodecKind, Manifest, StoreKind, MANIFEST};
use crate::reader::{tombstone_ref, write_tombstones, Codes, StoreView};
use crate::rng::Rng;
use crate::segment::{encode, write_parts, Batch, Parts, StoreData, Training};
use crate::snapshot::Snapshot;
use maxsim_core::DocSet;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// File name of the writer lock.
const LOCK: &str = "writer.lock";

/// Settings of a new index.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub dim: usize,
    pub nbits: usize,
    /// The residual codec; product quantization by default.
    pub codec: CodecKind,
    /// `None`: PLAID's rule (a power of two near 16 √tokens).
    pub n_centroids: Option<usize>,
    pub store: Option<StoreKind>,
    pub seed: u64,
    pub kmeans_iters: usize,
    /// k-means trains on at most this many sample tokens per centroid.
    pub max_points_per_centroid: usize,
}

impl CreateOptions {
    pub fn new(dim: usize) -> Self {
        CreateOptions {
            dim,
            nbits: 2,
            codec: CodecKind::Product,
            n_centroids: None,
            store: None,
            seed: 0,
            kmeans_iters: 4,
            max_points_per_centroid: 32,
        }
    }
}

/// Counts and sizes of the committed state.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub n_docs: usize,
    pub n_tombstones: usize,
    pub n_tokens: u64,
    pub n_segments: usize,
    pub n_centroids: usize,
    pub dim: usize,
    pub nbits: usize,
    pub codec: CodecKind,
    pub store: Option<StoreKind>,
    /// Segment files and the training file, without the store.
    pub index_bytes: u64,
    pub store_bytes: u64,
    pub generation: u64,
}

impl Stats {
    /// Index bytes (without the store) per stored token.
    pub fn bytes_per_token(&self) -> f64 {
        self.index_bytes as f64 / self.n_tokens.max(1) as f64
    }
}

pub struct Index {
    dir: PathBuf,
    opts: (bool, bool),
    current: RwLock<Arc<Snapshot>>,
    /// The lock file, once this handle has written.
    writer: Mutex<Option<File>>,
}

impl Index {
    /// Creates an empty index in `dir` (created if needed; it must not hold an index).
    pub fn create(dir: &Path, options: &CreateOptions) -> Result<Index> {
        if options.dim == 0 {
            return invalid!("dim: must be at least 1, got 0");
        }
        check_nbits(options.nbits)?;
        if options.n_centroids == Some(0) {
            return invalid!("n_centroids: must be at least 1, got 0");
        }
        if options.kmeans_iters == 0 || options.max_points_per_centroid == 0 {
            return invalid!("kmeans_iters and max_points_per_centroid must be at least 1");
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        if dir.join(MANIFEST).exists() {
            return invalid!(
                "path: {} already holds an index; open it with Index.open or choose another folder",
                dir.display()
            );
        }
        let index = Index {
            dir: dir.to_path_buf(),
            opts: (true, true),
            current: RwLock::new(Arc::new(empty_snapshot(dir))),
            writer: Mutex::new(None),
        };
        let manifest = Manifest::new(
            options.dim,
            (options.nbits, options.codec),
            options.store,
            options.seed,
            options.n_centroids,
            options.kmeans_iters,
            options.max_points_per_centroid,
        );
        let guard = index.lock_writer(false)?;
        index.remove_unreferenced(&manifest)?;
        manifest.commit(dir)?;
        index.install(Snapshot::load(dir, manifest, index.opts, None)?);
        drop(guard);
        Ok(index)
    }

    /// Opens the index in `dir`: memory-mapped (`mmap`) or read into memory;
    /// `verify` checks every file's checksums first.
    pub fn open(dir: &Path, mmap: bool, verify: bool) -> Result<Index> {
        let manifest_path = dir.join(MANIFEST);
        if !manifest_path.exists() {
            return Err(Error::Missing {
                path: manifest_path.display().to_string(),
                message: "no index here (no manifest.json); create one with Index.create".into(),
            });
        }
        let snapshot = Snapshot::open_latest(dir, (mmap, verify), None)?;
        Ok(Index {
            dir: dir.to_path_buf(),
            opts: (mmap, verify),
            current: RwLock::new(Arc::new(snapshot)),
            writer: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The committed state searches run on.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn install(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }

    /// Picks up commits made by other handles or processes. Returns whether
    /// the state changed.
    pub fn reload(&self) -> Result<bool> {
        let old = self.snapshot();
        let manifest = Manifest::read(&self.dir)?;
        if manifest.generation == old.manifest.generation {
            return Ok(false);
        }
        self.install(Snapshot::open_latest(&self.dir, self.opts, Some(&old))?);
        Ok(true)
    }

    /// Takes the writer lock (once per handle), catches up with the latest
    /// commit and removes files that no commit names (a killed writer's).
    fn lock_writer(&self, catch_up: bool) -> Result<MutexGuard<'_, Option<File>>> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let path = self.dir.join(LOCK);
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Locked(format!(
                        "{}: another Index object or process is writing to this index; \
                         one writer at a time (readers need no lock)",
                        path.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
            }
            *guard = Some(file);
            if catch_up {
                self.reload()?;
                self.remove_unreferenced(&self.snapshot().manifest)?;
            }
        }
        Ok(guard)
    }

    /// Deletes index files (by their name patterns) that `manifest` does not name.
    fn remove_unreferenced(&self, manifest: &Manifest) -> Result<()> {
        let keep: HashSet<&str> = manifest.files().iter().map(|f| f.name.as_str()).collect();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("seg-")
                || name.starts_with("train-")
                || name.starts_with(&format!("{MANIFEST}.tmp"));
            if ours && !keep.contains(name.as_str()) {
                // Best effort: a file that cannot be removed is retried next time.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Commits `manifest`, opens its snapshot and removes what it no longer names.
    fn commit(&self, mut manifest: Manifest, old: &Snapshot) -> Result<()> {
        manifest.generation = old.manifest.generation + 1;
        // Files this build writes may need this build's version to be read.
        manifest.version = crate::manifest::VERSION;
        manifest.commit(&self.dir)?;
        let snapshot = Snapshot::load(&self.dir, manifest, (self.opts.0, false), Some(old))?;
        let manifest = snapshot.manifest.clone();
        self.install(snapshot);
        self.remove_unreferenced(&manifest)
    }

    /// Trains the centroids and residual buckets on `sample` (only before
    /// the first `add`). `expected_tokens` sizes the centroid count by
    /// PLAID's rule (default: the sample's token count), unless the index
    /// was created with `n_centroids`.
    pub fn train(&self, sample: &DocSet<'_, f32>, expected_tokens: Option<usize>) -> Result<()> {
        let _guard = self.lock_writer(true)?;
        let old = self.snapshot();
        if old.training.is_some() {
            return invalid!("train: the index is already trained (training happens once, before or at the first add)");
        }
        let mut manifest = old.manifest.clone();
        let (flat, _) = flatten(sample, manifest.dim, "sample")?;
        if flat.is_empty() {
            return invalid!("sample: has no documents");
        }
        let n_tokens = flat.len() / manifest.dim;
        self.write_training(&mut manifest, &flat, expected_tokens.unwrap_or(n_tokens))?;
        self.commit(manifest, &old)
    }

    /// Installs given centroids (`n × dim`) and scalar residual buckets
    /// (`2^nbits - 1` cutoffs, `2^nbits` weights) as the training, for
    /// importing another index's codebook (only before the first `add`; the
    /// index's codec becomes the scalar one).
    pub fn train_with(
        &self,
        centroids: Vec<f32>,
        cutoffs: Vec<f32>,
        weights: Vec<f32>,
    ) -> Result<()> {
        let _guard = self.lock_writer(true)?;
        let old = self.snapshot();
        if old.training.is_some() {
            return invalid!("train: the index is already trained");
        }
        let mut manifest = old.manifest.clone();
        let dim = manifest.dim;
        if centroids.is_empty()
            || !centroids.len().is_multiple_of(dim)
            || centroids.iter().any(|v| !v.is_finite())
        {
            return invalid!(
                "centroids: {} values are not finite rows of dim {dim}",
                centroids.len()
            );
        }
        if cutoffs.windows(2).any(|w| w[1] < w[0]) {
            return invalid!("cutoffs: must be non-decreasing");
        }
        let codec = Codec::Scalar(ScalarCodec::new(dim, manifest.nbits, cutoffs, weights)?);
        manifest.codec = CodecKind::Scalar;
        let training = Training::new(dim, centroids, codec);
        let name = manifest.new_file("train", "bin");
        let size = training.write(&self.dir.join(&name))?;
        manifest.training = Some(crate::manifest::FileRef { name, size });
        self.commit(manifest, &old)
    }

    fn write_training(
        &self,
        manifest: &mut Manifest,
        flat: &[f32],
        expected_tokens: usize,
    ) -> Result<Arc<Training>> {
        let dim = manifest.dim;
        let n = flat.len() / dim;
        let k = manifest
            .n_centroids
            .unwrap_or_else(|| kmeans::plaid_centroid_count(expected_tokens));
        let mut rng = Rng::new(manifest.seed);
        let rows = rng.sample(n, k.saturating_mul(manifest.max_points_per_centroid));
        let sample: Vec<f32> = rows
            .iter()
            .flat_map(|&r| flat[r * dim..(r + 1) * dim].iter().copied())
            .collect();
        let centroids = kmeans::train(&sample, dim, k, manifest.kmeans_iters, manifest.seed)?;
        let prepared = kmeans::prepare_l2(&centroids, dim)?;
        let codes = kmeans::assign(&prepared, &sample)?;
        let mut residuals = sample;
        for (row, &c) in residuals.chunks_mut(dim).zip(&codes) {
            for (v, &m) in row.iter_mut().zip(&centroids[c as usize * dim..]) {
                *v -= m;
            }
        }
        let codec = Codec::fit(
            manifest.codec,
            &residuals,
            dim,
            manifest.nbits,
            manifest.seed,
        )?;
        let training = Training::new(dim, centroids, codec);
        let name = manifest.new_file("train", "bin");
        let size = training.write(&self.dir.join(&name))?;
        manifest.training = Some(crate::manifest::FileRef { name, size });
        Ok(Arc::new(training))
    }

    /// Adds documents under `ids` as one commit (one new segment). An id
    /// already in the index is an error, or with `replace` its old document
    /// is deleted in the same commit. Trains on this batch if untrained.
    pub fn add(&self, ids: Vec<DocId>, docs: &DocSet<'_, f32>, replace: bool) -> Result<()> {
        let _guard = self.lock_writer(true)?;
        let old = self.snapshot();
        let mut manifest = old.manifest.clone();
        if ids.len() != docs.len() {
            return invalid!("ids: {} ids for {} documents", ids.len(), docs.len());
        }
        if docs.is_empty() {
            return Ok(());
        }
        let kind = ids[0].kind();
        if let Some(bad) = ids.iter().position(|i| i.kind() != kind) {
            return invalid!(
                "ids: ids[{bad}] is of another type than ids[0]; one id type per index"
            );
        }
        if let Some(existing) = manifest.id_kind {
            if existing != kind {
                return invalid!(
                    "ids: this index holds {} ids, got {} ids",
                    existing.name(),
                    kind.name()
                );
            }
        }
        let mut seen = HashSet::with_capacity(ids.len());
        if let Some(dup) = ids.iter().find(|i| !seen.insert(*i)) {
            return invalid!("ids: {dup} appears twice in this batch");
        }
        let present: Vec<&DocId> = ids.iter().filter(|i| old.ids.contains_key(*i)).collect();
        if !present.is_empty() && !replace {
            return invalid!(
                "ids: already in the index: {} (delete them first, or add with replace=True)",
                list_some(&present)
            );
        }
        let (flat, offsets) = flatten(docs, manifest.dim, "docs")?;
        manifest.id_kind = Some(kind);
        let training = match &old.training {
            Some(t) => Arc::clone(t),
            None => {
                let n_tokens = flat.len() / manifest.dim;
                self.write_training(&mut manifest, &flat, n_tokens)?
            }
        };
        if !present.is_empty() {
            let ords: Vec<u64> = present.iter().map(|i| old.ids[*i]).collect();
            self.tombstone(&mut manifest, &old, &ords)?;
        }
        let batch = Batch {
            flat: &flat,
            offsets: &offsets,
            ids: &ids,
        };
        let parts = encode(&training, manifest.store, &batch)?;
        let segment = write_parts(&self.dir, &mut manifest, training.n_centroids(), &parts)?;
        manifest.segments.push(segment);
        self.commit(manifest, &old)
    }

    /// Deletes documents by id (tombstones, one commit). Unknown ids are an
    /// error and nothing is deleted. Returns the number deleted.
    pub fn delete(&self, ids: &[DocId]) -> Result<usize> {
        let _guard = self.lock_writer(true)?;
        let old = self.snapshot();
        let missing: Vec<&DocId> = ids.iter().filter(|i| !old.ids.contains_key(*i)).collect();
        if !missing.is_empty() {
            return Err(Error::UnknownIds(format!(
                "ids: not in the index: {}",
                list_some(&missing)
            )));
        }
        let mut ords: Vec<u64> = ids.iter().map(|i| old.ids[i]).collect();
        ords.sort_unstable();
        ords.dedup();
        if ords.is_empty() {
            return Ok(0);
        }
        let mut manifest = old.manifest.clone();
        self.tombstone(&mut manifest, &old, &ords)?;
        self.commit(manifest, &old)?;
        Ok(ords.len())
    }

    /// Writes new tombstone files for the segments of `ords` into `manifest`.
    fn tombstone(&self, manifest: &mut Manifest, old: &Snapshot, ords: &[u64]) -> Result<()> {
        let mut by_segment: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for &o in ords {
            let (s, d) = old.locate(o);
            by_segment.entry(s).or_default().push(d as u32);
        }
        for (s, new) in by_segment {
            let mut deleted = old.segments[s].deleted_list();
            deleted.extend(new);
            deleted.sort_unstable();
            deleted.dedup();
            let seg_id = manifest.segments[s].id;
            let name = format!("seg-{seg_id:06}.del-{:06}", manifest.next_file);
            manifest.next_file += 1;
            let size = write_tombstones(&self.dir.join(&name), &deleted)?;
            manifest.segments[s].tombstones = Some(tombstone_ref(name, size));
            manifest.segments[s].n_deleted = deleted.len() as u64;
        }
        Ok(())
    }

    /// Merges every segment into one, dropping deleted documents (one commit).
    pub fn compact(&self) -> Result<()> {
        let _guard = self.lock_writer(true)?;
        let old = self.snapshot();
        let deleted: u64 = old.manifest.segments.iter().map(|s| s.n_deleted).sum();
        if old.segments.len() <= 1 && deleted == 0 {
            return Ok(());
        }
        let mut manifest = old.manifest.clone();
        let training = old.training.as_ref().expect("segments imply training");
        let mut segments = Vec::new();
        if old.n_live > 0 {
            let parts = merge_live(&old, training)?;
            segments.push(write_parts(
                &self.dir,
                &mut manifest,
                training.n_centroids(),
                &parts,
            )?);
        }
        manifest.segments = segments;
        self.commit(manifest, &old)
    }

    pub fn stats(&self) -> Stats {
        let snap = self.snapshot();
        let m = &snap.manifest;
        let index_bytes = m.training.as_ref().map_or(0, |t| t.size)
            + m.segments.iter().map(|s| s.index.size).sum::<u64>();
        Stats {
            n_docs: snap.n_live,
            n_tombstones: m.segments.iter().map(|s| s.n_deleted as usize).sum(),
            n_tokens: m.segments.iter().map(|s| s.n_tokens).sum(),
            n_segments: m.segments.len(),
            n_centroids: snap.training.as_ref().map_or(0, |t| t.n_centroids()),
            dim: m.dim,
            nbits: m.nbits,
            codec: m.codec,
            store: m.store,
            index_bytes,
            store_bytes: m
                .segments
                .iter()
                .filter_map(|s| s.store.as_ref())
                .map(|f| f.size)
                .sum(),
            generation: m.generation,
        }
    }
}

fn empty_snapshot(dir: &Path) -> Snapshot {
    Snapshot {
        dir: dir.to_path_buf(),
        manifest: Manifest::new(1, (2, CodecKind::Product), None, 0, None, 1, 1),
        training: None,
        segments: Vec::new(),
        bases: vec![0],
        ids: Default::default(),
        res_norm: Vec::new(),
        n_live: 0,
        mmap: true,
    }
}

/// The documents of `docs` as one `(n_tokens, dim)` buffer and `n_docs + 1` offsets.
fn flatten(docs: &DocSet<'_, f32>, dim: usize, name: &str) -> Result<(Vec<f32>, Vec<u64>)> {
    if docs.dim() != dim {
        return invalid!(
            "{name}: dimension {} does not match the index's {dim}",
            docs.dim()
        );
    }
    let mut flat = Vec::with_capacity(docs.total_tokens() * dim);
    let mut offsets = Vec::with_capacity(docs.len() + 1);
    offsets.push(0u64);
    for i in 0..docs.len() {
        let doc = docs.doc(i);
        if let Some(bad) = doc.iter().position(|v| !v.is_finite()) {
            return invalid!(
                "{name}[{i}]: value {} at token {} is not finite",
                doc[bad],
                bad / dim
            );
        }
        flat.extend_from_slice(doc);
        offsets.push((flat.len() / dim) as u64);
    }
    Ok((flat, offsets))
}

/// The live documents of every segment, in ordinal order, as one segment's parts.
fn merge_live(old: &Snapshot, training: &Training) -> Result<Parts> {
    let bpt = training.codec.bytes_per_token();
    let dim = old.manifest.dim;
    let mut parts = Parts {
        offsets: vec![0],
        codes: Vec::new(),
        residuals: Vec::new(),
        res_max: vec![0.0; training.n_centroids()],
        ids: Vec::with_capacity(old.n_live),
        store: old.manifest.store.map(|kind| match kind {
            StoreKind::Float32 => StoreData::F32(Vec::new()),
            StoreKind::Float16 | StoreKind::Bfloat16 => StoreData::Half(Vec::new()),
            StoreKind::Int8 => StoreData::Int8(Vec::new(), Vec::new()),
        }),
    };
    for seg in &old.segments {
        let v = seg.view()?;
        // A merged centroid's bound is the largest of its sources' bounds.
        for (&c, &r) in v.ivf_cents.iter().zip(v.res_norms) {
            parts.res_max[c as usize] = parts.res_max[c as usize].max(r);
        }
        for d in 0..seg.meta.n_docs as usize {
            if seg.is_deleted(d) {
                continue;
            }
            let (a, b) = v.tokens(d);
            parts.codes.extend((a..b).map(|t| match v.codes {
                Codes::U16(c) => c[t] as u32,
                Codes::U32(c) => c[t],
            }));
            parts
                .residuals
                .extend_from_slice(&v.residuals[a * bpt..b * bpt]);
            parts.ids.push(v.id(d));
            parts.offsets.push(parts.codes.len() as u64);
            match (&mut parts.store, v.store) {
                (Some(StoreData::F32(out)), Some(StoreView::F32(x))) => {
                    out.extend_from_slice(&x[a * dim..b * dim])
                }
                (Some(StoreData::Half(out)), Some(StoreView::F16(x))) => {
                    out.extend(x[a * dim..b * dim].iter().map(|h| h.to_bits()))
                }
                (Some(StoreData::Half(out)), Some(StoreView::Bf16(x))) => {
                    out.extend(x[a * dim..b * dim].iter().map(|h| h.to_bits()))
                }
                (Some(StoreData::Int8(out, scales)), Some(StoreView::Int8(x, s))) => {
                    out.extend_from_slice(&x[a * dim..b * dim]);
                    scales.extend_from_slice(&s[a..b]);
                }
                (None, None) => {}
                _ => unreachable!("every segment has the manifest's store"),
            }
        }
    }
    // `write_parts` pads each bound up again: undo nothing, a bound may only grow.
    Ok(parts)
}
