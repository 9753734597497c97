//! The owner of `sms_attempts` and `in_doubt_resolutions`: every statement that writes them, and
//! the rules that keep one attempt reference from reaching the carrier twice.
//!
//! An attempt row moves through
//!
//! ```text
//!   (none) ──claim_first──► SUBMITTING ──store_accepted──► SUBMITTED ──finish──► outcome
//!                             │   ▲  └─store_rejected──► REJECTED
//!            mark_unsent ◄────┘   └──claim_unsent── UNSENT
//!            (certainly not with the carrier)
//! ```
//!
//! A SUBMITTING row without a carrier id is **in doubt**: some execution sent (or was about to
//! send) it and no answer was stored. Nothing sends it again but [`claim_resend`], after the
//! resolution rule (`in_doubt`) found no evidence within the reconciliation period, and
//! [`adopt`] ends the doubt when evidence was found. Every claim is a compare-and-set, so of
//! several executions racing (a local activity that outlived its workflow task, a restarted
//! worker) exactly one sends.
//!
//! Over 600 lines on purpose: the owner of `sms_attempts` and `in_doubt_resolutions` — every rule
//! of at-most-once submission in one module, with its unit tests.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pcn_workflows::contracts::{AttemptOutcome, NotificationKey, RunRef};
use pcn_workflows::delivery::{FailureCategory, MessageRef};
use pcn_workflows::domain::Phone;
use sqlx::{PgConnection, PgPool, Row};

use crate::audit::{self, AuditEntry};
use crate::phone_vault::{Context, PhoneVault};

/// Stored status of an attempt (`sms_attempts.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// The last try certainly did not reach the carrier: may be sent at once.
    Unsent,
    /// Sent or about to be; without a carrier id: in doubt.
    Submitting,
    /// The carrier took it (has a carrier id).
    Submitted,
    /// The carrier refused it at submission.
    Rejected,
    /// Ended: the attempt's outcome.
    Ended(AttemptOutcome),
}

impl AttemptStatus {
    /// Every stored spelling but the outcomes'.
    const OWN: [(Self, &'static str); 4] = [
        (Self::Unsent, "UNSENT"),
        (Self::Submitting, "SUBMITTING"),
        (Self::Submitted, "SUBMITTED"),
        (Self::Rejected, "REJECTED"),
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ended(outcome) => outcome.as_str(),
            own => Self::OWN
                .iter()
                .find(|(s, _)| *s == own)
                .map_or("UNKNOWN", |(_, text)| text),
        }
    }

    /// Every stored spelling (the CHECK list of `sms_attempts.status`).
    pub fn spellings() -> Vec<&'static str> {
        Self::OWN
            .iter()
            .map(|(_, text)| *text)
            .chain(AttemptOutcome::ALL.iter().map(|o| o.as_str()))
            .collect()
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::OWN
            .iter()
            .find(|(_, text)| *text == s)
            .map(|(status, _)| *status)
            .or_else(|| AttemptOutcome::parse(s).map(Self::Ended))
    }
}

/// How an in-doubt attempt was resolved (`in_doubt_resolutions.resolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A stored delivery event named the reference; the carrier confirmed its id.
    AdoptedCallback,
    /// A delivery signal the workflow had received named it; the carrier confirmed its id.
    AdoptedSignal,
    /// The carrier's message list (Twilio) showed the message.
    AdoptedLookup,
    /// Nothing found within the reconciliation period: sent again, same reference.
    Resubmitted,
    /// The customer opted out meanwhile: not sent again.
    Abandoned,
}

impl Resolution {
    /// Every resolution.
    pub const ALL: [Self; 5] = [
        Self::AdoptedCallback,
        Self::AdoptedSignal,
        Self::AdoptedLookup,
        Self::Resubmitted,
        Self::Abandoned,
    ];

