//! AMX tile kernels for bfloat16 and int8 documents (`Kernel::Amx`).
//!
//! NOT EXECUTED on the development machines (AMD Zen 3 and Zen 4, no AMX): this code
//! compiles, and is dispatched only when CPUID reports AMX-TILE/BF16/INT8, XCR0
//! enables tile state, and (on Linux) `arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)` grants tile data. If the request is denied the reduced
//! paths fall back to the AVX-512 kernels. AMX intrinsics are unstable in Rust,
//! so tile instructions are written with `asm!` (LLVM assembles the mnemonics).
//!
//! Tiles: every tile is configured as 16 rows × 64 bytes. One step of the
//! inner loop multiplies two A tiles (32 document tokens × one K block, read
//! straight from the row-major document) by two B tiles (one K block × 32 query
//! tokens, packed once per call in the VNNI pair/quad layout) into four C
//! tiles (32 document × 32 query tokens). C is stored to a 4 KiB buffer and
//! folded into per-query-token maxima with AVX-512; a batch of queries is one
//! long B, walked 32 tokens at a time over each 32-token document block.
//!
//! - bfloat16: the float32 query is split into `hi = bf16(q)` and
//!   `lo = bf16(q − hi)`; `tdpbf16ps` runs on both, so the query keeps about
//!   16 significant bits (the documents are exact bf16).
//! - int8: `tdpbssd` gives the exact int32 dot products of the other int8
//!   kernels, and the epilogue scales them identically, so scores are bitwise
//!   those of every other int8 path.
//!
//! Tile configuration is per thread: each parallel task loads it on entry
//! (`TileState::new`) and releases the tiles when done (`Drop`).

use crate::dispatch::{amx_permission, Cpu, Env, HalfTiles, Int8Kernel, Kernel, KernelTable};
use crate::docs::DocSet;
use crate::float::{drive, PreparedQueries, ScoreOptions};
use crate::reduced::half::f32_to_bf16_bits;
use crate::reduced::int8::PackedI8;
use crate::reduced::{HalfFloat, Int8Job};
use std::arch::asm;
use std::arch::x86_64::*;

/// The bf16 tile kernel handles this width (whole 32-value K blocks).
fn bf16_applies(dim: usize) -> bool {
    dim.is_multiple_of(32)
}

/// The int8 tile kernel handles this width (whole 64-byte K blocks).
fn int8_applies(dim: usize) -> bool {
    dim.is_multiple_of(64)
}

/// Query tokens per B tile pair.
const QBLOCK: usize = 32;
/// Document tokens per A tile pair.
const DBLOCK: usize = 32;

/// The 64-byte LDTILECFG operand: palette 1, tiles 0..8 of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn all_16x64() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1; // palette
        for t in 0..8 {
            c[16 + 2 * t] = 64; // colsb (little-endian u16)
            c[48 + t] = 16; // rows
        }
        TileConfig(c)
    }
}

/// Per-task AMX state: the tile configuration (loaded on creation, released
/// on drop) and scratch buffers.
struct TileState {
    /// Four stored C tiles (16 × 16 f32 or i32 each).
    c: Vec<f32>,
    /// A zero-padded copy of a partial 32-token document block.
    pad: Vec<u8>,
}

