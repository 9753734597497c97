//! The circuit breaker of each carrier, per worker process.
//!
//! A carrier request that fails (the carrier did not answer, answered 5xx, or cannot be read)
//! counts against its carrier; [`BreakerSettings::failures`] in a row **open** the breaker. While
//! open, the gateway sends new submissions through the other carrier (when one is configured) or
//! defers them until the breaker may be probed; nothing is failed because a carrier is down.
//! After [`BreakerSettings::open_for`] the breaker is **half-open**: one request is let through
//! as a probe; its success closes the breaker, its failure opens it again. A 429 is flow control,
//! not a failure: it counts neither way.
//!
//! Each worker keeps its own breakers (what it saw itself), publishes their state in the metric
//! `pcn_carrier_breaker_state{carrier}` (0 closed, 1 half-open, 2 open), logs every change and
//! writes it to `carrier_breakers` (owned here), which the control API shows in `GetMonth`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed requests in a row that open the breaker.
    pub failures: u32,
    /// How long an open breaker refuses before it lets a probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// The state of one carrier's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through; `failures` in a row so far.
    Closed {
        /// Consecutive failed requests.
        failures: u32,
    },
    /// Requests are refused until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
    },
    /// One probe is out; everything else is refused until it answers.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed { .. } => 0,
            Self::HalfOpen => 1,
            Self::Open { .. } => 2,
        }
    }

    /// The name in logs and views: `closed`, `half_open`, `open`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::HalfOpen => "half_open",
            Self::Open { .. } => "open",
        }
    }
}

/// What a breaker says about a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send.
    Allowed,
    /// Send: it is the half-open probe.
    Probe,
    /// Do not send; ask again after this long.
    Refused(Duration),
}

impl Admission {
    /// Whether the request may go.
    pub fn allowed(self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

/// How a request ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The carrier answered (accepted or rejected messages).
    Success,
    /// No usable answer: unreachable, 5xx, timeout, unreadable.
    Failure,
    /// A 429 or a refusal of our credentials: says nothing about the carrier's health.
    Neutral,
}

/// The pure rule: admission at `now`.
pub fn admit(state: &mut BreakerState, now: Instant) -> Admission {
    match *state {
        BreakerState::Closed { .. } => Admission::Allowed,
        BreakerState::Open { until } if now >= until => {
            *state = BreakerState::HalfOpen;
            Admission::Probe
        }
        BreakerState::Open { until } => Admission::Refused(until - now),
        // The probe is out: the others wait a little.
        BreakerState::HalfOpen => Admission::Refused(Duration::from_secs(1)),
    }
}

/// The pure rule: the state after a request ended with `outcome` at `now`.
pub fn record(
    state: BreakerState,
    outcome: Outcome,
    settings: BreakerSettings,
    now: Instant,
) -> BreakerState {
    let open = BreakerState::Open {
        until: now + settings.open_for,
    };
    match (state, outcome) {
        (_, Outcome::Success) => BreakerState::Closed { failures: 0 },
        (BreakerState::Closed { failures }, Outcome::Failure) => {
            if failures + 1 >= settings.failures.max(1) {
                open
            } else {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
        }
        (BreakerState::HalfOpen, Outcome::Failure) => open,
        // A request sent before the breaker opened failed too: it stays open as it is.
        (BreakerState::Open { .. }, Outcome::Failure) => state,
        // Nothing learned; a neutral probe leaves room for another.
        (BreakerState::HalfOpen, Outcome::Neutral) => BreakerState::Open { until: now },
        (state, Outcome::Neutral) => state,
    }
}

/// The breakers of every carrier of this worker.
pub struct Breakers {
    settings: BreakerSettings,
    states: Mutex<HashMap<String, BreakerState>>,
    gauge: std::sync::OnceLock<prometheus::IntGaugeVec>,
    pool: std::sync::OnceLock<sqlx::PgPool>,
}

impl Breakers {
    /// Breakers with `settings`, all closed.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            states: Mutex::new(HashMap::new()),
            gauge: std::sync::OnceLock::new(),
            pool: std::sync::OnceLock::new(),
        }
    }

    /// Writes every state change to `carrier_breakers` on `pool` from now on.
    pub fn record_to(&self, pool: sqlx::PgPool) {
        let _ = self.pool.set(pool);
    }

    /// Publishes every state change to `gauge` (labelled by carrier) from now on.
    pub fn publish_to(&self, gauge: prometheus::IntGaugeVec) {
        let _ = self.gauge.set(gauge);
    }

    /// May a request go to `carrier` now?
    pub fn admit(&self, carrier: &str) -> Admission {
        self.transition(carrier, |state| admit(state, Instant::now()))
    }

    /// A request to `carrier` ended with `outcome`.
    pub fn record(&self, carrier: &str, outcome: Outcome) {
        self.transition(carrier, |state| {
            *state = record(*state, outcome, self.settings, Instant::now());
        });
    }

