//! Run-time kernel selection: one table of function pointers per kernel family.
//!
//! Each ISA folder under `arch/` builds a [`KernelTable`] from the CPU's
//! features ([`cpu`]): the float, float16, bfloat16, int8, Hamming and
//! quantization kernels it runs, their tile shapes, whether the bf16 screen
//! is on, and a description of each for `maxsim.info()`. A table is built
//! once per process and cached; every entry point reads the table of the
//! kernel in force once per call, so a whole call runs one kernel, and what
//! `info()` prints is what runs.
//!
//! The kernel in force is the best one this CPU supports, unless
//! `MAXSIM_KERNEL` or [`set_kernel`] forces another; forcing one the CPU
//! lacks is an error rather than a crash. AMX is never chosen by default
//! (see [`Kernel::is_verified`]).
//!
//! Adding an ISA: a folder under `arch/` whose `mod.rs` returns its table, a
//! [`Kernel`] variant, one line in `build`, and its feature probe in [`cpu`].

pub mod cpu;
mod hamming;
mod table;

pub use cpu::{amx_permission, run_or_skip, Cpu, Env};
pub use hamming::HammingImpl;
pub use table::{
    CentroidKernel, FloatKernel, HalfKernel, HalfTiles, Int8Kernel, KernelTable, PeakProbe,
    ScreenKernel, TileShape,
};

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

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
        let cpu = Cpu::get();
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => cpu.avx2_fma,
            Kernel::Avx512 => cpu.avx512,
            Kernel::Amx => cpu.avx512 && cpu.amx,
            Kernel::Neon => cpu.neon,
        }
    }

    /// Whether the kernel has passed the test suite on real hardware, which
    /// default selection requires. The AMX kernels have not: no machine the
    /// project is tested on has AMX, so they run only when forced
    /// (`MAXSIM_KERNEL=amx`), until `benches/device_check.sh` passes on one.
    pub fn is_verified(self) -> bool {
        self != Kernel::Amx
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

/// The table of `kernel` on this CPU.
///
/// One line per kernel family: this is the only place a kernel is chosen.
fn build(kernel: Kernel, cpu: &Cpu, env: &Env) -> KernelTable {
    // Only the x86-64 tables read the environment (MAXSIM_BF16_SCREEN).
    let _ = env;
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx => crate::arch::x86_64::amx::table(cpu, env),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => crate::arch::x86_64::avx512::table(cpu, env),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => crate::arch::x86_64::avx2::table(cpu),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => crate::arch::aarch64::neon::table(cpu),
        // Kernels of another architecture are never supported, so never built.
        _ => crate::arch::portable::table(cpu),
    }
}

/// The table of `kernel`, built on first use; `Unsupported` when this CPU
/// cannot run it.
pub fn table(kernel: Kernel) -> Result<&'static KernelTable> {
    static TABLES: [OnceLock<KernelTable>; 5] = [const { OnceLock::new() }; 5];
    check_supported(kernel, "kernel")?;
    let slot = &TABLES[kernel.id() as usize - 1];
    Ok(slot.get_or_init(|| build(kernel, Cpu::get(), Env::get())))
}

/// The table of the kernel in force.
pub fn selected_table() -> Result<&'static KernelTable> {
    table(selected_kernel()?)
}

/// The table whose screen the screened entry points run (the `_screened`
/// functions, for tests and benchmarks that force the screen): the most
/// preferred verified kernel this CPU supports that has one; `Unsupported`
/// where none does.
pub(crate) fn screen_table() -> Result<&'static KernelTable> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_verified() && k.is_supported())
        .filter_map(|k| table(k).ok())
        .find(|t| t.screen.is_some())
        .ok_or_else(|| {
            Error::Unsupported("the bf16 screen needs AVX-512F/BW/VL and AVX512_BF16".into())
        })
}

/// The best verified kernel this CPU supports, ignoring any override.
pub fn detect_best() -> Kernel {
    Kernel::ALL
        .into_iter()
        .find(|k| k.is_verified() && k.is_supported())
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
    let kernel = match &Env::get().kernel {
        Some(name) => {
            let kernel = Kernel::parse(name)
                .map_err(|e| Error::InvalidArgument(format!("MAXSIM_KERNEL: {e}")))?;
            check_supported(kernel, "MAXSIM_KERNEL")?;
            kernel
        }
        None => detect_best(),
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
    Cpu::get().feature_names()
}

/// The names in `MAXSIM_REQUIRE_ISA` that this machine lacks: each must be a
/// supported kernel (`avx512`, `amx`, ...) or a feature `cpu_features` lists.
pub fn missing_required_isas() -> Vec<String> {
    let features = cpu_features();
    Env::get()
        .require_isa
        .iter()
        .filter(|name| {
            let kernel = Kernel::parse(name).is_ok_and(|k| k.is_supported());
            !(kernel || features.contains(&name.as_str()))
        })
        .cloned()
        .collect()
}

/// The state of AMX on this machine, for `maxsim.info()`.
pub fn amx_status() -> &'static str {
    if !Kernel::Amx.is_supported() {
        "absent"
    } else if !amx_permission() {
        "present, but the OS denied tile permission"
    } else if selected_kernel() == Ok(Kernel::Amx) {
        "in use (forced; not yet verified on real hardware)"
    } else {
        "present, unverified: off by default (MAXSIM_KERNEL=amx to opt in)"
    }
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

    #[test]
    fn required_isas_are_present() {
        let missing = missing_required_isas();
        assert!(
            missing.is_empty(),
            "MAXSIM_REQUIRE_ISA names {missing:?}, which this machine lacks (features: {:?})",
            cpu_features()
        );
    }

    #[test]
    fn amx_is_never_the_default() {
        assert_ne!(detect_best(), Kernel::Amx);
    }

    #[test]
    fn every_supported_kernel_has_a_table_of_its_own() {
        for kernel in Kernel::ALL {
            match table(kernel) {
                Ok(t) => {
                    assert!(kernel.is_supported());
                    assert_eq!(t.kernel, kernel);
                    assert!(t.describe().iter().all(|(_, text)| !text.is_empty()));
                }
                Err(Error::Unsupported(_)) => assert!(!kernel.is_supported()),
                Err(e) => panic!("{kernel:?}: {e}"),
            }
        }
    }
}