    /// The stored spelling (also the metric label, lower-cased).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdoptedCallback => "ADOPTED_CALLBACK",
            Self::AdoptedSignal => "ADOPTED_SIGNAL",
            Self::AdoptedLookup => "ADOPTED_LOOKUP",
            Self::Resubmitted => "RESUBMITTED",
            Self::Abandoned => "ABANDONED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One attempt as stored.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Its status.
    pub status: AttemptStatus,
    /// Carrier name (`generic`, `twilio`).
    pub carrier: String,
    /// The carrier's id, once known.
    pub carrier_message_id: Option<String>,
    /// The carrier's refusal code.
    pub error_code: Option<String>,
    /// Sends of the reference so far.
    pub submissions: i16,
    /// Time since the last send (database clock): how long it has been in doubt.
    pub since_last_send: Duration,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// The recipient the attempt was (or will be) sent to (opened from `phone_sealed`).
    pub phone: Phone,
    /// The text sent.
    pub body: String,
}

impl Attempt {
    /// Whether some execution may have reached the carrier without the answer being stored.
    pub fn in_doubt(&self) -> bool {
        self.status == AttemptStatus::Submitting && self.carrier_message_id.is_none()
    }
}

/// The recipient of an attempt row (sealed, or in clear for a row from before encryption).
fn phone_of(phones: &PhoneVault, row: &sqlx::postgres::PgRow) -> anyhow::Result<Phone> {
    let reference: String = row.get("message_ref");
    Ok(phones.reveal(
        row.get("phone_key_id"),
        row.get("phone_sealed"),
        row.get("phone_e164"),
        Context::Attempt(&reference),
    )?)
}

fn month_of(key: &NotificationKey) -> chrono::NaiveDate {
    key.month.first_day().as_naive()
}

fn attempt_no(attempt: u32) -> anyhow::Result<i16> {
    i16::try_from(attempt)
        .ok()
        .filter(|a| (1..=999).contains(a))
        .ok_or_else(|| anyhow::anyhow!("attempt number {attempt} out of range 1..=999"))
}

/// The attempt row, if written.
pub async fn load(
    pool: &PgPool,
    phones: &PhoneVault,
    key: &NotificationKey,
    attempt: u32,
) -> anyhow::Result<Option<Attempt>> {
    let row = sqlx::query(
        "SELECT status, carrier, carrier_message_id, error_code, submissions, created_at,
                message_ref, phone_key_id, phone_sealed, phone_e164, body,
                greatest(extract(epoch FROM now() - last_submitted_at), 0)::float8 AS since_secs
           FROM sms_attempts WHERE month = $1 AND customer_id = $2 AND attempt = $3",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: String = row.get("status");
    Ok(Some(Attempt {
        status: AttemptStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown attempt status {status:?}"))?,
        carrier: row.get("carrier"),
        carrier_message_id: row.get("carrier_message_id"),
        error_code: row.get("error_code"),
        submissions: row.get("submissions"),
        since_last_send: Duration::from_secs_f64(row.get::<f64, _>("since_secs")),
        created_at: row.get("created_at"),
        phone: phone_of(phones, &row)?,
        body: row.get("body"),
    }))
}

/// What a first send writes.
pub struct NewAttempt<'a> {
    /// The attempt's reference.
    pub reference: &'a MessageRef,
    /// Carrier name.
    pub carrier: &'a str,
    /// Recipient (stored sealed).
    pub phone: &'a Phone,
    /// The rendered text.
    pub body: &'a str,
}

