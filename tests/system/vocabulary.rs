//! One word, one enum: the `CHECK` lists of the tables that store a vocabulary hold exactly the
//! spellings of the Rust enum that writes them.

use std::collections::BTreeSet;

use pcn_activities::attempts::{AttemptStatus, Resolution};
use pcn_activities::carrier::CarrierKind;
use pcn_activities::consent::{InboundAction, Source};
use pcn_activities::report_deliveries::ReportDeliveryStatus;
use pcn_tests::TestDb;
use pcn_workflows::domain::Language;
use pcn_workflows::sms::NotificationState;
use pcn_workflows::vocabulary::{
    CheckOutcome, DeliveryStatus, FailureCategory, QualificationReason, SignalState,
};

/// The quoted values of a CHECK constraint.
async fn check_values(db: &TestDb, constraint: &str) -> BTreeSet<String> {
    let definition: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
    )
    .bind(constraint)
    .fetch_one(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("constraint {constraint}: {e}"));
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn set<'a>(words: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    words.into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn check_lists_match_the_enums() {
    pcn_tests::init();
    let db = TestDb::new().await;
    assert_eq!(
        check_values(&db, "sms_attempts_status_known").await,
        set(AttemptStatus::spellings())
    );
    assert_eq!(
        check_values(&db, "in_doubt_resolutions_known").await,
        set(Resolution::ALL.map(Resolution::as_str))
    );
    assert_eq!(
        check_values(&db, "consent_events_source_known").await,
        set(Source::ALL.map(Source::as_str))
    );
    assert_eq!(
        check_values(&db, "notifications_status_known").await,
        set(NotificationState::ALL.map(NotificationState::as_str))
    );
    assert_eq!(
        check_values(&db, "balance_checks_outcome_known").await,
        set(CheckOutcome::ALL.map(CheckOutcome::as_str))
    );
    assert_eq!(
        check_values(&db, "qualifications_reason_known").await,
        set(QualificationReason::ALL.map(QualificationReason::as_str))
    );
    assert_eq!(
        check_values(&db, "customers_language_known").await,
        set(Language::ALL.map(Language::code))
    );
    assert_eq!(
        check_values(&db, "sms_attempts_carrier_known").await,
        set([CarrierKind::Generic, CarrierKind::Twilio].map(CarrierKind::as_str))
    );
    for constraint in [
        "notifications_failure_category_known",
        "sms_attempts_failure_category_known",
    ] {
        assert_eq!(
            check_values(&db, constraint).await,
            set(FailureCategory::ALL.map(FailureCategory::as_str)),
            "{constraint}"
        );
    }
    assert_eq!(
        check_values(&db, "report_deliveries_status_known").await,
        set(ReportDeliveryStatus::ALL.map(ReportDeliveryStatus::as_str))
    );
    assert_eq!(
        check_values(&db, "delivery_events_status_known").await,
        set(DeliveryStatus::ALL.map(DeliveryStatus::as_str))
    );
    assert_eq!(
        check_values(&db, "delivery_events_signal_state_known").await,
        set(SignalState::ALL.map(SignalState::as_str))
    );
    assert_eq!(
        check_values(&db, "inbound_messages_action_known").await,
        set(InboundAction::ALL.map(InboundAction::as_str))
    );
    // A manual retry starts only from a state that can be retried by hand.
    assert_eq!(
        check_values(&db, "notification_retries_from_final").await,
        set(NotificationState::ALL
            .into_iter()
            .filter(|s| s.can_be_retried_by_hand())
            .map(NotificationState::as_str))
    );
}