    /// Applies `change` to `carrier`'s breaker (closed when never used), then publishes what
    /// changed.
    fn transition<R>(&self, carrier: &str, change: impl FnOnce(&mut BreakerState) -> R) -> R {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let state = states
            .entry(carrier.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let before = *state;
        let result = change(state);
        let after = *state;
        drop(states);
        self.changed(carrier, before, after);
        result
    }

    /// The state of `carrier`'s breaker (closed when never used).
    pub fn state(&self, carrier: &str) -> BreakerState {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(carrier)
            .copied()
            .unwrap_or(BreakerState::Closed { failures: 0 })
    }

    fn changed(&self, carrier: &str, before: BreakerState, after: BreakerState) {
        if let Some(gauge) = self.gauge.get() {
            gauge.with_label_values(&[carrier]).set(after.gauge());
        }
        if before.name() == after.name() {
            return;
        }
        if let (Some(pool), Ok(runtime)) = (self.pool.get(), tokio::runtime::Handle::try_current())
        {
            let (pool, carrier) = (pool.clone(), carrier.to_owned());
            runtime.spawn(async move {
                if let Err(err) = store(&pool, &carrier, after).await {
                    tracing::warn!(error = %format!("{err:#}"), carrier, "breaker state not stored");
                }
            });
        }
        match after {
            BreakerState::Open { .. } => tracing::error!(
                carrier,
                from = before.name(),
                open_secs = self.settings.open_for.as_secs(),
                "carrier circuit breaker OPEN: new submissions go to the other carrier, or wait"
            ),
            BreakerState::HalfOpen => {
                tracing::warn!(
                    carrier,
                    "carrier circuit breaker half-open: one probe request"
                )
            }
            BreakerState::Closed { .. } => {
                tracing::warn!(
                    carrier,
                    from = before.name(),
                    "carrier circuit breaker closed"
                )
            }
        }
    }
}

/// The latest change `carrier`'s breaker went through, as this worker saw it.
async fn store(pool: &sqlx::PgPool, carrier: &str, state: BreakerState) -> anyhow::Result<()> {
    let worker = format!(
        "{}@{}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned())
    );
    sqlx::query(
        "INSERT INTO carrier_breakers (carrier, state, worker) VALUES ($1, $2, $3)
         ON CONFLICT (carrier) DO UPDATE
            SET state = EXCLUDED.state, worker = EXCLUDED.worker, changed_at = clock_timestamp()",
    )
    .bind(carrier)
    .bind(state.name())
    .bind(worker.chars().take(200).collect::<String>())
    .execute(pool)
    .await?;
    Ok(())
}

/// A carrier's breaker as last stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBreaker {
    /// `generic` or `twilio`.
    pub carrier: String,
    /// `closed`, `half_open` or `open`.
    pub state: String,
    /// When the change was seen.
    pub changed_at: chrono::DateTime<chrono::Utc>,
    /// The worker that saw it.
    pub worker: String,
}

/// Every carrier's breaker as last stored, by carrier name.
pub async fn stored(pool: &sqlx::PgPool) -> anyhow::Result<Vec<StoredBreaker>> {
    let rows: Vec<(String, String, chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
        "SELECT carrier, state, changed_at, worker FROM carrier_breakers ORDER BY carrier",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(carrier, state, changed_at, worker)| StoredBreaker {
            carrier,
            state,
            changed_at,
            worker,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failures: 3,
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn opens_after_the_configured_failures_in_a_row_only() {
        let now = Instant::now();
        let mut s = BreakerState::Closed { failures: 0 };
        s = record(s, Outcome::Failure, settings(), now);
        s = record(s, Outcome::Failure, settings(), now);
        assert_eq!(s, BreakerState::Closed { failures: 2 });
        // A success in between starts the count again.
        s = record(s, Outcome::Success, settings(), now);
        s = record(s, Outcome::Failure, settings(), now);
        s = record(s, Outcome::Failure, settings(), now);
        assert!(matches!(s, BreakerState::Closed { failures: 2 }));
        s = record(s, Outcome::Failure, settings(), now);
        assert_eq!(
            s,
            BreakerState::Open {
                until: now + Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn an_open_breaker_refuses_then_lets_one_probe_through() {
        let now = Instant::now();
        let mut s = record(
            BreakerState::Closed { failures: 2 },
            Outcome::Failure,
            settings(),
            now,
        );
        assert_eq!(
            admit(&mut s, now + Duration::from_secs(10)),
            Admission::Refused(Duration::from_secs(20))
        );
        assert_eq!(
            admit(&mut s, now + Duration::from_secs(30)),
            Admission::Probe
        );
        assert_eq!(s, BreakerState::HalfOpen);
        // Only one probe at a time.
        assert!(!admit(&mut s, now + Duration::from_secs(31)).allowed());
    }

    #[test]
    fn the_probe_closes_or_reopens_it() {
        let now = Instant::now();
        let closed = record(BreakerState::HalfOpen, Outcome::Success, settings(), now);
        assert_eq!(closed, BreakerState::Closed { failures: 0 });
        let reopened = record(BreakerState::HalfOpen, Outcome::Failure, settings(), now);
        assert_eq!(
            reopened,
            BreakerState::Open {
                until: now + Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn a_429_counts_neither_way() {
        let now = Instant::now();
        let s = record(
            BreakerState::Closed { failures: 2 },
            Outcome::Neutral,
            settings(),
            now,
        );
        assert_eq!(s, BreakerState::Closed { failures: 2 });
        // A neutral probe lets the next request probe again.
        let mut s = record(BreakerState::HalfOpen, Outcome::Neutral, settings(), now);
        assert_eq!(admit(&mut s, now), Admission::Probe);
    }

    #[test]
    fn a_late_failure_does_not_extend_an_open_breaker() {
        let now = Instant::now();
        let open = BreakerState::Open { until: now };
        let s = record(
            open,
            Outcome::Failure,
            settings(),
            now + Duration::from_secs(5),
        );
        assert_eq!(s, open);
    }
}
