//! The SMS notification steps the workflow runs as local activities, and the fan-out that starts
//! the workflows.
//!
//! Idempotency is keyed by business ids in Postgres:
//! - `notifications (month, customer)`: one row per notification, created by the fan-out;
//! - `sms_attempts (month, customer, attempt)` with `message_ref` = the carrier idempotency key:
//!   the row is written before the carrier is called, and an attempt that has a carrier message
//!   id is answered from the row — never submitted again (a reset or a retry sends nothing twice);
//! - the audit entry of a final state carries the key `notification/<workflow id>/final`.

use std::sync::Arc;

use anyhow::Context as _;
use futures::{StreamExt, stream};
use pcn_workflows::contracts::{
    AttemptOutcome, CountNotificationsInput, DeliveryReport, NotificationCounts, NotificationKey,
    PollInput, PrepareInput, Prepared, RecordInput, StartNotificationsInput,
    StartNotificationsOutput, SubmitInput, SubmitResult,
};
use pcn_workflows::customer::FirstName;
use pcn_workflows::delivery::FailureCategory;
use pcn_workflows::domain::{CustomerId, Language, Phone, YearMonth};
use pcn_workflows::message::TemplateSet;
use pcn_workflows::search;
use pcn_workflows::sms::{self, NotificationState, SmsInput, SmsNotificationWorkflow};
use sqlx::{PgPool, Row};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{Client, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;

use crate::audit::{self, AuditEntry};
use crate::carrier::{AnyCarrier, OutboundSms, SmsCarrier, SubmitOutcome};

/// What the SMS steps need besides the pool.
pub struct SmsDeps {
    /// The configured carrier.
    pub carrier: AnyCarrier,
    /// The message templates (validated at load).
    pub templates: TemplateSet,
}

/// What the fan-out needs.
#[derive(Clone)]
pub struct FanoutDeps {
    /// Temporal client the SMS workflows are started with.
    pub client: Client,
    /// Starts in flight at once (more only adds latency on a small server).
    pub concurrency: usize,
}

/// A customer as the SMS steps need them.
struct Recipient {
    first_name: FirstName,
    phone: Phone,
    language: Language,
    opted_out: bool,
}

/// Creates the notification row when the workflow was started some other way than the fan-out
/// (an operator, a test); a no-op otherwise.
async fn ensure_notification(pool: &PgPool, key: &NotificationKey) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id) VALUES ($1, $2, $3)
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(sms::workflow_id(key.month, &key.customer))
    .execute(pool)
    .await?;
    Ok(())
}

async fn load_recipient(pool: &PgPool, customer: &CustomerId) -> anyhow::Result<Option<Recipient>> {
    let row = sqlx::query(
        "SELECT first_name, phone_e164, language, opted_out FROM customers WHERE customer_id = $1",
    )
    .bind(customer.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Recipient {
        first_name: FirstName::parse(row.get("first_name"))?,
        phone: Phone::parse(row.get("phone_e164"))?,
        language: Language::parse(row.get("language"))?,
        opted_out: row.get("opted_out"),
    }))
}

