//! Our Prometheus metrics (the Temporal SDK exports its own on the same endpoint's registry
//! neighbour, see the worker).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

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
        for collector in [
            Box::new(checks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(bank_answers.clone()),
            Box::new(sweep_duration.clone()),
        ] {
            registry.register(collector).expect("unique metric");
        }
        Self {
            registry,
            checks,
            bank_answers,
            sweep_duration,
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
