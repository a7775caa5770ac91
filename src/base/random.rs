//! Where randomness comes from. Identifiers (license, activation and
//! entitlement ids, activation keys) and request nonces take it from a
//! [`Random`] their caller hands in, so that a server under test, or a test
//! vector, can be given reproducible bytes while production takes them from
//! the operating system. Private keys always come from the OS.

use std::sync::Mutex;

/// The random source failed (or, for [`Scripted`], ran dry).
#[derive(Debug, thiserror::Error)]
#[error("the random number generator failed: {0}")]
pub struct RandomError(String);

/// A source of random bytes.
pub trait Random: Send + Sync {
    /// Fills `buf` entirely.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's random source (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
    }
}

/// Bytes given in advance, handed out in order: for tests and test vectors
/// that must reproduce an identifier. Asking for more than is left is an error.
#[derive(Debug, Default)]
pub struct Scripted {
    left: Mutex<std::collections::VecDeque<u8>>,
}

impl Scripted {
    /// A source that hands out `bytes`, then fails.
    pub fn new(bytes: impl IntoIterator<Item = u8>) -> Scripted {
        Scripted {
            left: Mutex::new(bytes.into_iter().collect()),
        }
    }
}

impl Random for Scripted {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        let mut left = self
            .left
            .lock()
            .map_err(|_| RandomError("a scripted source was poisoned".into()))?;
        if left.len() < buf.len() {
            return Err(RandomError(format!(
                "a scripted source has {} byte(s) left, {} asked for",
                left.len(),
                buf.len()
            )));
        }
        for b in buf.iter_mut() {
            *b = left.pop_front().unwrap_or_default();
        }
        Ok(())
    }
}

/// `N` fresh bytes from `source`.
pub fn bytes<const N: usize>(source: &dyn Random) -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    source.fill(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_bytes_come_in_order_and_run_dry() {
        let s = Scripted::new([1, 2, 3]);
        assert_eq!(bytes::<2>(&s).unwrap(), [1, 2]);
        assert!(bytes::<2>(&s).is_err());
        assert_eq!(bytes::<1>(&s).unwrap(), [3]);
    }

    #[test]
    fn the_os_source_fills_the_buffer() {
        let a = bytes::<32>(&OsRandom).unwrap();
        let b = bytes::<32>(&OsRandom).unwrap();
        assert_ne!(a, b);
    }
}
