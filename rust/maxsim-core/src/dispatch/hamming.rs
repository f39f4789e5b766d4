//! The Hamming implementations, for callers that force one (tests, benches,
//! `maxsim.binary` with `impl=`); kernel tables name the one each kernel runs.

use super::{table, Cpu, Kernel};
use crate::binary::blocked::TileKernels;
use crate::error::{Error, Result};

/// One implementation of the Hamming vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HammingImpl {
    /// Plain Rust `u64::count_ones` for the baseline target (the reference).
    Portable,
    /// The same code compiled with x86-64 `POPCNT`: one `popcnt` per `u64`.
    Popcnt,
    /// AVX2 `vpshufb` nibble lookup with byte counters and `vpsadbw`.
    Avx2,
    /// AVX2 `vpshufb` of per-query-byte tables over byte-transposed codes
    /// (the `vpshufb` kernel for one to three queries and very long codes).
    Avx2Lut,
    /// AVX-512 `vpopcntq` on interleaved codes (needs AVX512F/BW/VL + VPOPCNTDQ).
    Avx512,
    /// NEON `vcntq_u8`.
    Neon,
}

/// One Hamming implementation's row in [`IMPLS`].
struct Row {
    imp: HammingImpl,
    /// Short name, for benches and diagnostics.
    name: &'static str,
    /// Whether this CPU can run it.
    supported: fn(&Cpu) -> bool,
    /// Its tile kernels; called only when `supported` holds.
    tiles: fn() -> TileKernels,
}

/// `arch::<path>::KERNELS` where the build targets `arch`, else the portable
/// kernels (never used: such an implementation is never supported there).
macro_rules! tiles_of {
    ($arch:literal, $($path:ident)::+) => {{
        #[cfg(target_arch = $arch)]
        fn tiles() -> TileKernels {
            crate::arch::$($path)::+::KERNELS
        }
        #[cfg(not(target_arch = $arch))]
        fn tiles() -> TileKernels {
            crate::arch::portable::binary::KERNELS
        }
        tiles as fn() -> TileKernels
    }};
}

/// Every Hamming implementation: the one place one is registered. A kernel
/// table names the one its kernel runs.
#[rustfmt::skip]
const IMPLS: [Row; 6] = [
    Row { imp: HammingImpl::Avx512, name: "avx512-vpopcntdq", supported: |c| c.avx512 && c.avx512vpopcntdq, tiles: tiles_of!("x86_64", x86_64::avx512::binary) },
    Row { imp: HammingImpl::Avx2Lut, name: "avx2-nibble-tables", supported: |c| c.avx2_fma, tiles: tiles_of!("x86_64", x86_64::avx2::hamming_lut) },
    Row { imp: HammingImpl::Avx2, name: "avx2-pshufb", supported: |c| c.avx2_fma, tiles: tiles_of!("x86_64", x86_64::avx2::binary) },
    Row { imp: HammingImpl::Popcnt, name: "popcnt", supported: |c| c.popcnt, tiles: tiles_of!("x86_64", portable::binary::popcnt) },
    Row { imp: HammingImpl::Neon, name: "neon-vcnt", supported: |c| c.neon, tiles: tiles_of!("aarch64", aarch64::neon::binary) },
    Row { imp: HammingImpl::Portable, name: "portable", supported: |_| true, tiles: || crate::arch::portable::binary::KERNELS },
];

impl HammingImpl {
    /// Every implementation.
    pub const ALL: [HammingImpl; IMPLS.len()] = {
        let mut all = [HammingImpl::Portable; IMPLS.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = IMPLS[i].imp;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static Row {
        IMPLS
            .iter()
            .find(|r| r.imp == self)
            .expect("every HammingImpl variant has a row in IMPLS")
    }

    /// Short name, for benches and diagnostics.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Whether this CPU can run it.
    pub fn is_supported(self) -> bool {
        (self.row().supported)(Cpu::get())
    }

    /// The implementation `kernel`'s table runs (the portable one for a
    /// kernel this CPU lacks).
    pub fn for_kernel(kernel: Kernel) -> HammingImpl {
        table(kernel).map_or(HammingImpl::Portable, |t| t.hamming)
    }

    /// The implementation of the kernel in force.
    pub fn selected() -> Result<HammingImpl> {
        Ok(super::selected_table()?.hamming)
    }

    /// Its tile kernels; `Unsupported` where this CPU cannot run it.
    pub(crate) fn tiles(self) -> Result<TileKernels> {
        if !self.is_supported() {
            return Err(Error::Unsupported(format!(
                "Hamming kernel {:?} is not supported by this CPU",
                self.name()
            )));
        }
        Ok((self.row().tiles)())
    }
}
