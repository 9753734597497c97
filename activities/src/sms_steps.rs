//! The SMS workflow's steps, run as local activities on the worker: `PrepareNotification`,
//! `SubmitSms` (through the submission gateway), `PollDeliveryStatus`, `RecordNotification`. The
//! tables they change are written through their owner modules (`notifications`, `attempts`,
//! `delivery_events`, `consent`, `audit`); the fan-out that starts the workflows is `fanout`.
//!
//! Idempotency is keyed by business ids in Postgres:
//! - `notifications (month, customer)`: one row per notification, created by the fan-out;
//! - `sms_attempts (month, customer, attempt)` with `message_ref` = the carrier idempotency key:
//!   the row is written before the carrier is called, and an attempt that has a carrier message
//!   id is answered from the row — never submitted again (a reset or a retry sends nothing twice);
//! - the audit entry of a final state carries the key `notification/<workflow id>/final`.

use anyhow::Context as _;
use std::time::Duration;

use pcn_workflows::contracts::{
    DeliveryReport, PollInput, PrepareInput, Prepared, RecordInput, RunRef, SubmitInput,
    SubmitResult,
};
use pcn_workflows::delivery::{FailureCategory, MessageRef};
use pcn_workflows::message::{RenderedMessage, TemplateSet};
use pcn_workflows::sms::{self, NotificationState};
use sqlx::PgPool;

use crate::attempts::{self, Attempt, AttemptStatus, NewAttempt, Resolution};
use crate::audit::{self, AuditEntry};
use crate::breaker::{BreakerSettings, Breakers};
use crate::carrier::{AnyCarrier, OutboundSms, SmsCarrier, SubmitOutcome};
use crate::customers::{self, Recipient};
use crate::gateway::{Gateway, GatewaySettings};
use crate::in_doubt::{self, Verdict};
use crate::metrics::Metrics;
use crate::phone_vault::PhoneVault;
use crate::{consent, delivery_events, failpoint, notifications};

/// What the SMS steps need besides the pool.
pub struct SmsDeps {
    /// The primary carrier.
    pub carrier: AnyCarrier,
    /// The secondary carrier (another adapter), used while the primary's breaker is open.
    pub secondary: Option<AnyCarrier>,
    /// The circuit breaker of each carrier (this worker's view).
    pub breakers: Breakers,
    /// The message templates (validated at load).
    pub templates: TemplateSet,
    /// How the submission gateway gathers and admits.
    pub gateway: GatewaySettings,
    /// The keys of stored phone numbers (recipients are read sealed, attempts written sealed).
    pub phones: PhoneVault,
    /// The gateway, started by the first submission.
    pub(crate) running: std::sync::OnceLock<Gateway>,
}

impl SmsDeps {
    /// The SMS dependencies with `gateway` settings and the phone numbers' keys.
    pub fn with_gateway(
        carrier: AnyCarrier,
        templates: TemplateSet,
        gateway: GatewaySettings,
        phones: PhoneVault,
    ) -> Self {
        Self {
            carrier,
            secondary: None,
            breakers: Breakers::new(BreakerSettings::default()),
            templates,
            gateway,
            phones,
            running: std::sync::OnceLock::new(),
        }
    }

    /// With a secondary carrier for failover, and the breakers' settings.
    pub fn with_failover(
        mut self,
        secondary: Option<AnyCarrier>,
        breaker: BreakerSettings,
    ) -> anyhow::Result<Self> {
        if let Some(secondary) = &secondary {
            anyhow::ensure!(
                secondary.name() != self.carrier.name(),
                "the secondary carrier must be another adapter than the primary ({})",
                self.carrier.name().as_str()
            );
        }
        self.secondary = secondary;
        self.breakers = Breakers::new(breaker);
        Ok(self)
    }

