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
use crate::reduced::{HalfFormat, Int8Job};

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

/// The bf16 screen's kernels (`float::screen`).
#[derive(Clone, Copy, Debug)]
pub struct ScreenKernel {
    pub(crate) f32: ScreenF32Fn,
    pub(crate) f16: ScreenHalfFn,
    pub(crate) bf16: ScreenHalfFn,
    /// Query vectors the kernel screens at a time (the query layout's blocks).
    pub block_vectors: usize,
    /// The throughput probe of the screen's dot-product instruction.
    pub(crate) dot_peak: unsafe fn(usize) -> f32,
    /// What it is, for `maxsim.info()`.
    pub name: &'static str,
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
    /// The bf16 screen, where this CPU can run it with this family.
    pub screen: Option<ScreenKernel>,
    /// Whether the scoring entry points use [`KernelTable::screen`]: only
    /// where `vdpbf16ps` doubles the FMA rate (AMD Zen 4/5), or as
    /// `MAXSIM_BF16_SCREEN` says. It never changes a result.
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
        use crate::float::screen::min_screen_tokens;
        let mut float = self.float.name.to_string();
        let mut f16 = self.f16.name.to_string();
        let mut bf16 = self.bf16.name.to_string();
        if let Some(screen) = self.screen_in_use() {
            float = format!("{}, exact refine", screen.name);
            f16 = format!(
                "{f16}; {} + exact refine from {} query tokens",
                screen.name,
                min_screen_tokens(Some(HalfFormat::F16))
            );
            bf16 = format!("{} in place + exact refine (even dim)", screen.name);
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
