//! Custom search attributes, registered on the Temporal namespace (see `pcn-worker setup`) so
//! operators can filter runs in the Web UI, e.g. `PcnMonth = "2026-10" AND PcnPhase = "BLOCKED"`.

use temporalio_workflow::common::search_attributes::SearchAttributeKey;

/// The business month a run belongs to, `YYYY-MM`.
pub const MONTH: SearchAttributeKey<String> = SearchAttributeKey::keyword("PcnMonth");

/// The phase of a month run (see [`crate::month::MonthPhase`]), updated when it changes.
pub const PHASE: SearchAttributeKey<String> = SearchAttributeKey::keyword("PcnPhase");

/// The customer an SMS workflow notifies.
pub const CUSTOMER: SearchAttributeKey<String> = SearchAttributeKey::keyword("PcnCustomer");

/// The state of an SMS notification (see [`crate::sms::NotificationState`]), updated when it
/// changes, e.g. `PcnMonth = "2026-10" AND PcnNotificationStatus = "UNDELIVERABLE"`.
pub const NOTIFICATION_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("PcnNotificationStatus");

/// Every custom search attribute with its Temporal type name, for registration.
pub const ALL: &[(&str, &str)] = &[
    ("PcnMonth", "Keyword"),
    ("PcnPhase", "Keyword"),
    ("PcnCustomer", "Keyword"),
    ("PcnNotificationStatus", "Keyword"),
];

#[cfg(test)]
mod tests {
    use super::ALL;

    /// The scripts start dev servers with `scripts/search-attributes.txt`: the same list.
    #[test]
    fn the_scripts_list_is_exactly_this_one() {
        let file = include_str!("../../scripts/search-attributes.txt");
        let listed: Vec<(&str, &str)> = file
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split_once('=').expect("Name=Type"))
            .collect();
        assert_eq!(listed, ALL.to_vec());
    }
}