impl TileState {
    /// Configures this thread's tiles. Panics if AMX is not usable (the
    /// table holds tile kernels only where it is).
    fn new() -> Self {
        assert!(amx_permission(), "AMX tiles requested but not usable");
        let cfg = TileConfig::all_16x64();
        // SAFETY: AMX is usable (asserted: CPUID, XCR0 and OS permission), so
        // LDTILECFG is defined; it reads exactly the 64-byte aligned config.
        unsafe {
            asm!("ldtilecfg [{0}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly, preserves_flags))
        };
        TileState {
            c: vec![0.0; 4 * 256],
            pad: Vec::new(),
        }
    }

    /// A zeroed `DBLOCK × row_bytes` buffer holding `rows` rows copied from `src`.
    fn padded(&mut self, src: *const u8, rows: usize, row_bytes: usize) -> *const u8 {
        self.pad.clear();
        self.pad.resize(DBLOCK * row_bytes, 0);
        // SAFETY: the caller guarantees `src` holds `rows * row_bytes` bytes;
        // `pad` holds `DBLOCK * row_bytes >= rows * row_bytes`.
        unsafe { std::ptr::copy_nonoverlapping(src, self.pad.as_mut_ptr(), rows * row_bytes) };
        self.pad.as_ptr()
    }
}

impl Drop for TileState {
    fn drop(&mut self) {
        // SAFETY: tiles were configured by `new` on this thread (a TileState is
        // created and dropped inside one task); TILERELEASE returns them to the
        // init state.
        unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

/// The float32 queries as two bf16 halves in the pair layout `tdpbf16ps`
/// expects for B: `[dim / 2][stride][2]`.
struct PackedBf16 {
    stride: usize,
    dim: usize,
    hi: Vec<u16>,
    lo: Vec<u16>,
}

impl PackedBf16 {
    fn new(q: &PreparedQueries) -> Self {
        let dim = q.dim;
        let stride = q.n_tokens.div_ceil(QBLOCK).max(1) * QBLOCK;
        let mut hi = vec![0u16; dim.div_ceil(2) * 2 * stride];
        let mut lo = hi.clone();
        for k in 0..dim {
            for i in 0..q.n_tokens {
                let x = q.transposed[k * q.stride + i];
                let h = f32_to_bf16_bits(x);
                let rest = x - f32::from_bits((h as u32) << 16);
                let at = ((k / 2) * stride + i) * 2 + k % 2;
                hi[at] = h;
                lo[at] = if rest.is_finite() {
                    f32_to_bf16_bits(rest)
                } else {
                    0
                };
            }
        }
        PackedBf16 {
            stride,
            dim,
            hi,
            lo,
        }
    }

    /// Query tokens padded to whole B tiles (the maxima buffer length).
    fn stride(&self) -> usize {
        self.stride
    }
}

/// Folds the four stored C tiles into `maxes[v0..v0 + 32]`: rows are document
/// tokens (`valid` of them), columns query tokens. `to_sim` maps one C row to
/// f32 similarities (identity for bf16; scale for int8).
#[inline(always)]
unsafe fn fold_c(
    c: *const f32,
    valid: usize,
    maxes: *mut f32,
    mut to_sim: impl FnMut(__m512, usize) -> __m512,
) {
    for cb in 0..2 {
        let mut running = _mm512_loadu_ps(maxes.add(cb * 16));
        for rb in 0..2 {
            let rows = valid.saturating_sub(rb * 16).min(16);
            let tile = c.add((rb * 2 + cb) * 256);
            for m in 0..rows {
                let sim = to_sim(_mm512_loadu_ps(tile.add(m * 16)), rb * 16 + m);
                running = _mm512_max_ps(sim, running);
            }
        }
        _mm512_storeu_ps(maxes.add(cb * 16), running);
    }
}

/// Stores C tiles 0..4 (16 × 64 bytes each) to `c`.
#[inline(always)]
unsafe fn store_c(c: *mut f32) {
    asm!(
        "tilestored [{c0} + {s}*1], tmm0",
        "tilestored [{c1} + {s}*1], tmm1",
        "tilestored [{c2} + {s}*1], tmm2",
        "tilestored [{c3} + {s}*1], tmm3",
        c0 = in(reg) c,
        c1 = in(reg) c.add(256),
        c2 = in(reg) c.add(512),
        c3 = in(reg) c.add(768),
        s = in(reg) 64usize,
        options(nostack, preserves_flags)
    );
}

/// Writes `maxes[i] = max_j ⟨q_i, d_j⟩` for every query token, bf16 document.
///
/// # Safety
/// AMX must be usable and `state` created on this thread; `doc` is a
/// non-empty whole number of `q.dim`-wide rows, `q.dim % 32 == 0`,
/// `maxes.len() >= q.stride()`.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn bf16_doc_maxes(state: &mut TileState, q: &PackedBf16, doc: &[u16], maxes: &mut [f32]) {
    let dim = q.dim;
    let n_tok = doc.len() / dim;
    let row_bytes = dim * 2;
    let q_row_bytes = q.stride * 4;
    maxes[..q.stride].fill(f32::NEG_INFINITY);
    let mut t0 = 0;
    while t0 < n_tok {
        let valid = (n_tok - t0).min(DBLOCK);
        let block = (doc.as_ptr() as *const u8).add(t0 * row_bytes);
        let a = if valid == DBLOCK {
            block
        } else {
            state.padded(block, valid, row_bytes)
        };
        for v0 in (0..q.stride).step_by(QBLOCK) {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem, preserves_flags)
            );
            for kb in 0..dim / 32 {
                let a0 = a.add(kb * 64);
                let a1 = a0.add(16 * row_bytes);
                let b_off = (kb * 16 * q.stride + v0) * 2;
                let hi = q.hi.as_ptr().add(b_off) as *const u8;
                let lo = q.lo.as_ptr().add(b_off) as *const u8;
                asm!(
                    "tileloadd tmm4, [{a0} + {ars}*1]",
                    "tileloadd tmm5, [{a1} + {ars}*1]",
                    "tileloadd tmm6, [{h0} + {qs}*1]",
                    "tileloadd tmm7, [{h1} + {qs}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "tileloadd tmm6, [{l0} + {qs}*1]",
                    "tileloadd tmm7, [{l1} + {qs}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    h0 = in(reg) hi,
                    h1 = in(reg) hi.add(64),
                    l0 = in(reg) lo,
                    l1 = in(reg) lo.add(64),
                    ars = in(reg) row_bytes,
                    qs = in(reg) q_row_bytes,
                    options(nostack, readonly, preserves_flags)
                );
            }
            store_c(state.c.as_mut_ptr());
            fold_c(
                state.c.as_ptr(),
                valid,
                maxes.as_mut_ptr().add(v0),
                |row, _| row,
            );
        }
        t0 += valid;
    }
}

