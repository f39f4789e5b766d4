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

impl HammingImpl {
    /// Every implementation.
    pub const ALL: [HammingImpl; 6] = [
        HammingImpl::Avx512,
        HammingImpl::Avx2Lut,
        HammingImpl::Avx2,
        HammingImpl::Popcnt,
        HammingImpl::Neon,
        HammingImpl::Portable,
    ];

    /// Short name, for benches and diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            HammingImpl::Portable => "portable",
            HammingImpl::Popcnt => "popcnt",
            HammingImpl::Avx2 => "avx2-pshufb",
            HammingImpl::Avx2Lut => "avx2-nibble-tables",
            HammingImpl::Avx512 => "avx512-vpopcntdq",
            HammingImpl::Neon => "neon-vcnt",
        }
    }

    /// Whether this CPU can run it.
    pub fn is_supported(self) -> bool {
        let cpu = Cpu::get();
        match self {
            HammingImpl::Portable => true,
            HammingImpl::Popcnt => cpu.popcnt,
            HammingImpl::Avx2 | HammingImpl::Avx2Lut => cpu.avx2_fma,
            HammingImpl::Avx512 => cpu.avx512 && cpu.avx512vpopcntdq,
            HammingImpl::Neon => cpu.neon,
        }
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
        Ok(match self {
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Popcnt => crate::arch::portable::binary::popcnt::KERNELS,
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Avx2 => crate::arch::x86_64::avx2::binary::KERNELS,
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Avx2Lut => crate::arch::x86_64::avx2::hamming_lut::KERNELS,
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Avx512 => crate::arch::x86_64::avx512::binary::KERNELS,
            #[cfg(target_arch = "aarch64")]
            HammingImpl::Neon => crate::arch::aarch64::neon::binary::KERNELS,
            // Implementations of another architecture are never supported.
            _ => crate::arch::portable::binary::KERNELS,
        })
    }
}
