//! The owner of consent: the ledger `consent_events`, the customers' replies `inbound_messages`
//! and, through the ledger, `customers.opted_out` (the database refuses any other change of that
//! column).
//!
//! The rules, in one place:
//! - anyone with a reason to may opt a customer **out**: the customer's keyword reply, the
//!   carrier's "recipient unsubscribed" error, an admin, an import row with `opted_out = true`;
//! - only the customer's own START/UNSTOP reply or an admin **with a reason** opts them back
//!   **in**; an import never does ([`ConsentError::ImportCannotOptIn`]), and an import row that
//!   says nothing about consent changes nothing;
//! - every fact that changes the state is a ledger row and an audit entry, in the caller's
//!   transaction; a retried step carries an idempotency key and writes nothing twice.

use std::fmt;

use chrono::{DateTime, Utc};
use pcn_workflows::domain::CustomerId;
use sqlx::{PgConnection, PgPool, Row};

use crate::audit::{self, AuditEntry};
use crate::phone_vault::{Context, PhoneVault};

/// Where a consent fact comes from (`consent_events.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The customer's keyword reply (STOP and equivalents, START/UNSTOP).
    InboundKeyword,
    /// The carrier refused a message: the recipient unsubscribed there (Twilio 21610).
    CarrierError,
    /// An admin through the control API.
    Admin,
    /// A customer import row.
    Import,
    /// Recorded before the ledger existed.
    Migration,
}

impl Source {
    /// Every source.
    pub const ALL: [Self; 5] = [
        Self::InboundKeyword,
        Self::CarrierError,
        Self::Admin,
        Self::Import,
        Self::Migration,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InboundKeyword => "INBOUND_KEYWORD",
            Self::CarrierError => "CARRIER_ERROR",
            Self::Admin => "ADMIN",
            Self::Import => "IMPORT",
            Self::Migration => "MIGRATION",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Words for people ("inbound STOP reply", …).
    pub fn describe(self) -> &'static str {
        match self {
            Self::InboundKeyword => "the customer's reply",
            Self::CarrierError => "the carrier (recipient unsubscribed)",
            Self::Admin => "an admin",
            Self::Import => "a customer import",
            Self::Migration => "a record older than the consent ledger",
        }
    }
}

/// One consent fact to record.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    /// Whose.
    pub customer: &'a str,
    /// Where it comes from.
    pub source: Source,
    /// `carrier:generic`, `api:<name>`, `workflow:<id>`, `import:<name>`.
    pub actor: &'a str,
    /// Why (required for an admin's opt-in).
    pub reason: Option<&'a str>,
    /// The inbound reply's carrier id, or the reference of the refused message.
    pub carrier_message_id: Option<&'a str>,
    /// Business key of the step that records it.
    pub idempotency_key: Option<String>,
}

/// What recording a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The customer's state changed (ledger row and audit entry written).
    Changed,
    /// Recorded, but the state was already so (a second STOP).
    Unchanged,
    /// The same fact was recorded before (same idempotency key): nothing written.
    Repeated,
}

/// Why a fact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// No such customer.
    #[error("customer {0} not found")]
    UnknownCustomer(String),
    /// An opt-in needs the customer's own reply or an admin with a reason.
    #[error("opting a customer back in needs {0}")]
    OptInRefused(&'static str),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The latest fact of a customer, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFact {
    /// Its state.
    pub opted_out: bool,
    /// Its source.
    pub source: Source,
    /// When.
    pub occurred_at: DateTime<Utc>,
}

impl fmt::Display for LastFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "opted {} by {} on {}",
            if self.opted_out { "out" } else { "in" },
            self.source.describe(),
            self.occurred_at.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// Opts the customer out. The fact is recorded even when they are out already (a second STOP is
/// a fact too), unless its idempotency key was seen.
pub async fn opt_out(conn: &mut PgConnection, fact: &Fact<'_>) -> Result<Change, ConsentError> {
    record(conn, fact, true).await
}

/// Opts the customer back in: only their own keyword reply or an admin with a non-empty reason.
pub async fn opt_in(conn: &mut PgConnection, fact: &Fact<'_>) -> Result<Change, ConsentError> {
    match fact.source {
        Source::InboundKeyword => {}
        Source::Admin if fact.reason.is_some_and(|r| !r.trim().is_empty()) => {}
        Source::Admin => return Err(ConsentError::OptInRefused("a reason from the admin")),
        _ => {
            return Err(ConsentError::OptInRefused(
                "the customer's own START reply or an admin with a reason",
            ));
        }
    }
    record(conn, fact, false).await
}