/// Writes `maxes[i] = max_j fl(fl(⟨cq_i, cd_j⟩) · sd_j)` for every query token.
///
/// # Safety
/// AMX must be usable and `state` created on this thread; `q` packed with
/// groups of 4 and a stride that is a multiple of 32; `codes.len() ==
/// scales.len() * q.dim`, `q.dim % 64 == 0`, `maxes.len() >= q.stride`.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn int8_doc_maxes(
    state: &mut TileState,
    q: &PackedI8<i8>,
    codes: &[i8],
    scales: &[f32],
    maxes: &mut [f32],
) {
    let dim = q.dim;
    let n_tok = scales.len();
    let q_row_bytes = q.stride * 4;
    maxes[..q.stride].fill(f32::NEG_INFINITY);
    let mut t0 = 0;
    while t0 < n_tok {
        let valid = (n_tok - t0).min(DBLOCK);
        let block = (codes.as_ptr() as *const u8).add(t0 * dim);
        let a = if valid == DBLOCK {
            block
        } else {
            state.padded(block, valid, dim)
        };
        let block_scales = scales.as_ptr().add(t0);
        for v0 in (0..q.stride).step_by(QBLOCK) {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem, preserves_flags)
            );
            for kb in 0..dim / 64 {
                let a0 = a.add(kb * 64);
                let a1 = a0.add(16 * dim);
                let b = q.data.as_ptr().add((kb * 16 * q.stride + v0) * 4) as *const u8;
                asm!(
                    "tileloadd tmm4, [{a0} + {ars}*1]",
                    "tileloadd tmm5, [{a1} + {ars}*1]",
                    "tileloadd tmm6, [{b0} + {qs}*1]",
                    "tileloadd tmm7, [{b1} + {qs}*1]",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    b0 = in(reg) b,
                    b1 = in(reg) b.add(64),
                    ars = in(reg) dim,
                    qs = in(reg) q_row_bytes,
                    options(nostack, readonly, preserves_flags)
                );
            }
            store_c(state.c.as_mut_ptr());
            fold_c(
                state.c.as_ptr(),
                valid,
                maxes.as_mut_ptr().add(v0),
                |row, m| {
                    let dots = _mm512_cvtepi32_ps(_mm512_castps_si512(row));
                    _mm512_mul_ps(dots, _mm512_set1_ps(*block_scales.add(m)))
                },
            );
        }
        t0 += valid;
    }
}

