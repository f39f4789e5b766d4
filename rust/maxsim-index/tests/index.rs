//! The index against exhaustive MaxSim (maxsim-core's scores and top-k).

use maxsim_core::{maxsim_scores_batch, topk_desc, DocSet, PreparedQueries, ScoreOptions};
use maxsim_index::search::default_candidates;
use maxsim_index::{Allowed, CreateOptions, DocId, Error, Index, SearchParams, StoreKind};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("maxsim-index-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

struct Gen(u64);
impl Gen {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    /// A clustered corpus: unit vectors near one of `topics` directions.
    fn docs(&mut self, n: usize, dim: usize, topics: usize) -> Vec<Vec<f32>> {
        let centers: Vec<Vec<f32>> = (0..topics)
            .map(|_| (0..dim).map(|_| self.next()).collect())
            .collect();
        (0..n)
            .map(|_| {
                let len = 3 + (self.next().abs() * 30.0) as usize;
                let mut doc = Vec::with_capacity(len * dim);
                for _ in 0..len {
                    let t = ((self.next().abs() * topics as f32) as usize).min(topics - 1);
                    let mut row: Vec<f32> =
                        centers[t].iter().map(|&c| c + 0.6 * self.next()).collect();
                    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                    row.iter_mut().for_each(|v| *v /= norm);
                    doc.extend(row);
                }
                doc
            })
            .collect()
    }
}

fn exhaustive(q: &[f32], docs: &[Vec<f32>], dim: usize, k: usize) -> (Vec<f32>, Vec<i64>) {
    let set = DocSet::list(docs.iter().map(|d| &d[..]).collect(), dim).unwrap();
    let prepared = PreparedQueries::new(&[q], None, dim).unwrap();
    let scores = maxsim_scores_batch(&prepared, &set, ScoreOptions::default()).unwrap();
    let t = topk_desc(&scores, k);
    (t.scores, t.indices)
}

fn add_all(index: &Index, docs: &[Vec<f32>], dim: usize, first_id: i64) {
    let ids = (0..docs.len())
        .map(|i| DocId::Int(first_id + i as i64))
        .collect();
    let set = DocSet::list(docs.iter().map(|d| &d[..]).collect(), dim).unwrap();
    index.add(ids, &set, false).unwrap();
}

fn params(k: usize) -> SearchParams {
    SearchParams {
        k,
        nprobe: None,
        n_candidates: None,
        rerank: Some(false),
        certify: false,
        exact: false,
    }
}

#[test]
fn full_probe_exact_rerank_equals_exhaustive_and_is_certified() {
    let dim = 32;
    let mut g = Gen(7);
    let docs = g.docs(300, dim, 12);
    let path = dir("exact");
    let mut opts = CreateOptions::new(dim);
    opts.store = Some(StoreKind::Float32);
    opts.n_centroids = Some(64);
    let index = Index::create(&path, &opts).unwrap();
    add_all(&index, &docs[..150], dim, 0);
    add_all(&index, &docs[150..], dim, 150);
    let snap = index.snapshot();
    for qi in 0..5 {
        let q: Vec<f32> = g.docs(1, dim, 12).remove(0);
        let (want_s, want_i) = exhaustive(&q, &docs, dim, 10);
        let p = SearchParams {
            nprobe: Some(64),
            n_candidates: Some(300),
            rerank: Some(true),
            certify: true,
            ..params(10)
        };
        let hits = snap.search(&[&q], &p, &[None]).unwrap().remove(0);
        assert_eq!(
            hits.ordinals.iter().map(|&o| o as i64).collect::<Vec<_>>(),
            want_i,
            "query {qi}"
        );
        assert_eq!(hits.scores, want_s);
        assert!(hits.certified);
        // exact=True from a small nprobe: widened until certified, and right.
        let p = SearchParams {
            nprobe: Some(1),
            n_candidates: Some(20),
            exact: true,
            ..params(10)
        };
        let hits = snap.search(&[&q], &p, &[None]).unwrap().remove(0);
        assert!(hits.certified);
        assert_eq!(
            hits.ordinals.iter().map(|&o| o as i64).collect::<Vec<_>>(),
            want_i,
            "query {qi} exact"
        );
        // The certificate is never wrong: whenever it is claimed, the result is exhaustive.
        for nprobe in [1, 2, 4, 8] {
            let p = SearchParams {
                nprobe: Some(nprobe),
                n_candidates: Some(40),
                rerank: Some(true),
                certify: true,
                ..params(10)
            };
            let hits = snap.search(&[&q], &p, &[None]).unwrap().remove(0);
            if hits.certified {
                assert_eq!(
                    hits.ordinals.iter().map(|&o| o as i64).collect::<Vec<_>>(),
                    want_i
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn recall_delete_compact_reopen_and_threads() {
    let dim = 24;
    let mut g = Gen(11);
    let docs = g.docs(400, dim, 16);
    let path = dir("life");
    let mut opts = CreateOptions::new(dim);
    opts.store = Some(StoreKind::Float16);
    let index = Index::create(&path, &opts).unwrap();
    add_all(&index, &docs[..200], dim, 0);
    add_all(&index, &docs[200..], dim, 200);
    let stats = index.stats();
    assert_eq!((stats.n_docs, stats.n_segments), (400, 2));
    let queries: Vec<Vec<f32>> = g.docs(10, dim, 16);
    let qs: Vec<&[f32]> = queries.iter().map(|q| &q[..]).collect();
    let snap = index.snapshot();
    let got = snap
        .search(&qs, &params(10), &vec![None; qs.len()])
        .unwrap();
    let reranked = snap
        .search(
            &qs,
            &SearchParams {
                rerank: Some(true),
                ..params(10)
            },
            &vec![None; qs.len()],
        )
        .unwrap();
    let (mut found, mut found_rerank) = (0, 0);
    for ((q, h), r) in queries.iter().zip(&got).zip(&reranked) {
        let (_, want) = exhaustive(q, &docs, dim, 10);
        found += h
            .ordinals
            .iter()
            .filter(|&&o| want.contains(&(o as i64)))
            .count();
        found_rerank += r
            .ordinals
            .iter()
            .filter(|&&o| want.contains(&(o as i64)))
            .count();
    }
    // This noisy corpus is hard for 2-bit residuals; the exact rerank of the
    // same candidates must find nearly everything.
    assert!(found >= 50, "recall {found}/100");
    assert!(found_rerank >= 90, "reranked recall {found_rerank}/100");
    // With a store, the default scores exactly, on the exact path's default
    // candidate count, and meets the recall target.
    let default = snap
        .search(
            &qs,
            &SearchParams {
                rerank: None,
                ..params(10)
            },
            &vec![None; qs.len()],
        )
        .unwrap();
    let explicit = SearchParams {
        rerank: Some(true),
        n_candidates: Some(default_candidates(10, true)),
        ..params(10)
    };
    assert_eq!(
        default,
        snap.search(&qs, &explicit, &vec![None; qs.len()]).unwrap()
    );
    let found_default: usize = queries
        .iter()
        .zip(&default)
        .map(|(q, h)| {
            let (_, want) = exhaustive(q, &docs, dim, 10);
            h.ordinals
                .iter()
                .filter(|&&o| want.contains(&(o as i64)))
                .count()
        })
        .sum();
    assert!(found_default >= 95, "default recall {found_default}/100");
    // Thread count does not change results.
    maxsim_core::set_num_threads(1).unwrap();
    let one = snap
        .search(&qs, &params(10), &vec![None; qs.len()])
        .unwrap();
    maxsim_core::set_num_threads(3).unwrap();
    let three = snap
        .search(&qs, &params(10), &vec![None; qs.len()])
        .unwrap();
    assert_eq!(one, got);
    assert_eq!(three, got);
    // Delete, then the deleted never come back; the old snapshot is unchanged.
    let victims: Vec<DocId> = got[0].ordinals[..3]
        .iter()
        .map(|&o| DocId::Int(o as i64))
        .collect();
    assert_eq!(index.delete(&victims).unwrap(), 3);
    assert!(matches!(
        index.delete(&[DocId::Int(9999)]),
        Err(Error::UnknownIds(_))
    ));
    assert_eq!(
        snap.search(&qs[..1], &params(10), &[None]).unwrap()[0],
        got[0]
    );
    let after = index
        .snapshot()
        .search(&qs[..1], &params(10), &[None])
        .unwrap()
        .remove(0);
    for v in &victims {
        let DocId::Int(o) = v else { unreachable!() };
        assert!(!after.ordinals.contains(&(*o as u64)));
    }
    // Subset: only allowed documents, scored before any pruning.
    let allowed = Allowed::new((0..400).step_by(7).collect(), 400);
    let sub = index
        .snapshot()
        .search(&qs[..1], &params(5), &[Some(&allowed)])
        .unwrap()
        .remove(0);
    assert!(sub
        .ordinals
        .iter()
        .all(|o| o % 7 == 0 && !victims.contains(&DocId::Int(*o as i64))));
    // Compact and reopen: same live ids, deleted gone, search still works.
    index.compact().unwrap();
    assert_eq!(index.stats().n_segments, 1);
    assert_eq!(index.stats().n_tombstones, 0);
    let ids_before = index.snapshot().live_ids().unwrap();
    drop(index);
    let reopened = Index::open(&path, true, true).unwrap();
    assert_eq!(reopened.snapshot().live_ids().unwrap(), ids_before);
    assert_eq!(reopened.stats().n_docs, 397);
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn errors_name_the_argument_or_the_file() {
    let dim = 8;
    let path = dir("errors");
    let index = Index::create(&path, &CreateOptions::new(dim)).unwrap();
    assert!(Index::create(&path, &CreateOptions::new(dim)).is_err());
    let docs = Gen(3).docs(20, dim, 3);
    add_all(&index, &docs, dim, 0);
    // Without a store the default scores decoded residuals, and an explicit
    // exact rerank is refused by name.
    let q = &docs[1][..];
    let snap = index.snapshot();
    let auto = SearchParams {
        rerank: None,
        ..params(5)
    };
    assert_eq!(
        snap.search(&[q], &auto, &[None]).unwrap(),
        snap.search(&[q], &params(5), &[None]).unwrap()
    );
    let exact = SearchParams {
        rerank: Some(true),
        ..params(5)
    };
    let err = snap.search(&[q], &exact, &[None]).unwrap_err();
    assert!(err.to_string().contains("rerank"), "{err}");
    let set = DocSet::list(vec![&docs[0][..]], dim).unwrap();
    let err = index.add(vec![DocId::Int(0)], &set, false).unwrap_err();
    assert!(err.to_string().contains("already in the index"), "{err}");
    let err = index
        .add(vec![DocId::Str("a".into())], &set, false)
        .unwrap_err();
    assert!(err.to_string().contains("int64"), "{err}");
    // A second writer on the same folder is refused.
    let other = Index::open(&path, true, true).unwrap();
    assert!(matches!(
        other.delete(&[DocId::Int(1)]),
        Err(Error::Locked(_))
    ));
    drop(index);
    // Corrupt a segment byte: open with verify names the file and section.
    let seg = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    let mut raw = std::fs::read(&seg).unwrap();
    let n = raw.len();
    raw[n - 5] ^= 0x40;
    std::fs::write(&seg, &raw).unwrap();
    let err = Index::open(&path, true, true).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    std::fs::remove_file(&seg).unwrap();
    let err = Index::open(&path, true, false).err().unwrap();
    assert!(matches!(err, Error::Missing { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&path);
}
