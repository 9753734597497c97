//! The owner of `delivery_events`: every statement that writes it, and the reads its rules
//! need. Callbacks are stored in batches (the webhook's writer), a status poll's answer one at a
//! time (the SMS steps), the dispatcher marks what it signalled and reads what is still pending;
//! the evidence for an attempt in doubt and the FOREIGN flag of a report that names our reference
//! but not the carrier id of that attempt.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pcn_workflows::contracts::DeliveryReport;
use pcn_workflows::delivery::{DeliveryStatus, MessageRef};
use pcn_workflows::vocabulary::SignalState;
use sqlx::{PgPool, Row as _};

use crate::carrier::CarrierKind;
use crate::carrier::events::CarrierEvent;

/// A callback to store, with its raw body.
pub struct NewCallback<'a> {
    /// The parsed event.
    pub event: &'a CarrierEvent,
    /// The body as received (kept as evidence).
    pub raw: &'a str,
}

/// A stored callback, as the insert returns it (a duplicate of one stored before returns nothing).
#[derive(Debug, sqlx::FromRow)]
pub struct StoredCallback {
    /// Row id.
    pub id: i64,
    /// The carrier's spelling.
    pub carrier: String,
    /// The carrier's id of the message.
    pub carrier_message_id: String,
    /// The status reported.
    pub status: String,
    /// PENDING (to be signalled) or NOT_SIGNALLED ([`SignalState`]'s spelling).
    pub signal_state: String,
    /// FOREIGN when it names another carrier id than its attempt's.
    pub flag: Option<String>,
}

/// Stores a batch of callbacks in one statement. An event whose reference names an attempt that
/// holds another carrier id is about another message: stored FOREIGN and never signalled. Final
/// events are PENDING (to be signalled), progress reports NOT_SIGNALLED. A callback stored before
/// (same carrier, carrier id and status) is not stored again.
pub async fn store_callbacks(
    pool: &PgPool,
    batch: &[NewCallback<'_>],
) -> anyhow::Result<Vec<StoredCallback>> {
    let mut carriers = Vec::with_capacity(batch.len());
    let mut ids = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut codes = Vec::with_capacity(batch.len());
    let mut refs = Vec::with_capacity(batch.len());
    let mut workflows = Vec::with_capacity(batch.len());
    let mut attempts = Vec::with_capacity(batch.len());
    let mut occurred = Vec::with_capacity(batch.len());
    let mut raws = Vec::with_capacity(batch.len());
    let mut finals = Vec::with_capacity(batch.len());
    for request in batch {
        let e = request.event;
        carriers.push(e.carrier.as_str().to_owned());
        ids.push(e.carrier_message_id.clone());
        statuses.push(e.status.as_str().to_owned());
        codes.push(e.error_code.clone());
        refs.push(e.reference.to_string());
        workflows.push(e.reference.workflow_id());
        attempts.push(i16::try_from(e.reference.attempt).unwrap_or(i16::MAX));
        occurred.push(e.occurred_at);
        raws.push(request.raw.to_owned());
        finals.push(e.status.is_final());
    }
    let rows = sqlx::query_as::<_, StoredCallback>(
        "INSERT INTO delivery_events (carrier, carrier_message_id, status, error_code, message_ref,
                                      workflow_id, attempt, occurred_at, raw, signal_state, flag)
         SELECT u.carrier, u.id, u.status, u.code, u.ref, u.workflow, u.attempt, u.occurred, u.raw,
                CASE WHEN foreign_id THEN 'NOT_SIGNALLED'
                     WHEN u.final THEN 'PENDING' ELSE 'NOT_SIGNALLED' END,
                CASE WHEN foreign_id THEN 'FOREIGN' END
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::int2[], $8::timestamptz[], $9::text[], $10::bool[])
                AS u(carrier, id, status, code, ref, workflow, attempt, occurred, raw, final)
           LEFT JOIN sms_attempts a ON a.message_ref = u.ref
           CROSS JOIN LATERAL (SELECT a.carrier_message_id IS NOT NULL
                                      AND a.carrier_message_id <> u.id AS foreign_id) f
         ON CONFLICT (carrier, carrier_message_id, status) DO NOTHING
         RETURNING id, carrier, carrier_message_id, status, signal_state, flag",
    )
    .bind(&carriers)
    .bind(&ids)
    .bind(&statuses)
    .bind(&codes)
    .bind(&refs)
    .bind(&workflows)
    .bind(&attempts)
    .bind(&occurred)
    .bind(&raws)
    .bind(&finals)
    .fetch_all(pool)
    .await
    .context("storing delivery events")?;
    Ok(rows)
}

/// Stores the answer of a status poll (never signalled: the polling workflow has it). Returns
/// its row id, or `None` when the same status of that message was stored before.
#[allow(clippy::too_many_arguments)]
pub async fn store_poll_answer(
    pool: &PgPool,
    carrier: CarrierKind,
    carrier_message_id: &str,
    status: DeliveryStatus,
    error_code: Option<&str>,
    reference: &MessageRef,
    occurred_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Option<i64>> {
    let inserted = sqlx::query(
        "INSERT INTO delivery_events (carrier, carrier_message_id, status, error_code, message_ref,
                                      workflow_id, attempt, occurred_at, raw, signal_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'status poll', 'NOT_SIGNALLED')
         ON CONFLICT (carrier, carrier_message_id, status) DO NOTHING
         RETURNING id",
    )
    .bind(carrier.as_str())
    .bind(carrier_message_id)
    .bind(status.as_str())
    .bind(error_code)
    .bind(reference.to_string())
    .bind(reference.workflow_id())
    .bind(i16::try_from(reference.attempt).unwrap_or(i16::MAX))
    .bind(occurred_at)
    .fetch_optional(pool)
    .await?;
    Ok(inserted.map(|row| row.get("id")))
}