async fn record(
    conn: &mut PgConnection,
    fact: &Fact<'_>,
    opted_out: bool,
) -> Result<Change, ConsentError> {
    let before: Option<bool> =
        sqlx::query_scalar("SELECT opted_out FROM customers WHERE customer_id = $1 FOR UPDATE")
            .bind(fact.customer)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(before) = before else {
        return Err(ConsentError::UnknownCustomer(fact.customer.to_owned()));
    };
    let inserted = sqlx::query(
        "INSERT INTO consent_events (customer_id, opted_out, source, carrier_message_id, actor,
                                     reason, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(fact.customer)
    .bind(opted_out)
    .bind(fact.source.as_str())
    .bind(fact.carrier_message_id)
    .bind(fact.actor)
    .bind(fact.reason)
    .bind(&fact.idempotency_key)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Change::Repeated);
    }
    if before == opted_out {
        return Ok(Change::Unchanged);
    }
    audit_change(conn, fact.customer, opted_out, fact).await?;
    Ok(Change::Changed)
}

async fn audit_change(
    conn: &mut PgConnection,
    customer: &str,
    opted_out: bool,
    fact: &Fact<'_>,
) -> Result<(), sqlx::Error> {
    audit::record(
        &mut *conn,
        &AuditEntry {
            actor: fact.actor.to_owned(),
            action: if opted_out {
                "CUSTOMER_OPTED_OUT"
            } else {
                "CUSTOMER_OPTED_IN"
            },
            subject_type: "customer",
            subject_id: customer.to_owned(),
            details: serde_json::json!({
                "source": fact.source.as_str(),
                "reason": fact.reason,
                "carrier_message_id": fact.carrier_message_id,
            }),
            idempotency_key: fact
                .idempotency_key
                .as_ref()
                .map(|k| format!("consent/{k}")),
        },
    )
    .await?;
    Ok(())
}

/// What an import's consent flags did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportConsent {
    /// Customers the import opted out (they were in).
    pub opted_out: Vec<String>,
}

/// The customers among `wants_in` (rows with `opted_out = false`) who are opted out now, with
/// the fact that opted them out: an import cannot opt them back in, so their rows are refused.
pub async fn refused_opt_ins(
    conn: &mut PgConnection,
    wants_in: &[String],
) -> Result<Vec<(String, Option<LastFact>)>, sqlx::Error> {
    if wants_in.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT c.customer_id, e.opted_out AS fact_out, e.source, e.occurred_at
           FROM customers c
           LEFT JOIN LATERAL (SELECT opted_out, source, occurred_at FROM consent_events
                               WHERE customer_id = c.customer_id ORDER BY id DESC LIMIT 1) e ON true
          WHERE c.customer_id = ANY($1) AND c.opted_out",
    )
    .bind(wants_in)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let last = row
                .get::<Option<String>, _>("source")
                .and_then(|s| Source::parse(&s))
                .map(|source| LastFact {
                    opted_out: row.get::<Option<bool>, _>("fact_out").unwrap_or(true),
                    source,
                    occurred_at: row.get("occurred_at"),
                });
            (row.get("customer_id"), last)
        })
        .collect())
}

/// Opts out, set-based, the customers of `ids` (import rows with `opted_out = true`) who are
/// not out yet: one ledger row and one audit entry each.
pub async fn import_opt_outs(
    conn: &mut PgConnection,
    ids: &[String],
    actor: &str,
) -> Result<ImportConsent, sqlx::Error> {
    if ids.is_empty() {
        return Ok(ImportConsent::default());
    }
    let opted_out: Vec<String> = sqlx::query_scalar(
        "INSERT INTO consent_events (customer_id, opted_out, source, actor, reason)
         SELECT customer_id, true, 'IMPORT', $2, 'customer import row with opted_out = true'
           FROM customers WHERE customer_id = ANY($1) AND NOT opted_out
         RETURNING customer_id",
    )
    .bind(ids)
    .bind(actor)
    .fetch_all(&mut *conn)
    .await?;
    let fact = Fact {
        customer: "",
        source: Source::Import,
        actor,
        reason: Some("customer import row with opted_out = true"),
        carrier_message_id: None,
        idempotency_key: None,
    };
    for customer in &opted_out {
        audit_change(conn, customer, true, &fact).await?;
    }
    Ok(ImportConsent { opted_out })
}

/// One fact of a customer's history, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    /// The state it left.
    pub opted_out: bool,
    /// Where it came from.
    pub source: Source,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// The inbound reply or refused message.
    pub carrier_message_id: Option<String>,
}

