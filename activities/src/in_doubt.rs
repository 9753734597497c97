//! The resolution rule for an attempt **in doubt** (its row exists, some execution sent or was
//! about to send it, and no carrier id was stored): the carrier may have the message, and no
//! carrier promises to drop a repeat of our reference. Before it is ever sent again, look for
//! evidence that the carrier has it, in this order:
//!
//! 1. carrier ids named by delivery signals the workflow received for the attempt before it was
//!    recorded (passed in by the workflow);
//! 2. delivery events already stored for the attempt's reference (generic callbacks carry our
//!    `messageId`, Twilio callbacks our `ref`);
//! 3. a carrier lookup by recipient and text where the API offers one (Twilio's message list;
//!    the generic API has none).
//!
//! A candidate id from 1 or 2 is adopted only when the carrier confirms it is this message (its
//! status answer names our reference, or our recipient and text): a signed report about another
//! message is flagged FOREIGN and ignored. While a candidate cannot be confirmed (the carrier does
//! not answer) nothing is sent: evidence that may be ours exists. With no evidence at all, the
//! attempt waits out the reconciliation period (counted from its last send) for a late callback,
//! and only then is sent again, under the same reference.

use std::time::Duration;

use chrono::TimeDelta;

use crate::attempts::{self, Attempt, Resolution};
use crate::carrier::{AnyCarrier, CarrierError, OutboundSms, SmsCarrier};
use crate::delivery_events;

/// How long to wait before asking again when the carrier could not confirm or look up.
const CARRIER_RECHECK: Duration = Duration::from_secs(30);

/// What the rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The carrier has the message under this id.
    Adopt {
        /// The carrier's id.
        carrier_message_id: String,
        /// Which evidence showed it.
        evidence: Resolution,
    },
    /// No decision yet: ask again after this long (a candidate awaits confirmation, or the
    /// reconciliation period is still running).
    Wait(Duration),
    /// No evidence within the period: the attempt may be sent again.
    Resend,
}

/// Applies the rule to `row` (in doubt), whose message is `sms`.
pub async fn judge(
    pool: &sqlx::PgPool,
    carrier: &AnyCarrier,
    row: &Attempt,
    sms: &OutboundSms,
    reported_ids: &[String],
    period: Duration,
) -> anyhow::Result<Verdict> {
    let reference = sms.reference.to_string();
    let stored = delivery_events::carrier_ids_for(pool, &row.carrier, &reference).await?;
    let mut candidates: Vec<(String, Resolution)> = Vec::new();
    for (ids, evidence) in [
        (reported_ids, Resolution::AdoptedSignal),
        (stored.as_slice(), Resolution::AdoptedCallback),
    ] {
        for id in ids {
            if !id.is_empty() && !candidates.iter().any(|(c, _)| c == id) {
                candidates.push((id.clone(), evidence));
            }
        }
    }
    // An id another attempt holds is that attempt's message, not this one's.
    let ids: Vec<String> = candidates.iter().map(|(c, _)| c.clone()).collect();
    let taken = attempts::known_carrier_ids(pool, &row.carrier, &ids).await?;
    candidates.retain(|(c, _)| !taken.contains(c));

    let mut unconfirmed = false;
    for (id, evidence) in candidates {
        match carrier.status(&id).await {
            Ok(report) if report.describes(sms) => {
                return Ok(Verdict::Adopt {
                    carrier_message_id: id,
                    evidence,
                });
            }
            Ok(_) | Err(CarrierError::NotFound) => {
                tracing::warn!(reference, carrier_message_id = %id, "a report named our reference but the carrier says the message is another: flagged");
                delivery_events::flag_foreign(pool, &row.carrier, &reference, &id).await?;
            }
            Err(err) => {
                tracing::warn!(reference, carrier_message_id = %id, error = %err, "cannot confirm a candidate id yet");
                unconfirmed = true;
            }
        }
    }
    if unconfirmed {
        return Ok(Verdict::Wait(CARRIER_RECHECK));
    }

    // A day earlier than the row: the list filters by (UTC) date.
    let since = row.created_at - TimeDelta::days(1);
    match carrier.find_sent(sms, since).await {
        Ok(Some(found)) => {
            let taken = attempts::known_carrier_ids(pool, &row.carrier, &found).await?;
            // The list is newest first; the oldest unclaimed one is the first send.
            if let Some(id) = found.into_iter().rev().find(|id| !taken.contains(id)) {
                return Ok(Verdict::Adopt {
                    carrier_message_id: id,
                    evidence: Resolution::AdoptedLookup,
                });
            }
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(reference, error = %err, "carrier lookup failed; the attempt stays in doubt");
            return Ok(Verdict::Wait(CARRIER_RECHECK));
        }
    }

    Ok(match period.checked_sub(row.since_last_send) {
        Some(left) if !left.is_zero() => Verdict::Wait(left),
        _ => Verdict::Resend,
    })
}
