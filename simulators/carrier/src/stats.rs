//! Counters for tests and benchmarks: atomics, plus a small map of callback answers by HTTP
//! status.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters.
///
/// `submissions = accepted + duplicate_submissions + rejected`: one per message in a generic
/// batch and one per Twilio create that got past outage, auth, rate limit and request
/// validation. Requests refused as a whole are counted in `rate_limited`, `outage_refusals`,
/// `unauthorized` or `bad_requests` instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages submitted (see above).
    pub submissions: u64,
    /// Submit requests processed (a generic batch is one; each Twilio create is one): with
    /// `submissions`, the messages per carrier request.
    pub submit_requests: u64,
    /// New messages accepted and recorded.
    pub accepted: u64,
    /// Resubmissions of a known generic `messageId` or Twilio idempotency token answered from
    /// the dedup cache (the first answer, nothing recorded). Only ever non-zero with
    /// [`SimConfig::dedup_references`](crate::SimConfig::dedup_references) on.
    pub duplicate_submissions: u64,
    /// Accepted messages (counted in `accepted` too) whose reference (generic `messageId`,
    /// Twilio idempotency token) had already been accepted before: double sends a real carrier
    /// delivers twice. Only ever non-zero with `dedup_references` off.
    pub repeated_references: u64,
    /// New messages refused synchronously (21211 / 21614).
    pub rejected: u64,
    /// Submit requests answered 429.
    pub rate_limited: u64,
    /// Submit and status requests answered 503 because of an outage.
    pub outage_refusals: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// Requests answered 400 as a whole (malformed JSON, empty batch, missing `To`/`Body`, …).
    pub bad_requests: u64,
    /// Status, fetch and Twilio list requests answered (200, 400 or 404).
    pub status_queries: u64,
    /// Callbacks that got a 2xx (after however many tries).
    pub callbacks_sent: u64,
    /// Callbacks given up after the last try.
    pub callbacks_failed: u64,
    /// Callback HTTP tries (every retry counts).
    pub callback_attempts: u64,
    /// Callback tries by the HTTP status answered; `0` counts tries with no answer (connection
    /// error or timeout).
    pub callbacks_by_http_status: BTreeMap<u16, u64>,
    /// Inbound messages posted to our webhook (whatever it answered).
    pub inbound_sent: u64,
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct StatsCollector {
    pub(crate) submissions: AtomicU64,
    pub(crate) submit_requests: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) duplicate_submissions: AtomicU64,
    pub(crate) repeated_references: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) outage_refusals: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) status_queries: AtomicU64,
    pub(crate) callbacks_sent: AtomicU64,
    pub(crate) callbacks_failed: AtomicU64,
    pub(crate) callback_attempts: AtomicU64,
    pub(crate) inbound_sent: AtomicU64,
    by_http_status: Mutex<BTreeMap<u16, u64>>,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl StatsCollector {
    /// Counts one callback try answered with `status` (`0`: no answer).
    pub(crate) fn record_callback_try(&self, status: u16) {
        bump(&self.callback_attempts);
        let mut map = self
            .by_http_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(status).or_insert(0) += 1;
    }

    fn counters(&self) -> [&AtomicU64; 15] {
        [
            &self.submissions,
            &self.submit_requests,
            &self.accepted,
            &self.duplicate_submissions,
            &self.repeated_references,
            &self.rejected,
            &self.rate_limited,
            &self.outage_refusals,
            &self.unauthorized,
            &self.bad_requests,
            &self.status_queries,
            &self.callbacks_sent,
            &self.callbacks_failed,
            &self.callback_attempts,
            &self.inbound_sent,
        ]
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            submissions: load(&self.submissions),
            submit_requests: load(&self.submit_requests),
            accepted: load(&self.accepted),
            duplicate_submissions: load(&self.duplicate_submissions),
            repeated_references: load(&self.repeated_references),
            rejected: load(&self.rejected),
            rate_limited: load(&self.rate_limited),
            outage_refusals: load(&self.outage_refusals),
            unauthorized: load(&self.unauthorized),
            bad_requests: load(&self.bad_requests),
            status_queries: load(&self.status_queries),
            callbacks_sent: load(&self.callbacks_sent),
            callbacks_failed: load(&self.callbacks_failed),
            callback_attempts: load(&self.callback_attempts),
            callbacks_by_http_status: self
                .by_http_status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            inbound_sent: load(&self.inbound_sent),
        }
    }

    pub(crate) fn reset(&self) {
        for c in self.counters() {
            c.store(0, Ordering::Relaxed);
        }
        self.by_http_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let c = StatsCollector::default();
        bump(&c.accepted);
        bump(&c.accepted);
        bump(&c.repeated_references);
        c.record_callback_try(200);
        c.record_callback_try(500);
        c.record_callback_try(500);
        let s = c.snapshot();
        assert_eq!(s.accepted, 2);
        assert_eq!(s.repeated_references, 1);
        assert_eq!(s.callback_attempts, 3);
        assert_eq!(s.callbacks_by_http_status.get(&500), Some(&2));
        c.reset();
        assert_eq!(c.snapshot(), Stats::default());
    }
}