/// A customer's consent history, oldest first.
pub async fn history(pool: &PgPool, customer: &CustomerId) -> anyhow::Result<Vec<ConsentEvent>> {
    let rows = sqlx::query(
        "SELECT opted_out, source, occurred_at, actor, reason, carrier_message_id
           FROM consent_events WHERE customer_id = $1 ORDER BY id",
    )
    .bind(customer.as_str())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let source: String = row.get("source");
            Ok(ConsentEvent {
                opted_out: row.get("opted_out"),
                source: Source::parse(&source)
                    .ok_or_else(|| anyhow::anyhow!("unknown consent source {source:?}"))?,
                occurred_at: row.get("occurred_at"),
                actor: row.get("actor"),
                reason: row.get("reason"),
                carrier_message_id: row.get("carrier_message_id"),
            })
        })
        .collect()
}

/// What a customer's reply did (`inbound_messages.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundAction {
    /// A STOP keyword: the number's customers opted out.
    OptedOut,
    /// START/UNSTOP: the number's customers opted back in.
    OptedIn,
    /// Anything else (an unknown number, an empty text, a keyword inside a sentence): kept.
    Ignored,
}

impl InboundAction {
    /// Every action.
    pub const ALL: [Self; 3] = [Self::OptedOut, Self::OptedIn, Self::Ignored];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "OPTED_OUT",
            Self::OptedIn => "OPTED_IN",
            Self::Ignored => "IGNORED",
        }
    }
}

/// Stores a customer's reply (`inbound_messages`, idempotent per carrier message id) and what it
/// means for consent, in one transaction: a STOP keyword (in any language we send in) opts out
/// every customer with that number, START/UNSTOP opts them back in, each recorded in the ledger
/// and audited; anything else (an unknown number, an empty text, a keyword inside a sentence) is
/// kept as IGNORED. Returns the action stored and how many customers changed.
pub async fn record_inbound(
    pool: &PgPool,
    phones: &PhoneVault,
    inbound: &crate::carrier::events::InboundSms,
) -> anyhow::Result<(InboundAction, usize)> {
    use crate::carrier::events::{ConsentKeyword, consent_keyword};
    let keyword = consent_keyword(&inbound.body);
    let index = phones.index(&inbound.from);
    let mut tx = pool.begin().await?;
    // By the blind index; `phone_e164` only for rows from before encryption not yet rotated.
    let customers: Vec<String> = sqlx::query_scalar(
        "SELECT customer_id FROM customers WHERE phone_index = $1
         UNION
         SELECT customer_id FROM customers WHERE phone_e164 = $2
         ORDER BY customer_id",
    )
    .bind(&index)
    .bind(inbound.from.as_e164())
    .fetch_all(&mut *tx)
    .await?;
    let action = match keyword {
        _ if customers.is_empty() => InboundAction::Ignored,
        Some(ConsentKeyword::OptOut) => InboundAction::OptedOut,
        Some(ConsentKeyword::OptIn) => InboundAction::OptedIn,
        None => InboundAction::Ignored,
    };
    let sealed = phones.seal(
        &inbound.from,
        Context::Inbound(inbound.carrier.as_str(), &inbound.carrier_message_id),
    );
    let inserted = sqlx::query(
        "INSERT INTO inbound_messages (carrier, carrier_message_id, phone_key_id, phone_sealed,
                                       phone_index, body, customer_id, action)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (carrier, carrier_message_id) DO NOTHING",
    )
    .bind(inbound.carrier.as_str())
    .bind(&inbound.carrier_message_id)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&index)
    .bind(&inbound.body)
    .bind(customers.first())
    .bind(action.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut changed = 0;
    if inserted == 1 && action != InboundAction::Ignored {
        let actor = format!("carrier:{}", inbound.carrier.as_str());
        let reason = format!("inbound reply {:?}", inbound.body.trim());
        for customer in &customers {
            let fact = Fact {
                customer,
                source: Source::InboundKeyword,
                actor: &actor,
                reason: Some(&reason),
                carrier_message_id: Some(&inbound.carrier_message_id),
                idempotency_key: Some(format!(
                    "inbound/{}/{}/{customer}",
                    inbound.carrier.as_str(),
                    inbound.carrier_message_id
                )),
            };
            let change = if action == InboundAction::OptedOut {
                opt_out(&mut tx, &fact).await?
            } else {
                opt_in(&mut tx, &fact).await?
            };
            if change == Change::Changed {
                changed += 1;
            }
        }
    }
    tx.commit().await?;
    Ok((action, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("import"), None);
    }

    #[test]
    fn the_last_fact_explains_itself() {
        let fact = LastFact {
            opted_out: true,
            source: Source::InboundKeyword,
            occurred_at: "2026-11-02T08:30:00Z".parse().unwrap(),
        };
        assert_eq!(
            fact.to_string(),
            "opted out by the customer's reply on 2026-11-02 08:30 UTC"
        );
    }
}
