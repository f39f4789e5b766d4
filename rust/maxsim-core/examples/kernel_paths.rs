//! Prints, for every kernel this CPU supports, what its table runs for each
//! kind of work: the paths a test run on this machine exercises.
//!
//! `cargo run --release --example kernel_paths`

fn main() {
    println!("cpu features: {}", maxsim_core::cpu_features().join(", "));
    println!("amx: {}", maxsim_core::dispatch::amx_status());
    for kernel in maxsim_core::Kernel::ALL {
        let Ok(table) = maxsim_core::dispatch::table(kernel) else {
            continue;
        };
        let default = if kernel == maxsim_core::dispatch::detect_best() {
            " (default)"
        } else {
            ""
        };
        println!("{}{default}:", kernel.name());
        for (work, path) in table.describe() {
            println!("  {work:9} {path}");
        }
    }
}
