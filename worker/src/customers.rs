//! Customer import from CSV: `customer_id,account_id,first_name,phone,language,monitored_since`
//! (header required; `opted_out`/`active` optional columns). Every row is parsed into domain
//! types; a bad row is reported with its line and field and is not imported, the good rows are.
//! An absent or empty `opted_out` says nothing about consent (and changes nothing).

use pcn_workflows::customer::{Customer, FirstName};
use pcn_workflows::domain::{AccountId, BusinessDate, CustomerId, DomainError, Language, Phone};

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    /// What was wrong, naming the field.
    pub error: String,
}

/// Parses a CSV document; returns the valid customers and the per-row errors.
pub fn parse_csv(text: &str) -> Result<(Vec<Customer>, Vec<RowError>), DomainError> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(DomainError::new("csv", "empty file"));
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let index = |name: &'static str| columns.iter().position(|c| *c == name);
    let required = [
        "customer_id",
        "account_id",
        "first_name",
        "phone",
        "language",
        "monitored_since",
    ];
    let mut at = Vec::with_capacity(required.len());
    for name in required {
        at.push(
            index(name).ok_or_else(|| DomainError::new("csv", format!("missing column {name}")))?,
        );
    }
    let opted_out_at = index("opted_out");
    let active_at = index("active");
    let mut customers = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |j: usize| fields.get(j).copied().unwrap_or("");
        let flag = |j: Option<usize>, name: &'static str| match j.map(field) {
            None | Some("") => Ok(None),
            Some("true" | "1" | "yes") => Ok(Some(true)),
            Some("false" | "0" | "no") => Ok(Some(false)),
            Some(_) => Err(DomainError::new(name, "expected true or false")),
        };
        let parsed = (|| {
            // The profile fields first, then the flags: a row's first error is reported.
            let customer = parse_row(
                [
                    field(at[0]),
                    field(at[1]),
                    field(at[2]),
                    field(at[3]),
                    field(at[4]),
                    field(at[5]),
                ],
                None,
                true,
            )?;
            Ok::<_, DomainError>(Customer {
                opted_out: flag(opted_out_at, "opted_out")?,
                active: flag(active_at, "active")?.unwrap_or(true),
                ..customer
            })
        })();
        match parsed {
            Ok(customer) => customers.push(customer),
            Err(err) => errors.push(RowError {
                line: i + 1,
                error: err.to_string(),
            }),
        }
    }
    Ok((customers, errors))
}

/// One import row, from the CSV or the control API's `UpsertCustomers`: `customer_id`,
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
    fn good_rows_are_kept_and_bad_rows_name_line_and_field() {
        let csv = "customer_id,account_id,first_name,phone,language,monitored_since\n\
                   C1,ACC-00000-00001,Dana,050-123-4567,he,2026-01-01\n\
                   C2,ACC-00000-00002,Omar,not-a-phone,ar,2026-01-01\n\
                   C3,ACC-00000-00003,Olga,+972521234567,ru,2026-02-30\n";
        let (customers, errors) = parse_csv(csv).unwrap();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0].phone.as_e164(), "+972501234567");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].error.contains("phone"));
        assert_eq!(errors[1].line, 4);
        assert!(errors[1].error.contains("date"));
    }

    #[test]
    fn an_absent_or_empty_opt_out_flag_says_nothing() {
        let csv = "customer_id,account_id,first_name,phone,language,monitored_since,opted_out\n\
                   C1,ACC-00000-00001,Dana,050-123-4567,he,2026-01-01,\n\
                   C2,ACC-00000-00002,Omar,050-123-4568,ar,2026-01-01,true\n\
                   C3,ACC-00000-00003,Olga,050-123-4569,ru,2026-01-01,no\n";
        let (customers, errors) = parse_csv(csv).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let flags: Vec<_> = customers.iter().map(|c| c.opted_out).collect();
        assert_eq!(flags, [None, Some(true), Some(false)]);
        let bare = "customer_id,account_id,first_name,phone,language,monitored_since\n\
                    C1,ACC-00000-00001,Dana,050-123-4567,he,2026-01-01\n";
        assert_eq!(parse_csv(bare).unwrap().0[0].opted_out, None);
    }

    #[test]
    fn a_missing_column_is_refused() {
        let err = parse_csv("customer_id,account_id\n").unwrap_err();
        assert!(err.to_string().contains("first_name"));
    }
}