/// Claims the first send of an attempt: writes its row (SUBMITTING, 1 submission). False when
/// the row exists already (another execution claimed it).
pub async fn claim_first(
    pool: &PgPool,
    phones: &PhoneVault,
    key: &NotificationKey,
    new: &NewAttempt<'_>,
) -> anyhow::Result<bool> {
    let reference = new.reference.to_string();
    let phone = phones.seal(new.phone, Context::Attempt(&reference));
    let inserted = sqlx::query(
        "INSERT INTO sms_attempts (month, customer_id, attempt, message_ref, carrier,
                                   phone_key_id, phone_sealed, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (month, customer_id, attempt) DO NOTHING",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(new.reference.attempt)?)
    .bind(&reference)
    .bind(new.carrier)
    .bind(&phone.key_id)
    .bind(&phone.sealed)
    .bind(new.body)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Claims a send of an UNSENT attempt (the last try certainly did not reach the carrier). The
/// submission number is unchanged: the last one never arrived. None when another execution won.
pub async fn claim_unsent(
    pool: &PgPool,
    key: &NotificationKey,
    attempt: u32,
) -> anyhow::Result<Option<i16>> {
    Ok(sqlx::query_scalar(
        "UPDATE sms_attempts SET status = 'SUBMITTING', last_submitted_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND status = 'UNSENT'
          RETURNING submissions",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .fetch_optional(pool)
    .await?)
}

/// Records that the last try of `submission` certainly did not reach the carrier (connection
/// refused, a refusal of the whole request): the next execution may send at once.
pub async fn mark_unsent(
    pool: &PgPool,
    key: &NotificationKey,
    attempt: u32,
    submission: i16,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sms_attempts SET status = 'UNSENT'
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND status = 'SUBMITTING'
            AND carrier_message_id IS NULL AND submissions = $4",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .bind(submission)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores the carrier id of an accepted send. False when the row has an id already (it is then
/// the one to use: reload).
pub async fn store_accepted(
    conn: &mut PgConnection,
    key: &NotificationKey,
    attempt: u32,
    carrier_message_id: &str,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE sms_attempts
            SET status = 'SUBMITTED', carrier_message_id = $4, submitted_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND carrier_message_id IS NULL
            AND status IN ('SUBMITTING', 'UNSENT')",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .bind(carrier_message_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Stores a refusal at submission.
pub async fn store_rejected(
    conn: &mut PgConnection,
    key: &NotificationKey,
    attempt: u32,
    code: &str,
    category: FailureCategory,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sms_attempts
            SET status = 'REJECTED', error_code = $4, failure_category = $5, finished_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND status IN ('SUBMITTING', 'UNSENT')",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .bind(code)
    .bind(category.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how an attempt ended (a final report, no confirmation, a cancel). A refused attempt
/// keeps its refusal's finish time; an ended one is not changed again.
pub async fn finish(
    conn: &mut PgConnection,
    key: &NotificationKey,
    attempt: u32,
    outcome: AttemptOutcome,
    error_code: Option<&str>,
    category: Option<FailureCategory>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sms_attempts
            SET status = $4, error_code = coalesce($5, error_code),
                failure_category = coalesce($6, failure_category), finished_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3
            AND (finished_at IS NULL OR status = 'REJECTED')",
    )
    .bind(month_of(key))
    .bind(key.customer.as_str())
    .bind(attempt_no(attempt)?)
    .bind(outcome.as_str())
    .bind(error_code)
    .bind(
        category
            .filter(|_| outcome != AttemptOutcome::Delivered)
            .map(|c| c.as_str()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Who resolves an in-doubt attempt, and which send was in doubt.
pub struct InDoubt<'a> {
    /// The notification.
    pub key: &'a NotificationKey,
    /// The attempt.
    pub attempt: u32,
    /// `submissions` when the doubt was observed.
    pub submission: i16,
    /// How long it had been in doubt.
    pub waited: Duration,
    /// The workflow run resolving it.
    pub run: &'a RunRef,
}

/// Ends the doubt with evidence: stores `carrier_message_id` on the attempt and writes the
/// resolution row and its audit entry, in `conn`'s transaction. False when the attempt is no
/// longer in doubt (another execution resolved it): reload.
pub async fn adopt(
    conn: &mut PgConnection,
    doubt: &InDoubt<'_>,
    carrier_message_id: &str,
    resolution: Resolution,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE sms_attempts
            SET status = 'SUBMITTED', carrier_message_id = $4, submitted_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND carrier_message_id IS NULL
            AND status = 'SUBMITTING' AND submissions = $5",
    )
    .bind(month_of(doubt.key))
    .bind(doubt.key.customer.as_str())
    .bind(attempt_no(doubt.attempt)?)
    .bind(carrier_message_id)
    .bind(doubt.submission)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Ok(false);
    }
    record_resolution(conn, doubt, resolution, Some(carrier_message_id)).await?;
    Ok(true)
}

/// Claims a resend of an in-doubt attempt whose reconciliation period (`period`, counted from
/// its last send) passed without evidence: `submissions + 1`, and the RESUBMITTED resolution with
/// its audit entry, in `conn`'s transaction. None when another execution claimed it or the
/// period has not passed by the database's clock.
pub async fn claim_resend(
    conn: &mut PgConnection,
    doubt: &InDoubt<'_>,
    period: Duration,
) -> anyhow::Result<Option<i16>> {
    let claimed: Option<i16> = sqlx::query_scalar(
        "UPDATE sms_attempts SET submissions = submissions + 1, last_submitted_at = now()
          WHERE month = $1 AND customer_id = $2 AND attempt = $3 AND carrier_message_id IS NULL
            AND status = 'SUBMITTING' AND submissions = $4
            AND last_submitted_at <= now() - make_interval(secs => $5)
          RETURNING submissions",
    )
    .bind(month_of(doubt.key))
    .bind(doubt.key.customer.as_str())
    .bind(attempt_no(doubt.attempt)?)
    .bind(doubt.submission)
    .bind(period.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        record_resolution(conn, doubt, Resolution::Resubmitted, None).await?;
    }
    Ok(claimed)
}

/// Records that an in-doubt attempt is not sent again because the customer opted out meanwhile.
pub async fn abandon(conn: &mut PgConnection, doubt: &InDoubt<'_>) -> anyhow::Result<()> {
    record_resolution(conn, doubt, Resolution::Abandoned, None).await?;
    Ok(())
}

/// The resolution row and its audit entry (both keyed: once per send in doubt).
async fn record_resolution(
    conn: &mut PgConnection,
    doubt: &InDoubt<'_>,
    resolution: Resolution,
    carrier_message_id: Option<&str>,
) -> anyhow::Result<()> {
    let reference = doubt.key.attempt(doubt.attempt);
    let inserted = sqlx::query(
        "INSERT INTO in_doubt_resolutions (month, customer_id, attempt, message_ref, submission,
                                           resolution, carrier_message_id, waited, workflow_id, run_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, make_interval(secs => $8), $9, $10)
         ON CONFLICT (message_ref, submission) DO NOTHING",
    )
    .bind(month_of(doubt.key))
    .bind(doubt.key.customer.as_str())
    .bind(attempt_no(doubt.attempt)?)
    .bind(reference.to_string())
    .bind(doubt.submission)
    .bind(resolution.as_str())
    .bind(carrier_message_id)
    .bind(doubt.waited.as_secs_f64())
    .bind(&doubt.run.workflow_id)
    .bind(&doubt.run.run_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        audit::record(
            &mut *conn,
            &AuditEntry {
                actor: format!("workflow:{}", doubt.run.workflow_id),
                action: "SMS_IN_DOUBT_RESOLVED",
                subject_type: "sms_attempt",
                subject_id: reference.to_string(),
                details: serde_json::json!({
                    "resolution": resolution.as_str(),
                    "submission": doubt.submission,
                    "carrier_message_id": carrier_message_id,
                    "waited_secs": doubt.waited.as_secs(),
                    "run_id": doubt.run.run_id,
                }),
                idempotency_key: Some(format!("in-doubt/{reference}/{}", doubt.submission)),
            },
        )
        .await?;
    }
    Ok(())
}

/// The attempt rows of `references`, by reference (one statement, for a batch).
pub async fn load_many(
    pool: &PgPool,
    phones: &PhoneVault,
    references: &[String],
) -> anyhow::Result<HashMap<String, Attempt>> {
    let rows = sqlx::query(
        "SELECT message_ref, status, carrier, carrier_message_id, error_code, submissions,
                created_at, phone_key_id, phone_sealed, phone_e164, body,
                greatest(extract(epoch FROM now() - last_submitted_at), 0)::float8 AS since_secs
           FROM sms_attempts WHERE message_ref = ANY($1)",
    )
    .bind(references)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let status: String = row.get("status");
        out.insert(
            row.get("message_ref"),
            Attempt {
                status: AttemptStatus::parse(&status)
                    .ok_or_else(|| anyhow::anyhow!("unknown attempt status {status:?}"))?,
                carrier: row.get("carrier"),
                carrier_message_id: row.get("carrier_message_id"),
                error_code: row.get("error_code"),
                submissions: row.get("submissions"),
                since_last_send: Duration::from_secs_f64(row.get::<f64, _>("since_secs")),
                created_at: row.get("created_at"),
                phone: phone_of(phones, &row)?,
                body: row.get("body"),
            },
        );
    }
    Ok(out)
}

/// Claims, for a batch, the first sends of `new` (rows inserted SUBMITTING) and the sends of the
/// UNSENT attempts `unsent` (moved to SUBMITTING), two statements in all. Returns the references
/// this call claimed with their submission number; the others were claimed by someone else.
pub async fn claim_many(
    pool: &PgPool,
    phones: &PhoneVault,
    carrier: &str,
    new: &[NewAttempt<'_>],
    unsent: &[String],
) -> anyhow::Result<HashMap<String, i16>> {
    let mut months = Vec::with_capacity(new.len());
    let mut customers = Vec::with_capacity(new.len());
    let mut numbers = Vec::with_capacity(new.len());
    let mut references = Vec::with_capacity(new.len());
    let mut key_ids = Vec::with_capacity(new.len());
    let mut sealed = Vec::with_capacity(new.len());
    let mut bodies = Vec::with_capacity(new.len());
    for n in new {
        let reference = n.reference.to_string();
        let phone = phones.seal(n.phone, Context::Attempt(&reference));
        months.push(n.reference.month.first_day().as_naive());
        customers.push(n.reference.customer.as_str().to_owned());
        numbers.push(attempt_no(n.reference.attempt)?);
        references.push(reference);
        key_ids.push(phone.key_id);
        sealed.push(phone.sealed);
        bodies.push(n.body.to_owned());
    }
    let mut claimed: HashMap<String, i16> = sqlx::query_as(
        "INSERT INTO sms_attempts (month, customer_id, attempt, message_ref, carrier,
                                   phone_key_id, phone_sealed, body)
         SELECT u.month, u.customer_id, u.attempt, u.message_ref, $8, u.key_id, u.sealed, u.body
           FROM UNNEST($1::date[], $2::text[], $3::int2[], $4::text[], $5::text[], $6::bytea[],
                       $7::text[])
                AS u(month, customer_id, attempt, message_ref, key_id, sealed, body)
         ON CONFLICT DO NOTHING
         RETURNING message_ref, submissions",
    )
    .bind(&months)
    .bind(&customers)
    .bind(&numbers)
    .bind(&references)
    .bind(&key_ids)
    .bind(&sealed)
    .bind(&bodies)
    .bind(carrier)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    if !unsent.is_empty() {
        // A reference sent only once, and certainly not taken then, may go through another
        // carrier (failover); one sent again after a doubt stays where it was in doubt (the
        // gateway routes those to the single path).
        let again: Vec<(String, i16)> = sqlx::query_as(
            "UPDATE sms_attempts SET status = 'SUBMITTING', last_submitted_at = now(),
                    carrier = $2
              WHERE message_ref = ANY($1) AND status = 'UNSENT'
                AND (submissions = 1 OR carrier = $2)
              RETURNING message_ref, submissions",
        )
        .bind(unsent)
        .bind(carrier)
        .fetch_all(pool)
        .await?;
        claimed.extend(again);
    }
    Ok(claimed)
}

/// The carrier an attempt was claimed for, by its reference.
pub async fn carrier_of(pool: &PgPool, reference: &str) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT carrier FROM sms_attempts WHERE message_ref = $1")
            .bind(reference)
            .fetch_optional(pool)
            .await?,
    )
}

/// [`mark_unsent`] for a batch: `(reference, submission)` pairs the carrier certainly did not
/// take.
pub async fn mark_unsent_many(pool: &PgPool, sends: &[(String, i16)]) -> anyhow::Result<()> {
    let (references, submissions): (Vec<String>, Vec<i16>) = sends.iter().cloned().unzip();
    sqlx::query(
        "UPDATE sms_attempts a SET status = 'UNSENT'
           FROM UNNEST($1::text[], $2::int2[]) AS u(message_ref, submission)
          WHERE a.message_ref = u.message_ref AND a.status = 'SUBMITTING'
            AND a.carrier_message_id IS NULL AND a.submissions = u.submission",
    )
    .bind(&references)
    .bind(&submissions)
    .execute(pool)
    .await?;
    Ok(())
}

/// [`store_accepted`] for a batch: `(reference, carrier id)` pairs. Returns the references whose
/// id this call stored (the others had one already: reload them).
pub async fn store_accepted_many(
    conn: &mut PgConnection,
    accepted: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let (references, ids): (Vec<String>, Vec<String>) = accepted.iter().cloned().unzip();
    Ok(sqlx::query_scalar(
        "UPDATE sms_attempts a
            SET status = 'SUBMITTED', carrier_message_id = u.id, submitted_at = now()
           FROM UNNEST($1::text[], $2::text[]) AS u(message_ref, id)
          WHERE a.message_ref = u.message_ref AND a.carrier_message_id IS NULL
            AND a.status IN ('SUBMITTING', 'UNSENT')
          RETURNING a.message_ref",
    )
    .bind(&references)
    .bind(&ids)
    .fetch_all(conn)
    .await?)
}

/// [`store_rejected`] for a batch: `(reference, code, category)`.
pub async fn store_rejected_many(
    conn: &mut PgConnection,
    rejected: &[(String, String, FailureCategory)],
) -> anyhow::Result<()> {
    let references: Vec<&str> = rejected.iter().map(|(r, ..)| r.as_str()).collect();
    let codes: Vec<&str> = rejected.iter().map(|(_, c, _)| c.as_str()).collect();
    let categories: Vec<&str> = rejected.iter().map(|(.., k)| k.as_str()).collect();
    sqlx::query(
        "UPDATE sms_attempts a
            SET status = 'REJECTED', error_code = u.code, failure_category = u.category,
                finished_at = now()
           FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(message_ref, code, category)
          WHERE a.message_ref = u.message_ref AND a.status IN ('SUBMITTING', 'UNSENT')",
    )
    .bind(&references)
    .bind(&codes)
    .bind(&categories)
    .execute(conn)
    .await?;
    Ok(())
}

/// Carrier ids already held by attempts (of any notification): a report naming one of them is
/// about that attempt, never evidence for another.
pub async fn known_carrier_ids(
    pool: &PgPool,
    carrier: &str,
    ids: &[String],
) -> anyhow::Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "SELECT carrier_message_id FROM sms_attempts
          WHERE carrier = $1 AND carrier_message_id = ANY($2)",
    )
    .bind(carrier)
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// Attempts still in doubt: rows without a carrier id that some execution sent (for the chaos
/// check).
pub async fn in_doubt_count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM sms_attempts WHERE status = 'SUBMITTING' AND carrier_message_id IS NULL",
    )
    .fetch_one(pool)
    .await?)
}

