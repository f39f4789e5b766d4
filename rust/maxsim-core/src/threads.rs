//! The rayon pool every parallel entry point runs on.
//!
//! Its size comes from `MAXSIM_NUM_THREADS` on first use (default: the number
//! of CPUs available to the process) and can be changed by [`set_num_threads`].
//! Work is always split so that each output value is computed by one thread
//! in a fixed order, so results do not depend on the pool size.

use crate::error::{invalid, Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex};

static POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);

fn default_threads() -> usize {
    crate::dispatch::Env::get().num_threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("maxsim-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::InvalidArgument(format!("could not start {n} threads: {e}")))
}

/// The pool, created on first use.
pub fn pool() -> Arc<ThreadPool> {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = guard.as_ref() {
        return Arc::clone(pool);
    }
    let pool = build(default_threads())
        .or_else(|_| build(1))
        .expect("a one-thread rayon pool can always be built");
    *guard = Some(Arc::clone(&pool));
    pool
}

/// Threads the pool runs.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Replaces the pool with one of `n >= 1` threads. Calls already running
/// finish on the old pool.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return invalid!("n: the number of threads must be at least 1, got 0");
    }
    let pool = build(n)?;
    *POOL.lock().unwrap_or_else(|p| p.into_inner()) = Some(pool);
    Ok(())
}

/// Runs `f` inside the pool, so rayon iterators in it use the pool's threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}
