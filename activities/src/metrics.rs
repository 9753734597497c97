//! Our Prometheus metrics (the Temporal SDK exports its own on the same endpoint's registry
//! neighbour, see the worker). One registry for every process: the worker, the webhook and the
//! control API each expose what they update; the alert rules (`deploy/prometheus/alerts.yml`) and
//! the dashboard (`deploy/grafana/`) use only names registered here, which a test below checks.
//! No label carries a customer, an account or a phone number.

use pcn_workflows::vocabulary::{CheckOutcome, NotificationState};
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The `outcome` label values of `pcn_bank_request_duration_seconds`.
pub const BANK_REQUEST_OUTCOMES: [&str; 4] = ["ok", "not_found", "unauthorized", "unavailable"];

/// The `kind` label values of `pcn_carrier_answers_total`.
pub const CARRIER_ANSWER_KINDS: [&str; 5] =
    ["ok", "refused", "rate_limited", "unauthorized", "failed"];

/// Metrics of the balance monitoring, the SMS side, the webhook and the month runs.
#[derive(Clone)]
pub struct Metrics {
    /// The registry to expose.
    pub registry: Registry,
    /// Balance checks written, by outcome.
    pub checks: IntCounterVec,
    /// Bank answers, by kind (ok, not_found, invalid, unavailable, unauthorized).
    pub bank_answers: IntCounterVec,
    /// Wall-clock duration of daily sweep executions.
    pub sweep_duration: Histogram,
    /// SMS submissions whose outcome was unknown (timeout, cut-off answer, 5xx, crash): in doubt.
    pub sms_in_doubt: IntCounter,
    /// In-doubt attempts resolved, by resolution (adopted_callback, adopted_signal,
    /// adopted_lookup, resubmitted, abandoned).
    pub sms_in_doubt_resolutions: IntCounterVec,
    /// Carrier requests of the submission gateway (one per batch).
    pub sms_batches: IntCounter,
    /// Messages per carrier request.
    pub sms_batch_size: Histogram,
    /// Submissions deferred by the gateway, by reason: `queue` (full), `rate` (carrier budget),
    /// `429` (the carrier asked us to wait).
    pub sms_deferred: IntCounterVec,
    /// Each carrier's circuit breaker: 0 closed, 1 half-open, 2 open.
    pub carrier_breaker: IntGaugeVec,
    /// Duration of one HTTP request to the core bank (each try), by outcome (ok, not_found,
    /// unauthorized, unavailable).
    pub bank_requests: HistogramVec,
    /// Carrier requests of the submission gateway by carrier and what came back (ok, refused,
    /// rate_limited, unauthorized, failed: no answer, 5xx, unreadable or incomplete answer).
    pub carrier_answers: IntCounterVec,
    /// Duration of one carrier request of the submission gateway, by carrier.
    pub carrier_requests: HistogramVec,
    /// Notifications that reached a final state, by state (counted once, when the row turns
    /// final).
    pub notifications_finished: IntCounterVec,
    /// SMS workflows started by the fan-out.
    pub sms_workflows_started: IntCounter,
    /// The decisions of the month last decided by this worker, by reason (QUALIFIED and the
    /// reasons of non-qualification).
    pub qualification_customers: IntGaugeVec,
    /// Webhook requests answered, by route and HTTP status.
    pub webhook_requests: IntCounterVec,
    /// Callbacks and inbound messages this webhook process answered with a non-2xx in a row
    /// (reset by the next 2xx).
    pub webhook_consecutive_failures: IntGauge,
    /// Delivery events stored but not yet signalled (`delivery_events` PENDING), as the
    /// reconciler last counted them.
    pub delivery_events_pending: IntGauge,
    /// Running month runs by phase (the `PcnPhase` search attribute), as the worker last counted
    /// them.
    pub months: IntGaugeVec,
    /// The latest business date with a completed daily sweep, as the Unix time of its 00:00
    /// Asia/Jerusalem.
    pub last_swept_date: IntGauge,
    /// Rows in a partitioned table's default partition (months without a partition), by table,
    /// as the worker last counted them: should be 0.
    pub partition_default_rows: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let checks = IntCounterVec::new(
            Opts::new(
                "pcn_balance_checks_total",
                "Balance checks written, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let bank_answers = IntCounterVec::new(
            Opts::new("pcn_bank_answers_total", "Core-banking answers, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let sweep_duration = Histogram::with_opts(
            HistogramOpts::new(
                "pcn_daily_sweep_duration_seconds",
                "Duration of one daily sweep execution",
            )
            .buckets(vec![
                1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
            ]),
        )
        .expect("valid metric");
        let sms_in_doubt = IntCounter::new(
            "pcn_sms_in_doubt_total",
            "SMS submissions whose outcome was unknown (the carrier may have them)",
        )
        .expect("valid metric");
        let sms_in_doubt_resolutions = IntCounterVec::new(
            Opts::new(
                "pcn_sms_in_doubt_resolutions_total",
                "In-doubt SMS attempts resolved, by resolution",
            ),
            &["resolution"],
        )
        .expect("valid metric");
        let sms_batches = IntCounter::new(
            "pcn_sms_carrier_requests_total",
            "Carrier requests of the SMS submission gateway (one per batch)",
        )
        .expect("valid metric");
        let sms_batch_size = Histogram::with_opts(
            HistogramOpts::new("pcn_sms_batch_size", "Messages per carrier request").buckets(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
            ]),
        )
        .expect("valid metric");
        let sms_deferred = IntCounterVec::new(
            Opts::new(
                "pcn_sms_deferred_total",
                "SMS submissions told to come back later, by reason (queue, rate, 429)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let carrier_breaker = IntGaugeVec::new(
            Opts::new(
                "pcn_carrier_breaker_state",
                "Circuit breaker of each carrier in this worker: 0 closed, 1 half-open, 2 open",
            ),
            &["carrier"],
        )
        .expect("valid metric");
        // Seconds: the bank's 30 s timeout is the last finite bucket; 5 s is the alert's line.
        let request_buckets = vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let bank_requests = HistogramVec::new(
            HistogramOpts::new(
                "pcn_bank_request_duration_seconds",
                "Duration of one core-banking balance request (each try), by outcome",
            )
            .buckets(request_buckets.clone()),
            &["outcome"],
        )
        .expect("valid metric");
        let carrier_answers = IntCounterVec::new(
            Opts::new(
                "pcn_carrier_answers_total",
                "Carrier requests of the submission gateway, by carrier and answer kind",
            ),
            &["carrier", "kind"],
        )
        .expect("valid metric");
        let carrier_requests = HistogramVec::new(
            HistogramOpts::new(
                "pcn_carrier_request_duration_seconds",
                "Duration of one carrier request of the submission gateway, by carrier",
            )
            .buckets(request_buckets),
            &["carrier"],
        )
        .expect("valid metric");
        let notifications_finished = IntCounterVec::new(
            Opts::new(
                "pcn_notifications_finished_total",
                "Notifications that reached a final state, by state",
            ),
            &["state"],
        )
        .expect("valid metric");
        let sms_workflows_started = IntCounter::new(
            "pcn_sms_workflows_started_total",
            "SMS workflows started by the fan-out",
        )
        .expect("valid metric");
        let qualification_customers = IntGaugeVec::new(
            Opts::new(
                "pcn_qualification_customers",
                "Decisions of the month last decided by this worker, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let webhook_requests = IntCounterVec::new(
            Opts::new(
                "pcn_webhook_requests_total",
                "Webhook requests answered, by route and HTTP status",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let webhook_consecutive_failures = IntGauge::new(
            "pcn_webhook_consecutive_failures",
            "Webhook requests answered with a non-2xx in a row by this process",
        )
        .expect("valid metric");
        let delivery_events_pending = IntGauge::new(
            "pcn_delivery_events_pending",
            "Delivery events stored but not yet signalled to their SMS workflow",
        )
        .expect("valid metric");
        let months = IntGaugeVec::new(
            Opts::new("pcn_months", "Running month runs, by phase"),
            &["phase"],
        )
        .expect("valid metric");
        let last_swept_date = IntGauge::new(
            "pcn_daily_sweep_last_business_date_timestamp_seconds",
            "Latest business date with a completed daily sweep (Unix time of its 00:00 Asia/Jerusalem)",
        )
        .expect("valid metric");
        let partition_default_rows = IntGaugeVec::new(
            Opts::new(
                "pcn_partition_default_rows",
                "Rows in a partitioned table's default partition (their month has no partition)",
            ),
            &["table"],
        )
        .expect("valid metric");
        let metrics = Self {
            registry,
            checks,
            bank_answers,
            sweep_duration,
            sms_in_doubt,
            sms_in_doubt_resolutions,
            sms_batches,
            sms_batch_size,
            sms_deferred,
            carrier_breaker,
            bank_requests,
            carrier_answers,
            carrier_requests,
            notifications_finished,
            sms_workflows_started,
            qualification_customers,
            webhook_requests,
            webhook_consecutive_failures,
            delivery_events_pending,
            months,
            last_swept_date,
            partition_default_rows,
        };
        for collector in metrics.collectors() {
            metrics.registry.register(collector).expect("unique metric");
        }
        // Series that alerts take `increase`/`rate` of exist from the start at 0, so the first
        // MISSING check or FAILED notification is an increase, not a series that appears.
        for outcome in CheckOutcome::ALL {
            metrics.checks.with_label_values(&[outcome.as_str()]);
        }
        for state in NotificationState::ALL.into_iter().filter(|s| s.is_final()) {
            metrics
                .notifications_finished
                .with_label_values(&[state.as_str()]);
        }
        for outcome in BANK_REQUEST_OUTCOMES {
            metrics.bank_requests.with_label_values(&[outcome]);
        }
        metrics
    }

    /// Starts the answer series of `carrier` at 0 (see [`new`](Self::new)); called when a
    /// carrier is set up.
    pub fn carrier_in_use(&self, carrier: &str) {
        for kind in CARRIER_ANSWER_KINDS {
            self.carrier_answers.with_label_values(&[carrier, kind]);
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.checks.clone()),
            Box::new(self.carrier_breaker.clone()),
            Box::new(self.sms_batches.clone()),
            Box::new(self.sms_batch_size.clone()),
            Box::new(self.sms_deferred.clone()),
            Box::new(self.bank_answers.clone()),
            Box::new(self.sweep_duration.clone()),
            Box::new(self.sms_in_doubt.clone()),
            Box::new(self.sms_in_doubt_resolutions.clone()),
            Box::new(self.bank_requests.clone()),
            Box::new(self.carrier_answers.clone()),
            Box::new(self.carrier_requests.clone()),
            Box::new(self.notifications_finished.clone()),
            Box::new(self.sms_workflows_started.clone()),
            Box::new(self.qualification_customers.clone()),
            Box::new(self.webhook_requests.clone()),
            Box::new(self.webhook_consecutive_failures.clone()),
            Box::new(self.delivery_events_pending.clone()),
            Box::new(self.months.clone()),
            Box::new(self.last_swept_date.clone()),
            Box::new(self.partition_default_rows.clone()),
        ]
    }

    /// The name of every registered metric (a vector with no labels used yet is not in
    /// [`render`](Self::render)'s output, but is here).
    pub fn names(&self) -> Vec<String> {
        self.collectors()
            .iter()
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect()
    }

    /// Counts one webhook answer: any 2xx ends a run of failures, anything else extends it.
    pub fn webhook_answered(&self, route: &str, status: u16) {
        self.webhook_requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        if (200..300).contains(&status) {
            self.webhook_consecutive_failures.set(0);
        } else {
            self.webhook_consecutive_failures.inc();
        }
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if encoder
            .encode_utf8(&self.registry.gather(), &mut out)
            .is_err()
        {
            out.clear();
        }
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pcn_` metric names used by a rule file or dashboard: histogram and counter series
    /// (`_bucket`, `_sum`, `_count`) are reduced to the metric they belong to.
    fn used_names(text: &str, known: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("pcn_") {
            let start = i + at;
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric()
                    || bytes[start - 1] == b'_'
                    || bytes[start - 1] == b':');
            let mut end = start;
            while end < bytes.len()
                && (bytes[end].is_ascii_lowercase()
                    || bytes[end].is_ascii_digit()
                    || bytes[end] == b'_')
            {
                end += 1;
            }
            if boundary {
                let name = &text[start..end];
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix).filter(|base| {
                            !known.iter().any(|k| k == name) && known.iter().any(|k| k == base)
                        })
                    })
                    .unwrap_or(name);
                out.push(base.to_owned());
            }
            i = end.max(start + 4);
        }
        out.sort();
        out.dedup();
        out
    }

    const ALERTS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/alerts.yml"
    ));

    #[test]
    fn every_metric_the_alert_rules_use_is_registered() {
        let known = Metrics::new().names();
        let used = used_names(ALERTS, &known);
        assert!(used.len() >= 10, "too few metric names found: {used:?}");
        let unknown: Vec<_> = used.iter().filter(|n| !known.contains(n)).collect();
        assert!(
            unknown.is_empty(),
            "alerts.yml uses unregistered metrics: {unknown:?}"
        );
    }

    const DASHBOARD: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/pcn.json"
    ));

    #[test]
    fn every_metric_the_dashboard_uses_is_registered() {
        let known = Metrics::new().names();
        let used = used_names(DASHBOARD, &known);
        assert!(used.len() >= 10, "too few metric names found: {used:?}");
        let unknown: Vec<_> = used.iter().filter(|n| !known.contains(n)).collect();
        assert!(
            unknown.is_empty(),
            "the dashboard uses unregistered metrics: {unknown:?}"
        );
    }

    #[test]
    fn a_renamed_metric_is_reported() {
        let known = Metrics::new().names();
        let used = used_names(
            "sum(rate(pcn_bank_request_duration_seconds_bucket[5m])) + pcn_bank_answer_total",
            &known,
        );
        assert_eq!(
            used,
            ["pcn_bank_answer_total", "pcn_bank_request_duration_seconds"]
        );
        assert!(!known.contains(&"pcn_bank_answer_total".to_owned()));
    }

    #[test]
    fn a_webhook_failure_run_ends_at_the_next_success() {
        let metrics = Metrics::new();
        for status in [503, 401, 503] {
            metrics.webhook_answered("/webhooks/sms-delivery", status);
        }
        assert_eq!(metrics.webhook_consecutive_failures.get(), 3);
        metrics.webhook_answered("/webhooks/sms-delivery", 200);
        assert_eq!(metrics.webhook_consecutive_failures.get(), 0);
        assert_eq!(
            metrics
                .webhook_requests
                .with_label_values(&["/webhooks/sms-delivery", "503"])
                .get(),
            2
        );
    }
}
