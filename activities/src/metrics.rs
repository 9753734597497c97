//! Our Prometheus metrics (the Temporal SDK exports its own on the same endpoint's registry
//! neighbour, see the worker).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Metrics of the balance monitoring.
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
        for collector in [
            Box::new(checks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(carrier_breaker.clone()),
            Box::new(sms_batches.clone()),
            Box::new(sms_batch_size.clone()),
            Box::new(sms_deferred.clone()),
            Box::new(bank_answers.clone()),
            Box::new(sweep_duration.clone()),
            Box::new(sms_in_doubt.clone()),
            Box::new(sms_in_doubt_resolutions.clone()),
        ] {
            registry.register(collector).expect("unique metric");
        }
        Self {
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
