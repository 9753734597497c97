//! Request counters for tests: totals, per status, and per (account, date).
//!
//! Built for ~10,000+ requests/s: status counters are atomics and the per-(account, date) map is
//! split into shards keyed by account, each a short-held `std::sync::Mutex` (never across an
//! await).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use serde::Serialize;

use crate::hash::{WordHasher, day_word};

/// Status codes the balance endpoint can answer with, in counter order.
const STATUSES: [u16; 6] = [200, 400, 401, 404, 500, 503];
/// Number of shards of the per-(account, date) map (a power of two).
const SHARDS: usize = 16;

/// A snapshot of the balance-endpoint counters (admin endpoints are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Balance requests answered so far.
    pub total: u64,
    /// Answered balance requests by HTTP status code (codes never seen are absent).
    pub by_status: BTreeMap<u16, u64>,
    /// Number of distinct (account, date) pairs requested.
    pub distinct_account_dates: u64,
    /// Requests per packed (account, date) key; see [`Stats::requests_for`].
    #[serde(skip)]
    per_account_date: HashMap<u64, u32, WordHasher>,
}

impl Stats {
    /// How many balance requests named account `i` and `date` (every attempt counts, whatever
    /// the answer, as long as both the account id and the date parsed).
    pub fn requests_for(&self, i: u64, date: NaiveDate) -> u64 {
        self.per_account_date
            .get(&pack(i, date))
            .copied()
            .map_or(0, u64::from)
    }

    /// Answered balance requests with HTTP status `code`.
    pub fn status(&self, code: u16) -> u64 {
        self.by_status.get(&code).copied().unwrap_or(0)
    }
}

/// The live counters behind [`Stats`].
pub(crate) struct StatsCollector {
    total: AtomicU64,
    by_status: [AtomicU64; STATUSES.len()],
    shards: [Mutex<HashMap<u64, u32, WordHasher>>; SHARDS],
}

impl StatsCollector {
    pub(crate) fn new() -> Self {
        Self {
            total: AtomicU64::new(0),
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            shards: std::array::from_fn(|_| {
                Mutex::new(HashMap::with_hasher(WordHasher::default()))
            }),
        }
    }

    /// Counts one request for (account, date).
    pub(crate) fn record_request(&self, i: u64, date: NaiveDate) {
        let mut shard = lock(&self.shards[shard_of(i)]);
        let n = shard.entry(pack(i, date)).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Counts one answered request with `status`.
    pub(crate) fn record_status(&self, status: u16) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(idx) = STATUSES.iter().position(|&s| s == status) {
            self.by_status[idx].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests for one (account, date) without snapshotting everything.
    pub(crate) fn requests_for(&self, i: u64, date: NaiveDate) -> u64 {
        lock(&self.shards[shard_of(i)])
            .get(&pack(i, date))
            .copied()
            .map_or(0, u64::from)
    }

    pub(crate) fn snapshot(&self, with_per_account_date: bool) -> Stats {
        let by_status = STATUSES
            .iter()
            .zip(&self.by_status)
            .map(|(&code, n)| (code, n.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect();
        let mut per_account_date = HashMap::with_hasher(WordHasher::default());
        let mut distinct = 0u64;
        for shard in &self.shards {
            let shard = lock(shard);
            distinct += shard.len() as u64;
            if with_per_account_date {
                per_account_date.extend(shard.iter().map(|(&k, &v)| (k, v)));
            }
        }
        Stats {
            total: self.total.load(Ordering::Relaxed),
            by_status,
            distinct_account_dates: distinct,
            per_account_date,
        }
    }

    pub(crate) fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        for n in &self.by_status {
            n.store(0, Ordering::Relaxed);
        }
        for shard in &self.shards {
            lock(shard).clear();
        }
    }
}

/// Packs (account, date) into one word: 40 bits of account index (ids allow < 10^10 < 2^40)
/// above 24 bits of day number (good until the year ~45,000). Halves the map's memory compared
/// with a tuple key, which matters for 100,000 accounts × 31 days.
fn pack(i: u64, date: NaiveDate) -> u64 {
    (i << 24) | (day_word(date) & 0xFF_FFFF)
}

fn shard_of(i: u64) -> usize {
    // Only the low bits matter for the shard; the mask keeps the cast lossless.
    (i & (SHARDS as u64 - 1)) as usize
}

/// Counters stay meaningful after a panicking holder, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_per_account_date_and_status() {
        let c = StatsCollector::new();
        let d = NaiveDate::from_ymd_opt(2026, 10, 5).unwrap();
        let e = d.succ_opt().unwrap();
        for _ in 0..3 {
            c.record_request(7, d);
        }
        c.record_request(7, e);
        c.record_request(23, d);
        c.record_status(200);
        c.record_status(503);
        c.record_status(503);
        let s = c.snapshot(true);
        assert_eq!(s.total, 3);
        assert_eq!(s.status(503), 2);
        assert_eq!(s.status(404), 0);
        assert_eq!(s.requests_for(7, d), 3);
        assert_eq!(s.requests_for(7, e), 1);
        assert_eq!(s.requests_for(23, d), 1);
        assert_eq!(s.requests_for(8, d), 0);
        assert_eq!(s.distinct_account_dates, 3);
        assert_eq!(c.requests_for(7, d), 3);
        c.reset();
        assert_eq!(c.snapshot(true), Stats::default());
    }
}
