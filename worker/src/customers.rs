//! A customer row of an import (the control API's `UpsertCustomers`, which `pcnctl customer
//! import` feeds from a CSV file) parsed into domain types; a bad field is named in the error.
//! An absent `opted_out` says nothing about consent (and changes nothing).

use pcn_workflows::customer::{Customer, FirstName};
use pcn_workflows::domain::{AccountId, BusinessDate, CustomerId, DomainError, Language, Phone};

/// One row of the control API's `UpsertCustomers`: `customer_id`,
/// `account_id`, `first_name`, `phone`, `language` (empty: the default) and `monitored_since`
/// as text, parsed in that order (the first bad field is the error), and the two flags
/// (`opted_out`: `None` when the row says nothing about consent).
pub fn parse_row(
    [
        customer_id,
        account_id,
        first_name,
        phone,
        language,
        monitored_since,
    ]: [&str; 6],
    opted_out: Option<bool>,
    active: bool,
) -> Result<Customer, DomainError> {
    Ok(Customer {
        customer_id: CustomerId::parse(customer_id)?,
        account_id: AccountId::parse(account_id)?,
        first_name: FirstName::parse(first_name)?,
        phone: Phone::parse(phone)?,
        language: if language.is_empty() {
            Language::default()
        } else {
            Language::parse(language)?
        },
        monitored_since: BusinessDate::parse(monitored_since)?,
        opted_out,
        active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_row_is_parsed_and_a_bad_one_names_its_field() {
        let row = |phone, since| {
            parse_row(
                ["C1", "ACC-00000-00001", "Dana", phone, "he", since],
                None,
                true,
            )
        };
        let customer = row("050-123-4567", "2026-01-01").unwrap();
        assert_eq!(customer.phone.as_e164(), "+972501234567");
        assert_eq!(customer.opted_out, None);
        assert!(
            row("not-a-phone", "2026-01-01")
                .unwrap_err()
                .to_string()
                .contains("phone")
        );
        assert!(
            row("+972521234567", "2026-02-30")
                .unwrap_err()
                .to_string()
                .contains("date")
        );
    }
}