/// Every attempt sent to `customer`, by month (newest first) and attempt: `month, attempt,
/// message_ref, carrier, carrier_message_id, status, error_code, failure_category, submitted_at,
/// finished_at`.
pub async fn of_customer(
    pool: &PgPool,
    customer: &pcn_workflows::domain::CustomerId,
) -> sqlx::Result<Vec<sqlx::postgres::PgRow>> {
    sqlx::query(
        "SELECT month, attempt, message_ref, carrier, carrier_message_id, status,
                error_code, failure_category, submitted_at, finished_at
           FROM sms_attempts WHERE customer_id = $1 ORDER BY month DESC, attempt",
    )
    .bind(customer.as_str())
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            AttemptStatus::Unsent,
            AttemptStatus::Submitting,
            AttemptStatus::Submitted,
            AttemptStatus::Rejected,
            AttemptStatus::Ended(AttemptOutcome::Delivered),
            AttemptStatus::Ended(AttemptOutcome::NoConfirmation),
        ] {
            assert_eq!(AttemptStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(AttemptStatus::parse("submitting"), None);
    }

    #[test]
    fn resolutions_round_trip() {
        for r in Resolution::ALL {
            assert_eq!(Resolution::parse(r.as_str()), Some(r));
        }
        assert_eq!(Resolution::parse("ADOPTED"), None);
    }

    #[test]
    fn attempt_numbers_are_bounded() {
        assert_eq!(attempt_no(1).unwrap(), 1);
        assert_eq!(attempt_no(999).unwrap(), 999);
        assert!(attempt_no(0).is_err());
        assert!(attempt_no(1000).is_err());
        assert!(attempt_no(99_999).is_err());
    }
}