    /// The carrier called `name` (an attempt row's `carrier`); the primary when none is.
    pub fn carrier_named(&self, name: &str) -> &AnyCarrier {
        match &self.secondary {
            Some(secondary) if secondary.name().as_str() == name => secondary,
            _ => &self.carrier,
        }
    }
}

/// `PrepareNotification`: the customer exists, has not opted out, and the message renders;
/// records `input.state` (WAITING_WINDOW) on the notification.
pub async fn prepare(
    pool: &PgPool,
    deps: &SmsDeps,
    input: &PrepareInput,
) -> anyhow::Result<Prepared> {
    notifications::ensure(pool, &input.key).await?;
    let Some(recipient) = customers::recipient(pool, &deps.phones, &input.key.customer).await?
    else {
        return Ok(Prepared::UnknownCustomer);
    };
    if recipient.opted_out {
        return Ok(Prepared::OptedOut);
    }
    let message = deps
        .templates
        .render(recipient.language, &recipient.first_name, input.key.month);
    notifications::mark_prepared(pool, &input.key, input.state, recipient.language, &message)
        .await?;
    Ok(Prepared::Ready {
        segments: message.segments.segments,
    })
}

/// `SubmitSms`: one attempt to the carrier, at most once, against a carrier that does not
/// deduplicate. See [`crate::attempts`] for the claims and [`crate::in_doubt`] for the rule that
/// decides whether an attempt whose last send has no stored answer may go out again.
pub async fn submit(
    pool: &PgPool,
    deps: &SmsDeps,
    metrics: &Metrics,
    input: &SubmitInput,
) -> anyhow::Result<SubmitResult> {
    let key = &input.key;
    let reference = key.attempt(input.attempt);
    notifications::ensure(pool, key).await?;

    // An attempt the carrier already answered is answered from the row, never sent again.
    let existing = attempts::load(pool, &deps.phones, key, input.attempt).await?;
    if let Some(row) = &existing {
        if let Some(id) = &row.carrier_message_id {
            return Ok(SubmitResult::Submitted {
                carrier: row.carrier.clone(),
                carrier_message_id: id.clone(),
            });
        }
        if row.status == AttemptStatus::Rejected {
            let code = row.error_code.clone();
            return Ok(SubmitResult::Rejected {
                category: FailureCategory::from_code(code.as_deref()),
                code: code.unwrap_or_default(),
            });
        }
    }

    // Consent is read right before anything goes out: a STOP during the window wait, or after
    // the fan-out started this workflow, wins.
    let Some(recipient) = customers::recipient(pool, &deps.phones, &key.customer).await? else {
        return Ok(SubmitResult::UnknownCustomer);
    };
    let message = deps
        .templates
        .render(recipient.language, &recipient.first_name, key.month);
    // An attempt stays with the carrier it was first claimed for: one in doubt there is never
    // sent through another before its fate there is known.
    let via = existing
        .as_ref()
        .map_or(&deps.carrier, |row| deps.carrier_named(&row.carrier));
    let carrier = via.name().as_str();
    let run = input.run.clone().unwrap_or_else(|| RunRef {
        workflow_id: reference.workflow_id(),
        run_id: String::new(),
    });
    let (outbound, submission) = match existing {
        None => {
            if recipient.opted_out {
                return Ok(SubmitResult::OptedOut);
            }
            if let Some(deferred) = rate_turn(pool, carrier).await? {
                return Ok(deferred);
            }
            let outbound = OutboundSms {
                reference: reference.clone(),
                to: recipient.phone.clone(),
                body: message.text.clone(),
            };
            let new = NewAttempt {
                reference: &reference,
                carrier,
                phone: &recipient.phone,
                body: &message.text,
            };
            if !attempts::claim_first(pool, &deps.phones, key, &new).await? {
                // Another execution wrote the row a moment ago and is sending: look again soon.
                return Ok(SubmitResult::InDoubt { recheck_secs: 5 });
            }
            (outbound, 1)
        }
        Some(row) if row.status == AttemptStatus::Unsent => {
            if recipient.opted_out {
                return Ok(SubmitResult::OptedOut);
            }
            if let Some(deferred) = rate_turn(pool, carrier).await? {
                return Ok(deferred);
            }
            let Some(submission) = attempts::claim_unsent(pool, key, input.attempt).await? else {
                return Ok(SubmitResult::InDoubt { recheck_secs: 5 });
            };
            (stored_message(&reference, &row)?, submission)
        }
        Some(row) => {
            // In doubt: the carrier may have it.
            let outbound = stored_message(&reference, &row)?;
            let period = Duration::from_secs(input.reconcile_secs);
            let verdict =
                in_doubt::judge(pool, via, &row, &outbound, &input.reported_ids, period).await?;
            let doubt = attempts::InDoubt {
                key,
                attempt: input.attempt,
                submission: row.submissions,
                waited: row.since_last_send,
                run: &run,
            };
            match verdict {
                Verdict::Wait(left) => {
                    return Ok(SubmitResult::InDoubt {
                        recheck_secs: left.as_secs().max(1),
                    });
                }
                Verdict::Adopt {
                    carrier_message_id,
                    evidence,
                } => {
                    let mut tx = pool.begin().await?;
                    let adopted =
                        attempts::adopt(&mut tx, &doubt, &carrier_message_id, evidence).await?;
                    if adopted {
                        let id = &carrier_message_id;
                        with_carrier_id(&mut tx, input, carrier, id, &recipient, &message).await?;
                    }
                    tx.commit().await?;
                    if !adopted {
                        return Ok(SubmitResult::InDoubt { recheck_secs: 1 });
                    }
                    count_resolution(metrics, evidence);
                    tracing::warn!(%reference, resolution = evidence.as_str(), waited_secs = row.since_last_send.as_secs(), "in-doubt SMS attempt adopted: the carrier has it");
                    return Ok(SubmitResult::Submitted {
                        carrier: carrier.to_owned(),
                        carrier_message_id,
                    });
                }
                Verdict::Resend => {
                    let mut tx = pool.begin().await?;
                    if recipient.opted_out {
                        attempts::abandon(&mut tx, &doubt).await?;
                        tx.commit().await?;
                        count_resolution(metrics, Resolution::Abandoned);
                        return Ok(SubmitResult::OptedOut);
                    }
                    if let Some(deferred) = rate_turn(pool, carrier).await? {
                        tx.rollback().await?;
                        return Ok(deferred);
                    }
                    let claimed = attempts::claim_resend(&mut tx, &doubt, period).await?;
                    tx.commit().await?;
                    let Some(submission) = claimed else {
                        return Ok(SubmitResult::InDoubt { recheck_secs: 5 });
                    };
                    count_resolution(metrics, Resolution::Resubmitted);
                    tracing::warn!(%reference, submission, waited_secs = row.since_last_send.as_secs(), "in-doubt SMS attempt: no evidence within the reconciliation period; sending again under the same reference");
                    (outbound, submission)
                }
            }
        }
    };
    failpoint::hit(failpoint::SUBMIT_AFTER_ATTEMPT_ROW);
    let sent = Sent {
        outbound: &outbound,
        submission,
        recipient: &recipient,
        message: &message,
    };
    send(pool, deps, via, metrics, input, sent).await
}

