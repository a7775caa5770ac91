//! Read connections a server reuses across requests: SQLite connections
//! are cheap to keep and dear to open per request, and not `Sync`, so each
//! request borrows one (opening another only when all are in use) and puts
//! it back.

use std::sync::Mutex;

/// Idle read connections of type `T`.
pub struct Readers<T> {
    idle: Mutex<Vec<T>>,
}

impl<T> Default for Readers<T> {
    fn default() -> Readers<T> {
        Readers {
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Readers<T> {
    /// Runs `f` on an idle connection, or on one `open` makes; the
    /// connection is kept for the next request afterwards.
    pub fn with<R, E>(
        &self,
        open: impl FnOnce() -> Result<T, E>,
        f: impl FnOnce(&T) -> Result<R, E>,
    ) -> Result<R, E> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reader = match pooled {
            Some(r) => r,
            None => open()?,
        };
        let out = f(&reader);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(reader);
        }
        out
    }
}
