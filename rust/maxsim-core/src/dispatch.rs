//! Run-time kernel selection.
//!
//! The best kernel this CPU supports is detected once and cached in an atomic;
//! every entry point reads it once per call and resolves its function pointer
//! from it, so a whole scoring call runs one kernel. `MAXSIM_KERNEL` (read on
//! first use) or [`set_kernel`] force a path; forcing one the CPU lacks is an
//! error rather than a crash.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// A family of kernels, one per instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 + FMA (+ F16C where the reduced-precision kernels need it).
    Avx2,
    /// x86-64 AVX-512F (+ BW/VL/VNNI/VPOPCNTDQ where the binary and int8 kernels need them).
    Avx512,
    /// x86-64 AVX-512 plus AMX tiles for the reduced-precision kernels;
    /// float32 scoring runs the AVX-512 kernels.
    Amx,
    /// aarch64 NEON (Advanced SIMD).
    Neon,
}

impl Kernel {
    /// Every kernel, in order of preference (best first).
    pub const ALL: [Kernel; 5] = [
        Kernel::Amx,
        Kernel::Avx512,
        Kernel::Avx2,
        Kernel::Neon,
        Kernel::Scalar,
    ];

    /// The name used by `MAXSIM_KERNEL` and `maxsim.info()`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Amx => "amx",
            Kernel::Neon => "neon",
        }
    }

    /// Parses a kernel name (case-insensitive).
    pub fn parse(name: &str) -> Result<Kernel> {
        let lower = name.trim().to_ascii_lowercase();
        Kernel::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown kernel {name:?}; expected one of scalar, avx2, avx512, amx, neon"
                ))
            })
    }

    /// Whether this CPU (and OS) can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => has_avx2_fma(),
            Kernel::Avx512 => has_avx512(),
            Kernel::Amx => has_avx512() && has_amx(),
            Kernel::Neon => has_neon(),
        }
    }

    fn id(self) -> u8 {
        match self {
            Kernel::Scalar => 1,
            Kernel::Avx2 => 2,
            Kernel::Avx512 => 3,
            Kernel::Amx => 4,
            Kernel::Neon => 5,
        }
    }

    fn from_id(id: u8) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.id() == id)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx2_fma() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && has_avx2_fma()
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}
#[cfg(not(target_arch = "aarch64"))]
fn has_neon() -> bool {
    false
}

/// AMX-TILE, AMX-BF16 and AMX-INT8 reported by CPUID and tile state enabled in XCR0.
/// (Linux additionally requires a per-process permission request, which the
/// AMX kernels make before first use.)
#[cfg(target_arch = "x86_64")]
pub fn has_amx() -> bool {
    // SAFETY: CPUID is available on every x86-64 CPU; leaf 7 is only read when
    // the maximum leaf says it exists. XGETBV is only executed when CPUID reports
    // OSXSAVE (leaf 1 ECX bit 27), which is the documented precondition.
    unsafe {
        use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        if __cpuid(0).eax < 7 {
            return false;
        }
        let leaf7 = __cpuid_count(7, 0);
        let amx_bf16 = leaf7.edx & (1 << 22) != 0;
        let amx_tile = leaf7.edx & (1 << 24) != 0;
        let amx_int8 = leaf7.edx & (1 << 25) != 0;
        let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
        if !(amx_bf16 && amx_tile && amx_int8 && osxsave) {
            return false;
        }
        // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA).
        let xcr0 = _xgetbv(0);
        xcr0 & (0b11 << 17) == (0b11 << 17)
    }
}
#[cfg(not(target_arch = "x86_64"))]
pub fn has_amx() -> bool {
    false
}

/// The best kernel this CPU supports, ignoring any override.
pub fn detect_best() -> Kernel {
    Kernel::ALL
        .into_iter()
        .find(|k| k.is_supported())
        .unwrap_or(Kernel::Scalar)
}

/// 0 = not chosen yet; otherwise a `Kernel::id`.
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The kernel in force: the `MAXSIM_KERNEL` override if set (an error if
/// the CPU lacks it or the name is unknown), else the best detected one.
pub fn selected_kernel() -> Result<Kernel> {
    if let Some(kernel) = Kernel::from_id(SELECTED.load(Ordering::Relaxed)) {
        return Ok(kernel);
    }
    let kernel = match std::env::var("MAXSIM_KERNEL") {
        Ok(name) if !name.trim().is_empty() => {
            let kernel = Kernel::parse(&name)
                .map_err(|e| Error::InvalidArgument(format!("MAXSIM_KERNEL: {e}")))?;
            check_supported(kernel, "MAXSIM_KERNEL")?;
            kernel
        }
        _ => detect_best(),
    };
    SELECTED.store(kernel.id(), Ordering::Relaxed);
    Ok(kernel)
}

fn check_supported(kernel: Kernel, source: &str) -> Result<()> {
    if kernel.is_supported() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{source}: kernel {:?} is not supported by this CPU (features: {}); supported kernels: {}",
            kernel.name(),
            cpu_features().join(", "),
            Kernel::ALL
                .into_iter()
                .filter(|k| k.is_supported())
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Forces a kernel for every later call (process-wide).
pub fn set_kernel(kernel: Kernel) -> Result<()> {
    check_supported(kernel, "set_kernel")?;
    SELECTED.store(kernel.id(), Ordering::Relaxed);
    Ok(())
}

/// Names of the SIMD features relevant to maxsim that this CPU reports.
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut found: Vec<&'static str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($name) { found.push($name); })*
            };
        }
        probe!(
            "sse4.2",
            "popcnt",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512vpopcntdq",
            "avx512bf16",
            "avx512fp16"
        );
        if has_amx() {
            found.extend(["amx-tile", "amx-bf16", "amx-int8"]);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {
                $(if std::arch::is_aarch64_feature_detected!($name) { found.push($name); })*
            };
        }
        probe!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::parse(k.name()).unwrap(), k);
            assert_eq!(Kernel::parse(&k.name().to_uppercase()).unwrap(), k);
        }
        assert!(Kernel::parse("sse9").is_err());
    }

    #[test]
    fn scalar_always_supported_and_best_is_supported() {
        assert!(Kernel::Scalar.is_supported());
        assert!(detect_best().is_supported());
    }
}
