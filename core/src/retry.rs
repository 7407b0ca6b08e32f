//! When to send again: bounded exponential backoff with jitter, and Box's `Retry-After`.

use http::header::{DATE, RETRY_AFTER};
use http::HeaderMap;
use std::time::{Duration, SystemTime};

/// Retry limits. Every number is a bound: nothing retries forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one request after 429, 5xx or a transport failure (default 5).
    pub max_retries: u32,
    /// First backoff (default 1 s); doubles each retry.
    pub initial_backoff: Duration,
    /// Largest backoff (default 30 s).
    pub max_backoff: Duration,
    /// Largest `Retry-After` obeyed; longer ones are cut to this (default 120 s).
    pub max_retry_after: Duration,
    /// How long the commit may keep answering 202, from the first commit (default 15 min).
    pub commit_timeout: Duration,
    /// Commits retried after a `parts_mismatch` 400, which Box can answer while the last parts
    /// settle (default 3).
    pub parts_mismatch_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            commit_timeout: Duration::from_secs(15 * 60),
            parts_mismatch_retries: 3,
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1-based): `initial × 2^(retry-1)`, capped, times a
    /// jitter factor in [0.5, 1.5).
    #[must_use]
    pub fn backoff(&self, retry: u32, jitter: &mut Jitter) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let base = self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff);
        base.mul_f64(0.5 + jitter.next_unit())
    }
}

/// A small deterministic generator for backoff jitter (splitmix64): the core reads no randomness
/// from the system, the driver seeds it.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay a `Retry-After` header asks for: integer seconds, or an HTTP date taken relative to
/// the answer's own `Date` header (so neither clock skew nor a clock read is involved). `None` when
/// absent or unusable.
#[must_use]
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let date: SystemTime =
        headers.get(DATE).and_then(|d| d.to_str().ok()).and_then(|d| httpdate::parse_http_date(d).ok())?;
    Some(at.duration_since(date).unwrap_or(Duration::ZERO))
}
