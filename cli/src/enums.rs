//! Proto enums by their names without the type prefix (`DELIVERED` for
//! `NOTIFICATION_STATUS_DELIVERED`), both ways: for output, and as clap value parsers that list
//! the possible values in `--help`.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use pcn_proto::v1::{
    CheckOutcome, MonthPhase, NotificationStatus, QualificationReason, ReportDeliveryStatus,
};

/// A generated proto enum whose variant names start with a common prefix.
pub trait ProtoEnum: Copy + Send + Sync + 'static {
    /// The prefix shared by the variant names (`MONTH_PHASE_`).
    const PREFIX: &'static str;
    /// The variant of a wire value, if known.
    fn from_wire(value: i32) -> Option<Self>;
    /// The full proto name (`MONTH_PHASE_MONITORING`).
    fn full_name(self) -> &'static str;
    /// The variant of a full proto name.
    fn from_full_name(name: &str) -> Option<Self>;

    /// The name without the prefix (`MONITORING`).
    fn short_name(self) -> &'static str {
        let full = self.full_name();
        full.strip_prefix(Self::PREFIX).unwrap_or(full)
    }
}

macro_rules! proto_enum {
    ($type:ty, $prefix:literal) => {
        impl ProtoEnum for $type {
            const PREFIX: &'static str = $prefix;
            fn from_wire(value: i32) -> Option<Self> {
                Self::try_from(value).ok()
            }
            fn full_name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_full_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    };
}

proto_enum!(MonthPhase, "MONTH_PHASE_");
proto_enum!(QualificationReason, "QUALIFICATION_REASON_");
proto_enum!(CheckOutcome, "CHECK_OUTCOME_");
proto_enum!(NotificationStatus, "NOTIFICATION_STATUS_");
proto_enum!(ReportDeliveryStatus, "REPORT_DELIVERY_STATUS_");

/// The short name of a wire value; a value this build does not know (a newer server) prints as
/// its number rather than failing.
pub fn name<E: ProtoEnum>(value: i32) -> String {
    match E::from_wire(value) {
        Some(variant) => variant.short_name().to_owned(),
        None => value.to_string(),
    }
}

/// The short names of every variant but UNSPECIFIED (value 0), in wire order.
pub fn names<E: ProtoEnum>() -> Vec<&'static str> {
    (1..)
        .map_while(E::from_wire)
        .map(ProtoEnum::short_name)
        .collect()
}

/// A clap value parser accepting the short names (any case) and listing them in `--help`.
pub fn parser<E: ProtoEnum>() -> impl TypedValueParser<Value = E> {
    PossibleValuesParser::new(names::<E>()).try_map(|short: String| {
        let full = format!("{}{}", E::PREFIX, short.to_ascii_uppercase());
        E::from_full_name(&full).ok_or_else(|| format!("unknown value {short}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_prefix_and_unknown_values_print_as_numbers() {
        assert_eq!(name::<NotificationStatus>(5), "DELIVERED");
        assert_eq!(name::<MonthPhase>(3), "BLOCKED");
        assert_eq!(name::<MonthPhase>(99), "99");
    }

    #[test]
    fn the_listed_names_skip_unspecified() {
        assert_eq!(
            names::<CheckOutcome>(),
            [
                "PASSED",
                "BELOW_THRESHOLD",
                "MISSING",
                "ACCOUNT_NOT_FOUND",
                "INVALID_RESPONSE"
            ]
        );
    }
}
