//! The kernel table: what one kernel family runs for each kind of work.

use super::Kernel;
use crate::binary::HammingImpl;
use crate::docs::DocSet;
use crate::float::argmax::{ArgmaxFn, DotsFn};
use crate::float::screen::{Scratch, ScreenQuery};
use crate::float::{PreparedQueries, ScoreOptions};
use crate::reduced::half::FromF32Fn;
use crate::reduced::half_blocked::HalfDocFn;
use crate::reduced::quantize::RowsFn;
use crate::reduced::HalfFormat;
use crate::reduced::Int8Job;

/// Writes the best similarity of every prepared query token against one
/// float32 document.
pub(crate) type DocMaxesFn = unsafe fn(&PreparedQueries, &[f32], &mut [f32]);

/// The float32 kernel.
#[derive(Clone, Copy, Debug)]
pub struct FloatKernel {
    pub(crate) doc_maxes: DocMaxesFn,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

/// The centroid kernels (`float::argmax`): nearest-centroid assignment and
/// centroid scores, for the index.
#[derive(Clone, Copy, Debug)]
pub struct CentroidKernel {
    pub(crate) argmax: ArgmaxFn,
    pub(crate) dots: DotsFn,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

/// How a register-blocked kernel tiles the query: `lanes` query tokens per
/// vector, `r` vectors per tile. The query layout must be built for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileShape {
    /// Query tokens per vector.
    pub lanes: usize,
    /// Query vectors per tile.
    pub r: usize,
}

/// The kernels for one 16-bit document format.
#[derive(Clone, Copy, Debug)]
pub struct HalfKernel {
    pub(crate) doc_maxes: HalfDocFn,
    /// The tile shape `doc_maxes` was instantiated with.
    pub shape: TileShape,
    /// float32 → this format, round to nearest even (`maxsim.quantize`).
    pub(crate) narrow: FromF32Fn,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

/// A whole-call tile kernel for bfloat16 documents (AMX), used instead of the
/// blocked kernel for the widths it takes.
#[derive(Clone, Copy, Debug)]
pub struct HalfTiles {
    /// Whether the tiles take documents of this width.
    pub(crate) applies: fn(usize) -> bool,
    pub(crate) run: fn(&PreparedQueries, &DocSet<'_, half::bf16>, ScoreOptions<'_>) -> Vec<f32>,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

/// One implementation of int8 scoring.
#[derive(Clone, Copy, Debug)]
pub struct Int8Kernel {
    /// Its name for tests that force it (`maxsim_int8_batch_variant`).
    pub id: &'static str,
    pub(crate) run: fn(Int8Job<'_>) -> Vec<f32>,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

/// Screens one float32 document (`float::screen`); `false` when the
/// document is outside the bound and the plain kernel must score it.
pub(crate) type ScreenF32Fn =
    unsafe fn(&PreparedQueries, &ScreenQuery, &[f32], &mut Scratch, &mut [f32]) -> bool;
/// As [`ScreenF32Fn`] for a 16-bit document, as raw bits.
pub(crate) type ScreenHalfFn =
    unsafe fn(&PreparedQueries, &ScreenQuery, &[u16], &mut Scratch, &mut [f32]) -> bool;

/// What a screen's low-precision dot products are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScreenKind {
    /// AVX512_BF16 `vdpbf16ps` on bfloat16 pairs (`float::screen`).
    Bf16,
    /// AVX2 `vpmaddwd` on int16 codes (`float::screen_i16`).
    Int16,
}

impl ScreenKind {
    /// The name `maxsim.float_path()` reports while this screen runs.
    pub fn path(self) -> &'static str {
        match self {
            ScreenKind::Bf16 => "bf16-screen",
            ScreenKind::Int16 => "int16-screen",
        }
    }
}

/// A screen's kernels (`float::screen`): low-precision dot products that
/// choose which float32 dot products to compute, so results stay bitwise
/// those of the table's float kernels.
#[derive(Clone, Copy, Debug)]
pub struct ScreenKernel {
    /// Its dot products.
    pub kind: ScreenKind,
    /// Builds the screen's query side, or `None` where its bound does not
    /// apply to these queries (non-finite or huge values).
    pub(crate) prepare: fn(&PreparedQueries) -> Option<ScreenQuery>,
    pub(crate) f32: ScreenF32Fn,
    pub(crate) f16: ScreenHalfFn,
    pub(crate) bf16: ScreenHalfFn,
    /// Whether `bf16` needs an even width (it reads a token's values in pairs, in place).
    pub bf16_even_dim: bool,
    /// Query tokens (over all queries of a call) from which the entry points
    /// screen float32, float16 and bfloat16 documents: below, the plain
    /// kernel is faster (the screen converts each document per call).
    pub min_tokens: [usize; 3],
    /// The throughput probe of the screen's dot-product instruction, and the
    /// flops one of its steps does (per chain).
    pub(crate) dot_peak: unsafe fn(usize) -> f32,
    pub(crate) dot_flops: usize,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
}

impl ScreenKernel {
    /// Query tokens from which documents stored as `format` (`None`:
    /// float32) are screened.
    pub fn min_screen_tokens(&self, format: Option<HalfFormat>) -> usize {
        match format {
            None => self.min_tokens[0],
            Some(HalfFormat::F16) => self.min_tokens[1],
            Some(HalfFormat::Bf16) => self.min_tokens[2],
        }
    }
}

/// A throughput probe: independent FMA chains on the kernel's vectors.
#[derive(Clone, Copy, Debug)]
pub struct PeakProbe {
    /// Runs the chains for the given number of steps.
    pub(crate) run: unsafe fn(usize) -> f32,
    /// f32 lanes per vector.
    pub lanes: usize,
}

/// Everything one kernel family runs, built for this CPU by its `arch` folder.
#[derive(Clone, Debug)]
pub struct KernelTable {
    /// The family.
    pub kernel: Kernel,
    /// float32 documents.
    pub float: FloatKernel,
    /// Token rows against centroids (the index's assignment and probing).
    pub centroids: CentroidKernel,
    /// The screen, where this CPU can run one with this family.
    pub screen: Option<ScreenKernel>,
    /// Other screens this CPU runs with this family, for tests and
    /// benchmarks that force each (`dispatch::screens`).
    pub screen_alternatives: &'static [ScreenKernel],
    /// Whether the scoring entry points use [`KernelTable::screen`]: where
    /// its dot product doubles the FMA rate (see each family's `table`), or
    /// as `MAXSIM_BF16_SCREEN` says. It never changes a result.
    pub screen_on: bool,
    /// float16 documents.
    pub f16: HalfKernel,
    /// bfloat16 documents.
    pub bf16: HalfKernel,
    /// Tiles that score bfloat16 documents instead of `bf16`, where they apply.
    pub bf16_tiles: Option<HalfTiles>,
    /// int8 documents.
    pub int8: Int8Kernel,
    /// Other int8 implementations this CPU runs, for tests that force each.
    pub int8_alternatives: &'static [Int8Kernel],
    /// Hamming distances.
    pub hamming: HammingImpl,
    /// The int8 quantizer's row loop.
    pub(crate) quantize_rows: RowsFn,
    /// Which build of the quantizer, for `maxsim.info()`.
    pub quantize_name: &'static str,
    /// The FMA throughput probe (`peak`), where the family has fixed-width vectors.
    pub fma_peak: Option<PeakProbe>,
}

impl KernelTable {
    /// The kernels for 16-bit documents of `format`.
    pub fn half(&self, format: HalfFormat) -> &HalfKernel {
        match format {
            HalfFormat::F16 => &self.f16,
            HalfFormat::Bf16 => &self.bf16,
        }
    }

