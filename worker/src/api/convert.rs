//! Rows and domain values → API messages; page tokens.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use pcn_proto::v1 as pb;
use pcn_workflows::domain::DomainError;
use rust_decimal::Decimal;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

/// RFC 3339, UTC, milliseconds.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 or empty.
pub fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map(ts).unwrap_or_default()
}

/// A decimal as a string, or empty.
pub fn opt_dec(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// Shows the last four characters of an identifier: `ACC-00000-00042` → `***********0042`.
pub fn mask_tail(s: &str) -> String {
    let n = s.chars().count();
    let keep = n.min(4);
    let hidden = n - keep;
    "*".repeat(hidden) + &s.chars().skip(hidden).collect::<String>()
}

/// The API's qualification reason for a stored reason.
pub fn reason(stored: &str) -> pb::QualificationReason {
    pb::QualificationReason::from_str_name(&format!("QUALIFICATION_REASON_{stored}"))
        .unwrap_or(pb::QualificationReason::Unspecified)
}

/// The stored spelling of an API reason (None for UNSPECIFIED).
pub fn reason_name(r: pb::QualificationReason) -> Option<&'static str> {
    r.as_str_name()
        .strip_prefix("QUALIFICATION_REASON_")
        .filter(|s| *s != "UNSPECIFIED")
}

/// The API's notification status for a stored status.
pub fn status(stored: &str) -> pb::NotificationStatus {
    pb::NotificationStatus::from_str_name(&format!("NOTIFICATION_STATUS_{stored}"))
        .unwrap_or(pb::NotificationStatus::Unspecified)
}

/// The stored spelling of an API status (None for UNSPECIFIED).
pub fn status_name(s: pb::NotificationStatus) -> Option<&'static str> {
    s.as_str_name()
        .strip_prefix("NOTIFICATION_STATUS_")
        .filter(|s| *s != "UNSPECIFIED")
}

/// The API's check outcome for a stored outcome.
pub fn outcome(stored: &str) -> pb::CheckOutcome {
    pb::CheckOutcome::from_str_name(&format!("CHECK_OUTCOME_{stored}"))
        .unwrap_or(pb::CheckOutcome::Unspecified)
}

fn u32_of(v: i16) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// A `qualifications` row ([`pcn_activities::qualify::COLUMNS`]).
pub fn qualification(row: &PgRow) -> pb::Qualification {
    let month: chrono::NaiveDate = row.get("month");
    pb::Qualification {
        month: month.format("%Y-%m").to_string(),
        customer_id: row.get("customer_id"),
        qualified: row.get("qualified"),
        reason: reason(row.get::<&str, _>("reason")).into(),
        days_in_month: u32_of(row.get("days_in_month")),
        days_passed: u32_of(row.get("days_passed")),
        days_below: u32_of(row.get("days_below")),
        days_missing: u32_of(row.get("days_missing")),
        days_not_found: u32_of(row.get("days_not_found")),
        days_invalid: u32_of(row.get("days_invalid")),
        threshold: row.get::<Decimal, _>("threshold").to_string(),
        decided_at: ts(row.get("decided_at")),
    }
}

/// A `notifications` row ([`pcn_activities::notifications::COLUMNS`]; without attempts).
pub fn notification(row: &PgRow) -> pb::Notification {
    let month: chrono::NaiveDate = row.get("month");
    pb::Notification {
        month: month.format("%Y-%m").to_string(),
        customer_id: row.get("customer_id"),
        workflow_id: row.get("workflow_id"),
        status: status(row.get::<&str, _>("status")).into(),
        attempts: u32_of(row.get("attempts")),
        language: row.get::<Option<String>, _>("language").unwrap_or_default(),
        segments: u32_of(row.get::<Option<i16>, _>("segments").unwrap_or(0)),
        failure_category: row
            .get::<Option<String>, _>("failure_category")
            .unwrap_or_default(),
        detail: row.get::<Option<String>, _>("detail").unwrap_or_default(),
        created_at: ts(row.get("created_at")),
        updated_at: ts(row.get("updated_at")),
        finished_at: opt_ts(row.get("finished_at")),
        manual_retries: u32_of(row.get("manual_retries")),
        sms_attempts: Vec::new(),
    }
}

