//! Kernel selection, CPU features and the thread pool.

use crate::errors::to_py;
use maxsim_core::dispatch::ScreenKind;
use maxsim_core::{dispatch, peak, Kernel};
use pyo3::prelude::*;

/// Name of the kernel in force (raises if `MAXSIM_KERNEL` names one this CPU lacks).
#[pyfunction]
fn kernel() -> PyResult<&'static str> {
    dispatch::selected_kernel().map(Kernel::name).map_err(to_py)
}

/// Forces a kernel by name for the whole process.
#[pyfunction]
fn set_kernel(name: &str) -> PyResult<()> {
    let kernel = Kernel::parse(name).map_err(to_py)?;
    dispatch::set_kernel(kernel).map_err(to_py)
}

/// Kernels this CPU can run, best first (AMX included where present, though
/// default selection skips it).
#[pyfunction]
fn supported_kernels() -> Vec<&'static str> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .map(Kernel::name)
        .collect()
}

/// The best kernel this CPU supports, ignoring overrides.
#[pyfunction]
fn best_kernel() -> &'static str {
    dispatch::detect_best().name()
}

/// SIMD features relevant to maxsim that the CPU reports.
#[pyfunction]
fn cpu_features() -> Vec<&'static str> {
    dispatch::cpu_features()
}

/// How float scores are computed under the kernel in force: `"bf16-screen"`
/// (AVX512_BF16 screening, from the query sizes `kernel_paths` gives;
/// bitwise the AVX-512 results), `"int16-screen"` (AVX2 `vpmaddwd` or
/// AVX-VNNI `vpdpwssd` screening from 17 query tokens; bitwise the AVX2
/// results) or `"fp32"`.
#[pyfunction]
fn float_path() -> PyResult<&'static str> {
    let table = dispatch::selected_table().map_err(to_py)?;
    Ok(table
        .screen_in_use()
        .map_or("fp32", |screen| screen.kind.path()))
}

/// `[(work, implementation)]` of the kernel table in force (or of the kernel
/// named): what runs for float32, float16, bfloat16 and int8 documents,
/// Hamming distances and int8 quantization.
#[pyfunction]
#[pyo3(signature = (name=None))]
fn kernel_paths(name: Option<&str>) -> PyResult<Vec<(&'static str, String)>> {
    let kernel = match name {
        Some(name) => Kernel::parse(name).map_err(to_py)?,
        None => dispatch::selected_kernel().map_err(to_py)?,
    };
    Ok(dispatch::table(kernel).map_err(to_py)?.describe())
}

/// The names in `MAXSIM_REQUIRE_ISA` this machine lacks (kernels or CPU
/// features), for test runs that must not skip them.
#[pyfunction]
fn missing_required_isas() -> Vec<String> {
    dispatch::missing_required_isas()
}

/// The state of AMX on this machine: absent, present but off by default
/// (not yet verified on real hardware), denied by the OS, or in use.
#[pyfunction]
fn amx_status() -> &'static str {
    dispatch::amx_status()
}

/// Threads in the pool.
#[pyfunction]
fn num_threads() -> usize {
    maxsim_core::num_threads()
}

/// Resizes the pool (`n >= 1`).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "n: the number of threads must be at least 1, got {n}"
        )));
    }
    maxsim_core::set_num_threads(n as usize).map_err(to_py)
}

/// Measured single-thread fp32 FMA throughput (GFLOP/s) of a kernel's vectors,
/// or None for the portable kernel. Takes about a second; releases the GIL.
#[pyfunction]
fn fma_peak_gflops(py: Python<'_>, name: &str) -> PyResult<Option<f64>> {
    let kernel = Kernel::parse(name).map_err(to_py)?;
    Ok(py.detach(|| peak::fma_peak_gflops(kernel)))
}

/// Measured single-thread AVX512_BF16 `vdpbf16ps` throughput (GFLOP/s, 64
/// flops per instruction), or None unless the kernel in force scores with the
/// bf16 screen (the AVX2 int16 screen's products are not a bf16 peak, and
/// bound no floor: its float32 recompute is not counted). Takes a fraction of
/// a second; releases the GIL.
#[pyfunction]
fn bf16_dot_peak_gflops(py: Python<'_>) -> Option<f64> {
    let screen = dispatch::selected_table().ok()?.screen_in_use()?;
    if screen.kind != ScreenKind::Bf16 {
        return None;
    }
    py.detach(peak::screen_dot_peak_gflops)
}

/// Best-of-`passes` memory read bandwidth (GB/s) of `threads` threads
/// streaming a `mib`-MiB buffer (allocated for the call); releases the GIL.
#[pyfunction]
#[pyo3(signature = (threads, mib=256, passes=10))]
fn read_bandwidth_gbs(py: Python<'_>, threads: i64, mib: i64, passes: i64) -> PyResult<f64> {
    let (Ok(threads @ 1..), Ok(mib @ 1..), Ok(passes @ 1..)) = (
        usize::try_from(threads),
        usize::try_from(mib),
        usize::try_from(passes),
    ) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "threads, mib and passes must be at least 1, got {threads}, {mib}, {passes}"
        )));
    };
    py.detach(|| peak::read_bandwidth_gbs(threads, mib << 20, passes))
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "mib: a {mib} MiB buffer is too small for {threads} threads"
            ))
        })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kernel, m)?)?;
    m.add_function(wrap_pyfunction!(set_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(supported_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(best_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_features, m)?)?;
    m.add_function(wrap_pyfunction!(float_path, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_paths, m)?)?;
    m.add_function(wrap_pyfunction!(amx_status, m)?)?;
    m.add_function(wrap_pyfunction!(missing_required_isas, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(fma_peak_gflops, m)?)?;
    m.add_function(wrap_pyfunction!(bf16_dot_peak_gflops, m)?)?;
    m.add_function(wrap_pyfunction!(read_bandwidth_gbs, m)?)?;
    Ok(())
}
