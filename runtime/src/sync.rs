//! The synchronization primitives the runtime's shared pieces are built on.
//!
//! Tokio's convention: every cross-task type imports `Arc`, `Mutex` and the
//! atomics from here, never from `std` directly, so `RUSTFLAGS="--cfg loom"`
//! swaps in loom's versions and the model checker can explore every
//! interleaving of the link table, the status board, the safety monitor
//! and the event log. Tokio's own channels stay outside: loom cannot run them.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// A panic while holding one of these locks can only come from a bug in a
/// few lines of bookkeeping; the data stays usable, and the panic itself is
/// reported when the cluster shuts down. Both std's and loom's `lock` return
/// std's `LockResult`, so one helper serves both.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts one more of a statistic: no other memory depends on it.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