impl StoredCallback {
    /// Whether the dispatcher is to signal it.
    pub fn is_pending(&self) -> bool {
        SignalState::parse(&self.signal_state) == Some(SignalState::Pending)
    }
}

/// What signalling one event did: SIGNALLED, WORKFLOW_CLOSED, or still PENDING with the error.
pub struct Dispatched {
    /// Row id.
    pub id: i64,
    /// `Ok(Signalled | WorkflowClosed)` or the error that leaves it PENDING.
    pub outcome: Result<SignalState, String>,
}

/// Marks what the dispatcher did with each event (one statement); only PENDING rows change.
pub async fn mark_dispatched(pool: &PgPool, chunk: &[Dispatched]) -> sqlx::Result<()> {
    let mut ids = Vec::with_capacity(chunk.len());
    let mut states = Vec::with_capacity(chunk.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(chunk.len());
    for d in chunk {
        ids.push(d.id);
        match &d.outcome {
            Ok(state) => {
                states.push(state.as_str());
                errors.push(None);
            }
            Err(err) => {
                states.push(SignalState::Pending.as_str());
                errors.push(Some(err.clone()));
            }
        }
    }
    sqlx::query(
        "UPDATE delivery_events e
            SET signal_state = u.state,
                signalled_at = CASE WHEN u.state = 'PENDING' THEN NULL ELSE now() END,
                signal_attempts = e.signal_attempts + 1,
                last_signal_error = u.error
           FROM UNNEST($1::int8[], $2::text[], $3::text[]) AS u(id, state, error)
          WHERE e.id = u.id AND e.signal_state = 'PENDING'",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&errors)
    .execute(pool)
    .await?;
    Ok(())
}

/// A stored event still to be signalled: its row id, its workflow and the signal's payload.
pub struct Pending {
    /// Row id.
    pub id: i64,
    /// The SMS workflow.
    pub workflow_id: String,
    /// The `delivery` signal's payload.
    pub report: DeliveryReport,
}

/// How many events are stored but not yet signalled (the reconciler's backlog; the partial index
/// `delivery_events_pending_idx` keeps this cheap while the backlog is small).
pub async fn pending_count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING'")
        .fetch_one(pool)
        .await
}

/// The oldest events still PENDING that were stored more than `grace` ago (at most `limit`).
pub async fn pending(
    pool: &PgPool,
    grace: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT id, workflow_id, attempt, carrier_message_id, status, error_code
           FROM delivery_events
          WHERE signal_state = 'PENDING' AND received_at < now() - make_interval(secs => $1)
          ORDER BY id LIMIT $2",
    )
    .bind(grace.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let status = DeliveryStatus::parse(row.get("status")).ok()?;
            let id: i64 = row.get("id");
            Some(Pending {
                id,
                workflow_id: row.get("workflow_id"),
                report: DeliveryReport {
                    attempt: u32::try_from(row.get::<i16, _>("attempt")).unwrap_or_default(),
                    carrier_message_id: row.get("carrier_message_id"),
                    status,
                    error_code: row.get("error_code"),
                    event_id: Some(id),
                },
            })
        })
        .collect())
}

/// The carrier ids that stored delivery events of `reference` name (not those already flagged
/// FOREIGN), oldest first.
pub async fn carrier_ids_for(
    pool: &PgPool,
    carrier: &str,
    reference: &str,
) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT carrier_message_id FROM delivery_events
          WHERE message_ref = $1 AND carrier = $2 AND flag IS NULL
          GROUP BY carrier_message_id ORDER BY min(id)",
    )
    .bind(reference)
    .bind(carrier)
    .fetch_all(pool)
    .await?)
}

/// Flags the events of `reference` that name `carrier_message_id` as FOREIGN: kept, never
/// applied.
pub async fn flag_foreign(
    pool: &PgPool,
    carrier: &str,
    reference: &str,
    carrier_message_id: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE delivery_events SET flag = 'FOREIGN'
          WHERE message_ref = $1 AND carrier = $2 AND carrier_message_id = $3 AND flag IS NULL",
    )
    .bind(reference)
    .bind(carrier)
    .bind(carrier_message_id)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Once an attempt's carrier id is known, flags the events of its reference that name any other
/// id as FOREIGN (a report that overtook the submission and turned out to be about another
/// message).
pub async fn flag_others_foreign(
    conn: &mut sqlx::PgConnection,
    carrier: &str,
    reference: &str,
    carrier_message_id: &str,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE delivery_events SET flag = 'FOREIGN'
          WHERE message_ref = $1 AND carrier = $2 AND carrier_message_id <> $3 AND flag IS NULL",
    )
    .bind(reference)
    .bind(carrier)
    .bind(carrier_message_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// [`flag_others_foreign`] for a batch of `(reference, carrier id)` pairs.
pub async fn flag_others_foreign_many(
    conn: &mut sqlx::PgConnection,
    carrier: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<u64> {
    let (references, ids): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
    Ok(sqlx::query(
        "UPDATE delivery_events e SET flag = 'FOREIGN'
           FROM UNNEST($1::text[], $2::text[]) AS u(message_ref, id)
          WHERE e.message_ref = u.message_ref AND e.carrier = $3
            AND e.carrier_message_id <> u.id AND e.flag IS NULL",
    )
    .bind(&references)
    .bind(&ids)
    .bind(carrier)
    .execute(conn)
    .await?
    .rows_affected())
}
