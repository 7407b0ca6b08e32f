//! Part buffers reused across parts, so a big upload allocates (and zeroes) its buffers once.

use bytes::Bytes;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Buffers for the parts a driver reads. A part's bytes go to the machine and the HTTP client as
/// [`Bytes`] that own the buffer ([`wrap`](Self::wrap)); when the last view is dropped, the buffer
/// comes back here. Keeping `parts in flight + 1` buffers holds resident memory at the parts in
/// flight, and no buffer is zeroed again: freshly allocated multi-megabyte buffers are zeroed
/// (or faulted in) for every part, and buffers freed on other threads tend to stay resident in
/// the allocator's per-thread arenas.
///
/// ```
/// use box_upload_core::PartBuffers;
/// let pool = PartBuffers::new(2);
/// let mut buf = pool.take(1 << 20);
/// buf[0] = 1;
/// let part = pool.wrap(buf);
/// drop(part); // the buffer goes back to the pool
/// assert_eq!(pool.free(), 1);
/// assert_eq!(pool.take(1 << 20).len(), 1 << 20);
/// ```
#[derive(Clone)]
pub struct PartBuffers(Arc<Mutex<Pool>>);

struct Pool {
    free: Vec<Vec<u8>>,
    keep: usize,
}

/// Buffers shorter than this (the end-of-file probe, tiny last parts) are not pooled.
const POOLED_MIN: usize = 64 * 1024;

impl PartBuffers {
    /// A pool that keeps at most `keep` free buffers.
    #[must_use]
    pub fn new(keep: usize) -> Self {
        Self(Arc::new(Mutex::new(Pool { free: Vec::new(), keep })))
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A buffer of `len` bytes: a free one when one is large enough (its contents are whatever
    /// an earlier part left; a reader overwrites them), else a new zeroed one.
    #[must_use]
    pub fn take(&self, len: usize) -> Vec<u8> {
        let reused = if len >= POOLED_MIN {
            let mut pool = self.lock();
            let fit = pool.free.iter().position(|b| b.capacity() >= len);
            fit.map(|i| pool.free.swap_remove(i))
        } else {
            None
        };
        let mut buf = reused.unwrap_or_default();
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            // Only the bytes never written before are zeroed.
            buf.resize(len, 0);
        }
        buf
    }

    /// `buf` as [`Bytes`] that give the buffer back to the pool when the last view is dropped.
    #[must_use]
    pub fn wrap(&self, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < POOLED_MIN {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Pooled { buf, pool: self.clone() })
    }

    /// How many free buffers the pool holds.
    #[must_use]
    pub fn free(&self) -> usize {
        self.lock().free.len()
    }

    fn give_back(&self, buf: Vec<u8>) {
        let mut pool = self.lock();
        if pool.free.len() < pool.keep {
            pool.free.push(buf);
        }
    }
}

impl fmt::Debug for PartBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = self.lock();
        f.debug_struct("PartBuffers").field("free", &pool.free.len()).field("keep", &pool.keep).finish()
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: PartBuffers,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_without_zeroing_and_bounds_what_it_keeps() {
        let pool = PartBuffers::new(1);
        let mut a = pool.take(1 << 20);
        a.fill(7);
        let ptr = a.as_ptr();
        let a = pool.wrap(a);
        let b = pool.wrap(pool.take(1 << 20));
        drop(a);
        drop(b); // the pool keeps one: this one is freed
        assert_eq!(pool.free(), 1);
        let again = pool.take(1 << 19);
        assert_eq!(again.as_ptr(), ptr, "the free buffer is reused");
        assert_eq!(again.len(), 1 << 19);
        assert!(again.iter().all(|&x| x == 7), "a reused buffer is not zeroed");
        // A request larger than every free buffer gets a new one, zeroed.
        let big = pool.take(2 << 20);
        assert!(big.iter().all(|&x| x == 0));
        // Small buffers are never pooled.
        drop(pool.wrap(pool.take(100)));
        assert_eq!(pool.free(), 0);
    }

    #[test]
    fn a_shorter_buffer_grows_and_zeroes_only_the_new_bytes() {
        let pool = PartBuffers::new(2);
        let mut small = pool.take(1 << 20);
        small.fill(1);
        small.truncate(100 * 1024); // as a short last part leaves it
        drop(pool.wrap(small));
        let grown = pool.take(1 << 20);
        assert_eq!(grown.len(), 1 << 20);
        assert!(grown[..100 * 1024].iter().all(|&x| x == 1));
        assert!(grown[100 * 1024..].iter().all(|&x| x == 0));
    }
}
