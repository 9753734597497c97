//! Injectable faults: latency, a rate limit and outages.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Faults applied to the carrier API (submit and status; admin endpoints are never affected);
/// adjustable at runtime through [`SimHandle::set_faults`](crate::SimHandle::set_faults) or
/// `PUT /admin/faults` (a JSON merge: omitted fields keep their value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Milliseconds added to every submit and status request.
    pub latency_ms: u64,
    /// The carrier's capacity in messages per second: a token bucket over the messages of all
    /// submit requests of both APIs (one second of burst; a generic batch takes one token per
    /// message, all or none). Over it a submit gets `429` with `Retry-After` (whole seconds until
    /// the tokens would be there, at least 1) and code 20429. `None`: unlimited.
    pub rate_limit_per_sec: Option<u32>,
    /// The first this many submit requests of the simulator's life are refused with `429` and
    /// `Retry-After: 1` whatever the rate (a carrier already over its limit when our burst
    /// arrives): a test of 429 handling that does not depend on how fast the machine is.
    pub refuse_first_submits: u32,
    /// While `true`, submit and status requests get a 503.
    pub outage: bool,
    /// Submit and status requests get a 503 until this wall-clock time.
    pub outage_until: Option<DateTime<Utc>>,
}

impl Faults {
    /// Whether an outage is in force at `now`.
    pub fn outage_active(&self, now: DateTime<Utc>) -> bool {
        self.outage || self.outage_until.is_some_and(|until| now < until)
    }
}

/// One token costs this many milli-tokens (integer arithmetic only).
const MILLI: u64 = 1000;

/// A token bucket holding at most one second's worth of requests.
pub(crate) struct RateLimiter {
    inner: Mutex<Bucket>,
    /// Submit requests refused so far by [`Faults::refuse_first_submits`].
    forced: AtomicU32,
}

struct Bucket {
    rate: u32,
    milli_tokens: u64,
    last: Instant,
}

impl RateLimiter {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Bucket {
                rate: 0,
                milli_tokens: 0,
                last: Instant::now(),
            }),
            forced: AtomicU32::new(0),
        }
    }

    /// Whether this submit request is one of the first `first` (each call counts one).
    pub(crate) fn refuse_forced(&self, first: u32) -> bool {
        self.forced
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < first).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes `n` tokens (one per message) at `rate` per second, all or none; `Err(wait)` with
    /// the time until they would be there when the bucket holds fewer. A batch larger than the
    /// rate needs a full bucket. A changed rate starts from a full bucket.
    pub(crate) fn try_acquire(&self, rate: u32, n: u32, now: Instant) -> Result<(), Duration> {
        let mut b = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let capacity = u64::from(rate) * MILLI;
        if b.rate != rate {
            b.rate = rate;
            b.milli_tokens = capacity;
            b.last = now;
        }
        let elapsed_us =
            u64::try_from(now.saturating_duration_since(b.last).as_micros()).unwrap_or(u64::MAX);
        // rate tokens per second = rate * 1000 milli-tokens per 1_000_000 µs.
        let refill = elapsed_us.saturating_mul(u64::from(rate)) / 1000;
        if refill > 0 {
            b.milli_tokens = b.milli_tokens.saturating_add(refill).min(capacity);
            b.last = now;
        }
        let need = u64::from(n.max(1)) * MILLI;
        let need = need.min(capacity);
        if b.milli_tokens >= need {
            b.milli_tokens -= need;
            Ok(())
        } else {
            let missing = need - b.milli_tokens;
            // missing milli-tokens at rate * 1000 per second.
            let wait_ms = missing.div_ceil(u64::from(rate.max(1)));
            Err(Duration::from_millis(wait_ms))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn only_the_first_submits_are_refused_by_force() {
        let limiter = RateLimiter::new();
        assert!(!limiter.refuse_forced(0));
        assert!(limiter.refuse_forced(2));
        assert!(limiter.refuse_forced(2));
        assert!(!limiter.refuse_forced(2));
        assert!(!limiter.refuse_forced(2));
    }

    #[test]
    fn an_outage_lasts_until_its_deadline() {
        let now = Utc::now();
        let mut f = Faults::default();
        assert!(!f.outage_active(now));
        f.outage_until = Some(now + TimeDelta::seconds(5));
        assert!(f.outage_active(now));
        assert!(!f.outage_active(now + TimeDelta::seconds(6)));
        f.outage_until = None;
        f.outage = true;
        assert!(f.outage_active(now));
    }

    #[test]
    fn the_bucket_allows_one_second_of_burst_then_refills() {
        let r = RateLimiter::new();
        let t0 = Instant::now();
        assert_eq!(
            (0..20).filter(|_| r.try_acquire(10, 1, t0).is_ok()).count(),
            10
        );
        assert!(
            r.try_acquire(10, 1, t0 + Duration::from_millis(50))
                .is_err()
        );
        assert!(
            r.try_acquire(10, 1, t0 + Duration::from_millis(150))
                .is_ok()
        );
        assert!(
            r.try_acquire(10, 1, t0 + Duration::from_millis(160))
                .is_err()
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            (0..20)
                .filter(|_| r.try_acquire(10, 1, later).is_ok())
                .count(),
            10
        );
    }

    #[test]
    fn a_batch_takes_a_token_per_message_all_or_none_and_says_how_long_to_wait() {
        let r = RateLimiter::new();
        let t0 = Instant::now();
        assert!(r.try_acquire(100, 60, t0).is_ok());
        // 40 left: a batch of 50 waits for 10 more, 100 ms at 100/s; nothing is taken.
        assert_eq!(r.try_acquire(100, 50, t0), Err(Duration::from_millis(100)));
        assert!(r.try_acquire(100, 40, t0).is_ok());
        // Larger than the rate: needs a full bucket.
        let later = t0 + Duration::from_secs(5);
        assert!(r.try_acquire(100, 500, later).is_ok());
    }

    #[test]
    fn partial_json_fills_in_defaults() {
        let f: Faults = serde_json::from_str(r#"{"rate_limit_per_sec": 5}"#).unwrap();
        assert_eq!(f.rate_limit_per_sec, Some(5));
        assert_eq!(f.latency_ms, 0);
        assert!(!f.outage);
    }
}
