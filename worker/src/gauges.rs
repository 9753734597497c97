//! Gauges the worker refreshes from facts kept elsewhere: the running month runs by phase (the
//! `PcnPhase` search attribute, counted in Temporal's visibility) and the latest business date
//! whose daily sweep completed (`daily_sweeps`), the rows in the default partitions (months of
//! `balance_checks` without a partition). Workflow code stays deterministic and reports
//! nothing itself; the alert rules (`deploy/prometheus/alerts.yml`) read these gauges.

use std::time::Duration;

use chrono::NaiveTime;
use pcn_activities::metrics::Metrics;
use pcn_activities::sweep;
use pcn_workflows::domain::BusinessDate;
use pcn_workflows::month::MonthPhase;
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowCountOptions};

/// How often the gauges are refreshed (Prometheus scrapes every 15 s; a phase changes at most a
/// few times a day).
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The visibility query counting the running month runs in `phase`.
pub fn phase_query(phase: MonthPhase) -> String {
    format!(
        "WorkflowType = 'MonthlyQualificationWorkflow' AND ExecutionStatus = 'Running' \
         AND {} = '{}'",
        pcn_workflows::search::PHASE.name(),
        phase.as_str()
    )
}

/// The value of `pcn_daily_sweep_last_business_date_timestamp_seconds`: the Unix time of the
/// date's 00:00 in Asia/Jerusalem (DST-correct).
pub fn date_timestamp(date: BusinessDate) -> i64 {
    date.at_local(NaiveTime::MIN).timestamp()
}

/// Refreshes the gauges every `every` until the task is aborted. A source that cannot be read
/// leaves its gauges as they were (and says so in the log).
pub fn spawn(
    pool: PgPool,
    client: Client,
    metrics: Metrics,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            refresh_phases(&client, &metrics).await;
            refresh_last_swept(&pool, &metrics).await;
            refresh_default_rows(&pool, &metrics).await;
            tokio::time::sleep(every).await;
        }
    })
}

async fn refresh_phases(client: &Client, metrics: &Metrics) {
    // A completed run is not running: COMPLETED is never counted here.
    for phase in MonthPhase::ALL
        .into_iter()
        .filter(|p| *p != MonthPhase::Completed)
    {
        match client
            .count_workflows(phase_query(phase), WorkflowCountOptions::default())
            .await
        {
            Ok(count) => metrics
                .months
                .with_label_values(&[phase.as_str()])
                .set(i64::try_from(count.count()).unwrap_or(i64::MAX)),
            Err(err) => {
                tracing::warn!(error = %err, phase = phase.as_str(), "counting month runs failed");
                return;
            }
        }
    }
}

async fn refresh_last_swept(pool: &PgPool, metrics: &Metrics) {
    match sweep::last_swept_date(pool).await {
        Ok(Some(date)) => metrics.last_swept_date.set(date_timestamp(date)),
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "reading the last swept date failed")
        }
    }
}

async fn refresh_default_rows(pool: &PgPool, metrics: &Metrics) {
    let rows = match pool.acquire().await {
        Ok(mut conn) => pcn_activities::partitions::default_rows(&mut conn).await,
        Err(err) => Err(err.into()),
    };
    match rows {
        Ok(rows) => {
            for (table, _) in pcn_activities::partitions::PARTITIONED {
                let n = rows
                    .iter()
                    .filter(|r| r.table == table)
                    .map(|r| r.rows)
                    .sum();
                metrics
                    .partition_default_rows
                    .with_label_values(&[table])
                    .set(n);
            }
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "reading the default partitions failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_exported_as_its_midnight_in_israel() {
        // 2026-10-01 is in summer time (UTC+3), 2026-12-01 in winter time (UTC+2).
        let summer = BusinessDate::parse("2026-10-01").expect("date");
        let winter = BusinessDate::parse("2026-12-01").expect("date");
        assert_eq!(date_timestamp(summer), 1_790_802_000); // 2026-09-30T21:00:00Z
        assert_eq!(date_timestamp(winter), 1_796_076_000); // 2026-11-30T22:00:00Z
    }

    #[test]
    fn the_phase_query_names_the_workflow_type_and_the_search_attribute() {
        assert_eq!(
            phase_query(MonthPhase::Blocked),
            "WorkflowType = 'MonthlyQualificationWorkflow' AND ExecutionStatus = 'Running' \
             AND PcnPhase = 'BLOCKED'"
        );
    }
}
