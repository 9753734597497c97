//! Injectable faults: latency, jitter, error rates, hangs, outages and a rotating API key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Faults applied to balance requests; adjustable at runtime through
/// [`SimHandle::set_faults`](crate::SimHandle::set_faults) or `PUT /admin/faults`.
///
/// Probabilities are integers in parts per million (1,000,000 = always) so no float arithmetic
/// is involved. Each request draws from a hash that includes a global request counter, so a
/// retry of the same (account, date) gets a fresh draw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Milliseconds added to every balance request.
    pub latency_ms: u64,
    /// Plus a hash-based extra delay in `0..jitter_ms`.
    pub jitter_ms: u64,
    /// Per-request probability of a 503 `SERVICE_UNAVAILABLE`, in ppm.
    pub error_503_ppm: u32,
    /// Per-request probability of a 500 `INTERNAL_ERROR`, in ppm.
    pub error_500_ppm: u32,
    /// Per-request probability of sleeping [`hang_ms`](Self::hang_ms) before answering, in ppm
    /// (to trigger client timeouts).
    pub hang_ppm: u32,
    /// How long a hanging request sleeps.
    pub hang_ms: u64,
    /// While `true`, every balance request gets a 503.
    pub outage: bool,
    /// Every balance request gets a 503 until this wall-clock time (the simulator is not
    /// workflow code, so the wall clock is fine here).
    pub outage_until: Option<DateTime<Utc>>,
    /// The expected `X-API-Key`; changing it makes the client's key wrong (401).
    ///
    /// An empty key in [`SimHandle::set_faults`](crate::SimHandle::set_faults), in
    /// `PUT /admin/faults` or in [`SimConfig::faults`](crate::SimConfig::faults) keeps the
    /// current key, so `Faults { error_503_ppm: …, ..Faults::default() }` never locks clients
    /// out by accident.
    pub api_key: String,
}

impl Faults {
    /// Whether an outage is in force at `now`.
    pub fn outage_active(&self, now: DateTime<Utc>) -> bool {
        self.outage || self.outage_until.is_some_and(|until| now < until)
    }

    /// Whether any outage is configured, without reading the clock.
    pub(crate) fn outage_possible(&self) -> bool {
        self.outage || self.outage_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

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
    fn partial_json_fills_in_defaults() {
        let f: Faults = serde_json::from_str(r#"{"error_503_ppm": 1000}"#).unwrap();
        assert_eq!(f.error_503_ppm, 1000);
        assert_eq!(f.latency_ms, 0);
        assert!(f.api_key.is_empty());
    }
}