/// The single path takes its message from the carrier's shared rate like a batch does, before
/// anything is claimed: `Some(Deferred)` when its turn has not come (nothing claimed or sent).
async fn rate_turn(pool: &PgPool, carrier: &str) -> anyhow::Result<Option<SubmitResult>> {
    let grant = crate::budget::take(pool, carrier, 1).await?;
    Ok((grant.granted == 0).then(|| SubmitResult::Deferred {
        retry_secs: grant.turn_of(1).max(1),
    }))
}

fn count_resolution(metrics: &Metrics, resolution: Resolution) {
    metrics
        .sms_in_doubt_resolutions
        .with_label_values(&[&resolution.as_str().to_lowercase()])
        .inc();
}

/// The message an attempt row holds: what was (maybe) sent is what is confirmed or sent again.
fn stored_message(reference: &MessageRef, row: &Attempt) -> anyhow::Result<OutboundSms> {
    Ok(OutboundSms {
        reference: reference.clone(),
        to: row.phone.clone(),
        body: row.body.clone(),
    })
}

/// What one send of a claimed attempt sends.
struct Sent<'a> {
    outbound: &'a OutboundSms,
    submission: i16,
    recipient: &'a Recipient,
    message: &'a RenderedMessage,
}

/// One send of a claimed attempt, and what its answer means for the row.
async fn send(
    pool: &PgPool,
    deps: &SmsDeps,
    via: &AnyCarrier,
    metrics: &Metrics,
    input: &SubmitInput,
    sent: Sent<'_>,
) -> anyhow::Result<SubmitResult> {
    let Sent {
        outbound,
        submission,
        recipient,
        message,
    } = sent;
    let key = &input.key;
    let reference = &outbound.reference;
    let answer = via.submit(std::slice::from_ref(outbound)).await;
    let outcome = match answer {
        Ok(mut outcomes) if outcomes.len() == 1 => outcomes.pop().context("one outcome")?,
        Ok(_) => {
            metrics.sms_in_doubt.inc();
            tracing::warn!(%reference, "carrier answered a batch of one with no message: in doubt");
            return Ok(SubmitResult::InDoubt {
                recheck_secs: input.reconcile_secs.max(1),
            });
        }
        Err(err) if err.certainly_not_taken() => {
            attempts::mark_unsent(pool, key, input.attempt, submission).await?;
            anyhow::bail!("carrier did not take {reference}: {err}");
        }
        Err(err) => {
            metrics.sms_in_doubt.inc();
            tracing::warn!(%reference, error = %err, "SMS submission in doubt: the carrier may have it; resolving by evidence, not by sending again");
            return Ok(SubmitResult::InDoubt {
                recheck_secs: input.reconcile_secs.max(1),
            });
        }
    };
    let carrier = via.name().as_str();
    match outcome {
        SubmitOutcome::Accepted { carrier_message_id } => {
            failpoint::hit(failpoint::SUBMIT_AFTER_CARRIER_ACCEPT);
            let mut tx = pool.begin().await?;
            let stored =
                attempts::store_accepted(&mut tx, key, input.attempt, &carrier_message_id).await?;
            if stored {
                let id = &carrier_message_id;
                with_carrier_id(&mut tx, input, carrier, id, recipient, message).await?;
            }
            tx.commit().await?;
            failpoint::hit(failpoint::SUBMIT_AFTER_ID_STORED);
            if !stored {
                // Another execution stored an id first (it adopted this very message): use it.
                let row = attempts::load(pool, &deps.phones, key, input.attempt)
                    .await?
                    .context("attempt row vanished")?;
                let id = row
                    .carrier_message_id
                    .context("attempt neither stored nor adopted")?;
                return Ok(SubmitResult::Submitted {
                    carrier: row.carrier,
                    carrier_message_id: id,
                });
            }
            Ok(SubmitResult::Submitted {
                carrier: carrier.to_owned(),
                carrier_message_id,
            })
        }
        SubmitOutcome::Rejected { code, category, .. } => {
            let mut tx = pool.begin().await?;
            attempts::store_rejected(&mut tx, key, input.attempt, &code, category).await?;
            notifications::count_attempt(&mut tx, key, input.attempt).await?;
            tx.commit().await?;
            Ok(SubmitResult::Rejected { category, code })
        }
    }
}