/// `PrepareNotification`: the customer exists, has not opted out, and the message renders;
/// records `input.state` (WAITING_WINDOW) on the notification.
pub async fn prepare(
    pool: &PgPool,
    deps: &SmsDeps,
    input: &PrepareInput,
) -> anyhow::Result<Prepared> {
    ensure_notification(pool, &input.key).await?;
    let Some(recipient) = load_recipient(pool, &input.key.customer).await? else {
        return Ok(Prepared::UnknownCustomer);
    };
    if recipient.opted_out {
        return Ok(Prepared::OptedOut);
    }
    let message = deps
        .templates
        .render(recipient.language, &recipient.first_name, input.key.month);
    sqlx::query(
        "UPDATE notifications
            SET status = $3, language = $4, encoding = $5, segments = $6, updated_at = now()
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(input.key.month.first_day().as_naive())
    .bind(input.key.customer.as_str())
    .bind(input.state.as_str())
    .bind(recipient.language.code())
    .bind(message.segments.encoding.as_str())
    .bind(i16::try_from(message.segments.segments).unwrap_or(i16::MAX))
    .execute(pool)
    .await?;
    Ok(Prepared::Ready {
        segments: message.segments.segments,
    })
}

/// `SubmitSms`: one attempt to the carrier, at most once. See the module docs.
pub async fn submit(
    pool: &PgPool,
    deps: &SmsDeps,
    input: &SubmitInput,
) -> anyhow::Result<SubmitResult> {
    let key = &input.key;
    let reference = key.attempt(input.attempt);
    let month = key.month.first_day().as_naive();
    let attempt = i16::try_from(input.attempt).context("attempt number out of range")?;
    ensure_notification(pool, key).await?;

    // An attempt the carrier already answered is answered from the row, never resubmitted.
    let existing = sqlx::query(
        "SELECT status, carrier, carrier_message_id, error_code, failure_category
           FROM sms_attempts WHERE month = $1 AND customer_id = $2 AND attempt = $3",
    )
    .bind(month)
    .bind(key.customer.as_str())
    .bind(attempt)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = &existing {
        if let Some(id) = row.get::<Option<String>, _>("carrier_message_id") {
            return Ok(SubmitResult::Submitted {
                carrier: row.get("carrier"),
                carrier_message_id: id,
            });
        }
        if row.get::<String, _>("status") == "REJECTED" {
            let code: Option<String> = row.get("error_code");
            return Ok(SubmitResult::Rejected {
                category: FailureCategory::from_code(code.as_deref()),
                code: code.unwrap_or_default(),
            });
        }
    }

    let Some(recipient) = load_recipient(pool, &key.customer).await? else {
        return Ok(SubmitResult::UnknownCustomer);
    };
    // Checked at send time, not only when prepared: a STOP during the window wait counts.
    if recipient.opted_out {
        return Ok(SubmitResult::OptedOut);
    }
    let message = deps
        .templates
        .render(recipient.language, &recipient.first_name, key.month);
    let carrier = deps.carrier.name().as_str();
    if existing.is_none() {
        sqlx::query(
            "INSERT INTO sms_attempts (month, customer_id, attempt, message_ref, carrier, phone_e164, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (month, customer_id, attempt) DO NOTHING",
        )
        .bind(month)
        .bind(key.customer.as_str())
        .bind(attempt)
        .bind(reference.to_string())
        .bind(carrier)
        .bind(recipient.phone.as_e164())
        .bind(&message.text)
        .execute(pool)
        .await?;
    }

    // The reference is the carrier's idempotency key: if an earlier execution got the message
    // accepted but died before writing the id, the carrier answers with the same id again.
    let outbound = OutboundSms {
        reference: reference.clone(),
        to: recipient.phone.clone(),
        body: message.text.clone(),
    };
    let mut outcomes = deps
        .carrier
        .submit(std::slice::from_ref(&outbound))
        .await
        .map_err(|err| anyhow::anyhow!("carrier did not take {reference}: {err}"))?;
    let outcome = outcomes
        .pop()
        .context("carrier answered a batch of one with no message")?;
    let mut tx = pool.begin().await?;
    let result = match outcome {
        SubmitOutcome::Accepted { carrier_message_id } => {
            sqlx::query(
                "UPDATE sms_attempts
                    SET status = 'SUBMITTED', carrier_message_id = $4, submitted_at = now()
                  WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND carrier_message_id IS NULL",
            )
            .bind(month)
            .bind(key.customer.as_str())
            .bind(attempt)
            .bind(&carrier_message_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE notifications
                    SET status = 'SUBMITTED', attempts = greatest(attempts, $3), language = $4,
                        encoding = $5, segments = $6, updated_at = now()
                  WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
            )
            .bind(month)
            .bind(key.customer.as_str())
            .bind(attempt)
            .bind(recipient.language.code())
            .bind(message.segments.encoding.as_str())
            .bind(i16::try_from(message.segments.segments).unwrap_or(i16::MAX))
            .execute(&mut *tx)
            .await?;
            SubmitResult::Submitted {
                carrier: carrier.to_owned(),
                carrier_message_id,
            }
        }
        SubmitOutcome::Rejected { code, category, .. } => {
            sqlx::query(
                "UPDATE sms_attempts
                    SET status = 'REJECTED', error_code = $4, failure_category = $5, finished_at = now()
                  WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND status = 'SUBMITTING'",
            )
            .bind(month)
            .bind(key.customer.as_str())
            .bind(attempt)
            .bind(&code)
            .bind(category.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE notifications SET attempts = greatest(attempts, $3), updated_at = now()
                  WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
            )
            .bind(month)
            .bind(key.customer.as_str())
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
            SubmitResult::Rejected { category, code }
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// `PollDeliveryStatus`: the carrier's view of an attempt, stored as a delivery event. A carrier
/// that does not answer is not an error here: the workflow simply polls again later.
pub async fn poll(
    pool: &PgPool,
    deps: &SmsDeps,
    input: &PollInput,
) -> anyhow::Result<Option<DeliveryReport>> {
    let report = match deps.carrier.status(&input.carrier_message_id).await {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(reference = %input.reference, error = %err, "status poll unanswered");
            return Ok(None);
        }
    };
    let inserted = sqlx::query(
        "INSERT INTO delivery_events (carrier, carrier_message_id, status, error_code, message_ref,
                                      workflow_id, attempt, occurred_at, raw, signal_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'status poll', 'NOT_SIGNALLED')
         ON CONFLICT (carrier, carrier_message_id, status) DO NOTHING
         RETURNING id",
    )
    .bind(deps.carrier.name().as_str())
    .bind(&input.carrier_message_id)
    .bind(report.status.as_str())
    .bind(&report.error_code)
    .bind(input.reference.to_string())
    .bind(input.reference.workflow_id())
    .bind(i16::try_from(input.reference.attempt).unwrap_or(i16::MAX))
    .bind(report.occurred_at)
    .fetch_optional(pool)
    .await?;
    Ok(Some(DeliveryReport {
        attempt: input.reference.attempt,
        carrier_message_id: input.carrier_message_id.clone(),
        status: report.status,
        error_code: report.error_code,
        event_id: inserted.map(|row| row.get("id")),
    }))
}

/// `RecordNotification`: the new state (and the ended attempt); a final state also gets its audit
/// entry. Idempotent: a final row is never changed again, the audit entry is keyed.
pub async fn record(pool: &PgPool, input: &RecordInput) -> anyhow::Result<()> {
    let key = &input.key;
    let month = key.month.first_day().as_naive();
    let workflow_id = sms::workflow_id(key.month, &key.customer);
    ensure_notification(pool, key).await?;
    let mut tx = pool.begin().await?;
    if let Some((attempt, outcome)) = input.attempt {
        sqlx::query(
            "UPDATE sms_attempts
                SET status = $4, error_code = coalesce($5, error_code),
                    failure_category = coalesce($6, failure_category), finished_at = now()
              WHERE month = $1 AND customer_id = $2 AND attempt = $3
                AND (finished_at IS NULL OR status = 'REJECTED')",
        )
        .bind(month)
        .bind(key.customer.as_str())
        .bind(i16::try_from(attempt).unwrap_or(i16::MAX))
        .bind(outcome.as_str())
        .bind(&input.error_code)
        .bind(
            input
                .category
                .filter(|_| outcome != AttemptOutcome::Delivered)
                .map(|c| c.as_str()),
        )
        .execute(&mut *tx)
        .await?;
    }
    let is_final = input.state.is_final();
    sqlx::query(
        "UPDATE notifications
            SET status = $3, failure_category = $4, detail = $5, updated_at = now(),
                finished_at = CASE WHEN $6 THEN now() END
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(month)
    .bind(key.customer.as_str())
    .bind(input.state.as_str())
    .bind(input.category.map(|c| c.as_str()))
    .bind(&input.detail)
    .bind(is_final)
    .execute(&mut *tx)
    .await?;
    if is_final {
        let (attempts, manual_retries): (i16, i16) = sqlx::query_as(
            "SELECT attempts, manual_retries FROM notifications WHERE month = $1 AND customer_id = $2",
        )
        .bind(month)
        .bind(key.customer.as_str())
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            &AuditEntry {
                actor: format!("workflow:{}", input.run.workflow_id),
                action: "NOTIFICATION_FINISHED",
                subject_type: "notification",
                subject_id: workflow_id.clone(),
                details: serde_json::json!({
                    "state": input.state.as_str(),
                    "attempts": attempts,
                    "failure_category": input.category.map(|c| c.as_str()),
                    "error_code": input.error_code,
                    "detail": input.detail,
                    "run_id": input.run.run_id,
                }),
                // One entry per ending: the first run's, then one per manual retry.
                idempotency_key: Some(if manual_retries == 0 {
                    format!("notification/{workflow_id}/final")
                } else {
                    format!("notification/{workflow_id}/final/retry-{manual_retries}")
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `CountNotifications`: the month's notifications by state.
pub async fn count(
    pool: &PgPool,
    input: &CountNotificationsInput,
) -> anyhow::Result<NotificationCounts> {
    month_counts(pool, input.month).await
}

/// A month's notifications by state, with the number of qualified customers.
pub async fn month_counts(pool: &PgPool, month: YearMonth) -> anyhow::Result<NotificationCounts> {
    let qualified: i64 =
        sqlx::query_scalar("SELECT count(*) FROM qualifications WHERE month = $1 AND qualified")
            .bind(month.first_day().as_naive())
            .fetch_one(pool)
            .await?;
    Ok(NotificationCounts {
        qualified: u64::try_from(qualified).unwrap_or_default(),
        ..status_counts(pool, month).await?
    })
}

/// A month's notifications by state (`qualified` left 0).
pub async fn status_counts(pool: &PgPool, month: YearMonth) -> anyhow::Result<NotificationCounts> {
    let rows = sqlx::query(
        "SELECT status, count(*) AS n FROM notifications WHERE month = $1 GROUP BY status",
    )
    .bind(month.first_day().as_naive())
    .fetch_all(pool)
    .await?;
    let mut counts = NotificationCounts::default();
    for row in rows {
        let n = u64::try_from(row.get::<i64, _>("n")).unwrap_or_default();
        counts.total += n;
        let slot = match NotificationState::parse(row.get("status")) {
            Some(NotificationState::Pending) => &mut counts.pending,
            Some(NotificationState::WaitingWindow) => &mut counts.waiting_window,
            Some(NotificationState::Submitted) => &mut counts.submitted,
            Some(NotificationState::RetryWait) => &mut counts.retry_wait,
            Some(NotificationState::Delivered) => &mut counts.delivered,
            Some(NotificationState::Failed) => &mut counts.failed,
            Some(NotificationState::Undeliverable) => &mut counts.undeliverable,
            Some(NotificationState::OptedOut) => &mut counts.opted_out,
            Some(NotificationState::Cancelled) => &mut counts.cancelled,
            None => continue,
        };
        *slot += n;
    }
    Ok(counts)
}

/// Options of one SMS workflow start: business id, reuse rejected (a second start of the same
/// customer-month — even after the first finished — is refused by the server), search attributes.
pub fn sms_start_options(
    task_queue: &str,
    month: YearMonth,
    customer: &CustomerId,
    search_attributes: bool,
) -> WorkflowStartOptions {
    let attributes = search_attributes.then(|| {
        SearchAttributes::new([
            search::MONTH.value_set(month.to_string()),
            search::CUSTOMER.value_set(customer.as_str().to_owned()),
            search::NOTIFICATION_STATUS.value_set(NotificationState::Pending.as_str().to_owned()),
        ])
    });
    WorkflowStartOptions::new(task_queue, sms::workflow_id(month, customer))
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .maybe_search_attributes(attributes)
        .build()
}

/// `StartNotifications`: one page of qualified customers → notification rows → SMS workflows.
/// `progress` is called every few starts (the activity heartbeat).
pub async fn start_page<F: std::future::Future<Output = ()>>(
    pool: &PgPool,
    deps: &FanoutDeps,
    input: &StartNotificationsInput,
    progress: impl Fn(u64) -> F,
) -> anyhow::Result<StartNotificationsOutput> {
    let first = input.month.first_day().as_naive();
    let customers: Vec<String> = sqlx::query_scalar(
        "SELECT customer_id FROM qualifications
          WHERE month = $1 AND qualified AND customer_id > $2
          ORDER BY customer_id LIMIT $3",
    )
    .bind(first)
    .bind(input.after.as_ref().map_or("", |c| c.as_str()))
    .bind(i64::from(input.limit))
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = customers
        .iter()
        .map(|c| format!("sms/{}/{c}", input.month))
        .collect();
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id)
         SELECT $1, c, w FROM UNNEST($2::text[], $3::text[]) AS t(c, w)
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(first)
    .bind(&customers)
    .bind(&ids)
    .execute(pool)
    .await?;

    let customers: Vec<CustomerId> = customers
        .iter()
        .map(|c| CustomerId::parse(c))
        .collect::<Result<_, _>>()?;
    let client = Arc::new(deps.client.clone());
    let mut results = stream::iter(customers.iter().cloned())
        .map(|customer| {
            let client = Arc::clone(&client);
            let options = sms_start_options(
                &input.task_queue,
                input.month,
                &customer,
                input.settings.search_attributes,
            );
            let workflow_input = SmsInput {
                month: input.month,
                customer,
                settings: input.settings.clone(),
                first_attempt: 1,
            };
            async move {
                match client
                    .start_workflow(SmsNotificationWorkflow::run, workflow_input, options)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                    Err(err) => Err(anyhow::Error::new(err)),
                }
            }
        })
        .buffer_unordered(deps.concurrency.max(1));
    let mut out = StartNotificationsOutput {
        seen: u64::try_from(customers.len()).unwrap_or_default(),
        last: customers.last().cloned(),
        done: customers.len() < usize::try_from(input.limit).unwrap_or(usize::MAX),
        ..Default::default()
    };
    while let Some(result) = results.next().await {
        if result.context("starting an SMS workflow")? {
            out.started += 1;
        } else {
            out.already_started += 1;
        }
        let handled = out.started + out.already_started;
        if handled.is_multiple_of(50) {
            progress(handled).await;
        }
    }
    Ok(out)
}