/// A `customers` row ([`pcn_activities::customers::PROFILE_COLUMNS`]), masked.
pub fn customer(row: &PgRow) -> pb::Customer {
    let since: chrono::NaiveDate = row.get("monitored_since");
    pb::Customer {
        customer_id: row.get("customer_id"),
        account_id: mask_tail(row.get("account_id")),
        first_name: row.get("first_name"),
        phone: row
            .get::<Option<String>, _>("phone_masked")
            .unwrap_or_else(|| "(not yet sealed: run rotate-keys)".to_owned()),
        language: row.get("language"),
        opted_out: row.get("opted_out"),
        active: row.get("active"),
        monitored_since: since.to_string(),
        updated_at: ts(row.get("updated_at")),
    }
}

/// An opaque page token: the query it belongs to and the last key of the page.
pub fn page_token(query: &str, last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1\n{query}\n{last}"))
}

/// The last key of the previous page, if `token` is one (INVALID_ARGUMENT if it is not, or if it
/// belongs to another query: other filters or another month).
pub fn read_page_token(token: &str, query: &str) -> Result<Option<String>, DomainError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        DomainError::new(
            "page_token",
            "not a page token of this query (same filters)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(q), Some(last)) if q == query && !last.is_empty() => {
            Ok(Some(last.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// `page_size`: 0 → 100; 1..=1000; anything else is INVALID_ARGUMENT.
pub fn page_size(n: u32) -> Result<i64, DomainError> {
    match n {
        0 => Ok(100),
        1..=1000 => Ok(i64::from(n)),
        _ => Err(DomainError::new("page_size", "must be between 1 and 1000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcn_workflows::sms::NotificationState;
    use pcn_workflows::vocabulary::{CheckOutcome, QualificationReason};

    /// The API's enums carry exactly the stored vocabularies (one word, one spelling).
    #[test]
    fn the_api_enums_spell_the_stored_words() {
        for o in CheckOutcome::ALL {
            assert_ne!(outcome(o.as_str()), pb::CheckOutcome::Unspecified, "{o}");
        }
        for r in QualificationReason::ALL {
            let api = reason(r.as_str());
            assert_ne!(api, pb::QualificationReason::Unspecified, "{r}");
            assert_eq!(reason_name(api), Some(r.as_str()));
        }
        for s in NotificationState::ALL {
            let api = status(s.as_str());
            assert_ne!(api, pb::NotificationStatus::Unspecified, "{s:?}");
            assert_eq!(status_name(api), Some(s.as_str()));
        }
        // And nothing more: every API value but UNSPECIFIED is one of the stored words.
        let outcomes = (1..)
            .map_while(|i| pb::CheckOutcome::try_from(i).ok())
            .count();
        assert_eq!(outcomes, CheckOutcome::ALL.len());
        let reasons = (1..)
            .map_while(|i| pb::QualificationReason::try_from(i).ok())
            .count();
        assert_eq!(reasons, QualificationReason::ALL.len());
        let statuses = (1..)
            .map_while(|i| pb::NotificationStatus::try_from(i).ok())
            .count();
        assert_eq!(statuses, NotificationState::ALL.len());
    }

    #[test]
    fn page_tokens_round_trip_and_refuse_other_queries() {
        let t = page_token("q|2026-10|FAILED", "C42");
        assert_eq!(
            read_page_token(&t, "q|2026-10|FAILED").unwrap().as_deref(),
            Some("C42")
        );
        assert!(read_page_token(&t, "q|2026-11|FAILED").is_err());
        assert!(read_page_token("garbage!", "q").is_err());
        assert_eq!(read_page_token("", "q").unwrap(), None);
    }

    #[test]
    fn enums_map_both_ways() {
        assert_eq!(
            reason("BELOW_THRESHOLD"),
            pb::QualificationReason::BelowThreshold
        );
        assert_eq!(
            reason_name(pb::QualificationReason::MissingData),
            Some("MISSING_DATA")
        );
        assert_eq!(reason_name(pb::QualificationReason::Unspecified), None);
        assert_eq!(status("RETRY_WAIT"), pb::NotificationStatus::RetryWait);
        assert_eq!(
            status_name(pb::NotificationStatus::OptedOut),
            Some("OPTED_OUT")
        );
        assert_eq!(
            outcome("ACCOUNT_NOT_FOUND"),
            pb::CheckOutcome::AccountNotFound
        );
        assert_eq!(status("NOPE"), pb::NotificationStatus::Unspecified);
    }

    #[test]
    fn masks_keep_only_the_tail() {
        assert_eq!(mask_tail("ACC-00000-00042"), "***********0042");
        assert_eq!(mask_tail("ab"), "ab");
        assert_eq!(page_size(0).unwrap(), 100);
        assert!(page_size(1001).is_err());
    }
}