    /// The screen, when the scoring entry points use it.
    pub fn screen_in_use(&self) -> Option<&ScreenKernel> {
        self.screen.as_ref().filter(|_| self.screen_on)
    }

    /// What runs for each kind of work, as `maxsim.info()` prints it.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut float = self.float.name.to_string();
        let mut f16 = self.f16.name.to_string();
        let mut bf16 = self.bf16.name.to_string();
        if let Some(screen) = self.screen_in_use() {
            let from =
                |plain: &str, format: Option<HalfFormat>| match screen.min_screen_tokens(format) {
                    0 | 1 => format!("{}, exact refine", screen.name),
                    n => format!(
                        "{plain}; {} + exact refine from {n} query tokens",
                        screen.name
                    ),
                };
            float = from(&float, None);
            f16 = from(&f16, Some(HalfFormat::F16));
            bf16 = if screen.bf16_even_dim {
                format!("{} in place + exact refine (even dim)", screen.name)
            } else {
                from(&bf16, Some(HalfFormat::Bf16))
            };
        }
        if let Some(tiles) = &self.bf16_tiles {
            bf16 = format!("{}, else {bf16}", tiles.name);
        }
        vec![
            ("float32", float),
            ("centroids", self.centroids.name.to_string()),
            ("float16", f16),
            ("bfloat16", bf16),
            ("int8", self.int8.name.to_string()),
            ("hamming", self.hamming.name().to_string()),
            ("quantize", self.quantize_name.to_string()),
        ]
    }
}