/// Once the attempt's carrier id is stored (sent, or adopted from evidence): the notification is
/// SUBMITTED, and reports of the reference that name another id are flagged FOREIGN.
async fn with_carrier_id(
    conn: &mut sqlx::PgConnection,
    input: &SubmitInput,
    carrier: &str,
    carrier_message_id: &str,
    recipient: &Recipient,
    message: &RenderedMessage,
) -> anyhow::Result<()> {
    notifications::mark_submitted(conn, &input.key, input.attempt, recipient.language, message)
        .await?;
    delivery_events::flag_others_foreign(
        conn,
        carrier,
        &input.key.attempt(input.attempt).to_string(),
        carrier_message_id,
    )
    .await?;
    Ok(())
}

/// `PollDeliveryStatus`: the carrier's view of an attempt, stored as a delivery event. A carrier
/// that does not answer is not an error here: the workflow simply polls again later.
pub async fn poll(
    pool: &PgPool,
    deps: &SmsDeps,
    input: &PollInput,
) -> anyhow::Result<Option<DeliveryReport>> {
    // Asked of the carrier that has the attempt (after a failover, the secondary).
    let carrier = attempts::carrier_of(pool, &input.reference.to_string()).await?;
    let via = carrier.map_or(&deps.carrier, |name| deps.carrier_named(&name));
    let report = match via.status(&input.carrier_message_id).await {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(reference = %input.reference, error = %err, "status poll unanswered");
            return Ok(None);
        }
    };
    let event_id = delivery_events::store_poll_answer(
        pool,
        via.name(),
        &input.carrier_message_id,
        report.status,
        report.error_code.as_deref(),
        &input.reference,
        report.occurred_at,
    )
    .await?;
    Ok(Some(DeliveryReport {
        attempt: input.reference.attempt,
        carrier_message_id: input.carrier_message_id.clone(),
        status: report.status,
        error_code: report.error_code,
        event_id,
    }))
}