/// Scores bfloat16 documents with `tdpbf16ps` tiles (`q.dim % 32 == 0`).
fn score_bf16(
    queries: &PreparedQueries,
    docs: &DocSet<'_, half::bf16>,
    options: ScoreOptions<'_>,
) -> Vec<f32> {
    let packed = PackedBf16::new(queries);
    drive(
        docs.len(),
        &queries.segments,
        packed.stride(),
        options.zero_floor,
        TileState::new,
        |state, i, maxes| {
            let doc = half::bf16::as_bits(docs.doc(i));
            // SAFETY: the table holds this kernel only where AMX is usable
            // (CPUID, XCR0 and the OS permission); `state` configured this
            // thread's tiles; the caller checked `bf16_applies(dim)`; `doc` is
            // a whole number of `dim`-wide rows; `maxes` has `stride` entries.
            unsafe { bf16_doc_maxes(state, &packed, doc, maxes) }
        },
    )
}

/// Scores int8 documents with `tdpbssd` tiles where the width allows
/// (`dim % 64 == 0`), else with the AVX-512 kernel (`VNNI` or BW).
fn int8_run<const VNNI: bool>(job: Int8Job<'_>) -> Vec<f32> {
    use super::avx512::reduced::{INT8_BW, INT8_VNNI};
    let Int8Job {
        queries,
        docs,
        options,
    } = job;
    if !int8_applies(queries.dim) {
        return if VNNI {
            (INT8_VNNI.run)(job)
        } else {
            (INT8_BW.run)(job)
        };
    }
    let packed = PackedI8::new_padded(queries, 4, |c| c, false, QBLOCK, None);
    drive(
        docs.len(),
        &queries.segments,
        packed.stride,
        options.zero_floor,
        TileState::new,
        |state, i, maxes| {
            // SAFETY: the table holds this kernel only where AMX is usable
            // (CPUID, XCR0 and the OS permission); `state` configured this
            // thread's tiles; `dim % 64 == 0` (checked above); codes and
            // scales come from validated `Int8Docs`.
            unsafe { int8_doc_maxes(state, &packed, docs.codes.doc(i), docs.scales.doc(i), maxes) };
            job.apply_query_scales(maxes);
        },
    )
}

/// The bfloat16 tile kernel.
const BF16_TILES: HalfTiles = HalfTiles {
    applies: bf16_applies,
    run: score_bf16,
    name: "amx: tdpbf16ps tiles, query split hi+lo (dim % 32 == 0)",
};

/// The `amx` kernel's table: the AVX-512 one, with tiles for bfloat16 and
/// int8 documents where the OS grants tile data (else it says so and runs
/// the AVX-512 kernels).
pub(crate) fn table(cpu: &Cpu, env: &Env) -> KernelTable {
    let avx512 = super::avx512::table(cpu, env);
    if !amx_permission() {
        return KernelTable {
            kernel: Kernel::Amx,
            int8: Int8Kernel {
                name: "avx512 (AMX tile permission denied by the OS)",
                ..avx512.int8
            },
            ..avx512
        };
    }
    let int8_name = if cpu.avx512vnni {
        "amx: tdpbssd tiles (dim % 64 == 0), else avx512 vnni vpdpbusd"
    } else {
        "amx: tdpbssd tiles (dim % 64 == 0), else avx512 vpmaddwd"
    };
    KernelTable {
        kernel: Kernel::Amx,
        bf16_tiles: Some(BF16_TILES),
        int8: Int8Kernel {
            id: "amx",
            run: if cpu.avx512vnni {
                int8_run::<true>
            } else {
                int8_run::<false>
            },
            name: int8_name,
        },
        int8_alternatives: if cpu.avx512vnni {
            &[
                super::avx512::reduced::INT8_VNNI,
                super::avx512::reduced::INT8_BW,
            ]
        } else {
            &[super::avx512::reduced::INT8_BW]
        },
        ..avx512
    }
}
