//! Customer import from CSV: `customer_id,account_id,first_name,phone,language,monitored_since`
//! (header required; `opted_out`/`active` optional columns). Every row is parsed into domain
//! types; a bad row is reported with its line and field and is not imported, the good rows are.

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
        let flag = |j: Option<usize>, default: bool, name: &'static str| match j.map(field) {
            None | Some("") => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(_) => Err(DomainError::new(name, "expected true or false")),
        };
        let parsed = (|| {
            Ok::<_, DomainError>(Customer {
                customer_id: CustomerId::parse(field(at[0]))?,
                account_id: AccountId::parse(field(at[1]))?,
                first_name: FirstName::parse(field(at[2]))?,
                phone: Phone::parse(field(at[3]))?,
                language: if field(at[4]).is_empty() {
                    Language::default()
                } else {
                    Language::parse(field(at[4]))?
                },
                monitored_since: BusinessDate::parse(field(at[5]))?,
                opted_out: flag(opted_out_at, false, "opted_out")?,
                active: flag(active_at, true, "active")?,
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
    fn a_missing_column_is_refused() {
        let err = parse_csv("customer_id,account_id\n").unwrap_err();
        assert!(err.to_string().contains("first_name"));
    }
}