/// `RecordNotification`: the new state (and the ended attempt); a final state also gets its audit
/// entry. Idempotent: a final row is never changed again, the audit entry is keyed. Returns the
/// final state when this call made the row final (a repeated call returns `None`).
pub async fn record(
    pool: &PgPool,
    input: &RecordInput,
) -> anyhow::Result<Option<NotificationState>> {
    let key = &input.key;
    let workflow_id = sms::workflow_id(key.month, &key.customer);
    notifications::ensure(pool, key).await?;
    let mut tx = pool.begin().await?;
    if let Some((attempt, outcome)) = input.attempt {
        attempts::finish(
            &mut tx,
            key,
            attempt,
            outcome,
            input.error_code.as_deref(),
            input.category,
        )
        .await?;
    }
    if input.state == NotificationState::OptedOut
        && input.category == Some(FailureCategory::OptedOut)
    {
        // The carrier refused the message because the recipient unsubscribed there: that is
        // consent withdrawn, for every future message too.
        let reference = input
            .attempt
            .map(|(attempt, _)| key.attempt(attempt).to_string());
        let actor = format!("workflow:{workflow_id}");
        let reason = format!(
            "carrier error {}: recipient unsubscribed",
            input.error_code.as_deref().unwrap_or("?")
        );
        let fact = consent::Fact {
            customer: key.customer.as_str(),
            source: consent::Source::CarrierError,
            actor: &actor,
            reason: Some(&reason),
            carrier_message_id: reference.as_deref(),
            idempotency_key: Some(format!(
                "carrier-error/{}",
                reference.as_deref().unwrap_or(&workflow_id)
            )),
        };
        consent::opt_out(&mut tx, &fact).await?;
    }
    let is_final = input.state.is_final();
    let changed = notifications::set_state(
        &mut tx,
        key,
        input.state,
        input.category,
        input.detail.as_deref(),
    )
    .await?;
    if is_final {
        let (attempts, manual_retries) = notifications::tallies(&mut tx, key).await?;
        failpoint::hit(failpoint::RECORD_BEFORE_AUDIT);
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
    Ok((is_final && changed).then_some(input.state))
}
