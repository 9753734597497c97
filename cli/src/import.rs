//! `customer import`: stream a CSV file to UpsertCustomers and report each bad row by its line.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use pcn_proto::v1::UpsertCustomersResponse;
use serde_json::json;

use crate::api::Api;
use crate::csv::{CustomerRows, Located, locate};
use crate::output::{self, Format};
use crate::table::pairs;

/// Sends the rows of `file` as they are split (the text is read whole first, so an unreadable
/// or non-UTF-8 file fails before anything is sent; the rows are never collected), then prints
/// the counts and the row errors, server's and pcnctl's, in line order.
pub async fn run(api: &Api, format: Format, file: &Path) -> anyhow::Result<()> {
    let text: Arc<str> = std::fs::read_to_string(file)
        .with_context(|| format!("reading {}", file.display()))?
        .into();
    let rows = CustomerRows::new(Arc::clone(&text))
        .map_err(|err| crate::exit::InvalidInput(format!("{}: {err}", file.display())))?;
    let stream = tokio_stream::iter(rows.filter_map(|parsed| parsed.row.ok()));
    let response = api
        .call(api.client().upsert_customers(api.request(stream)))
        .await?;

    let indices: HashSet<u64> = response.errors.iter().map(|e| e.index).collect();
    let located = locate(CustomerRows::new(text)?, &indices);
    output::print(
        format,
        || text_report(&response, &located),
        || json_report(&response, &located),
    )?;
    Ok(())
}

/// One problem row, wherever it was found.
struct Problem<'a> {
    line: Option<usize>,
    index: Option<u64>,
    customer_id: &'a str,
    field: &'a str,
    message: &'a str,
}

fn problems<'a>(response: &'a UpsertCustomersResponse, located: &'a Located) -> Vec<Problem<'a>> {
    let mut problems: Vec<Problem<'a>> = response
        .errors
        .iter()
        .map(|e| {
            let row = located.rows.get(&e.index);
            Problem {
                line: row.map(|(line, _)| *line),
                index: Some(e.index),
                customer_id: match (&*e.customer_id, row) {
                    ("", Some((_, written))) => written,
                    (id, _) => id,
                },
                field: &e.field,
                message: &e.message,
            }
        })
        .chain(
            located
                .not_sent
                .iter()
                .map(|(line, customer_id, problem)| Problem {
                    line: Some(*line),
                    index: None,
                    customer_id,
                    field: problem.field,
                    message: &problem.message,
                }),
        )
        .collect();
    problems.sort_by_key(|p| (p.line, p.index));
    problems
}

fn text_report(response: &UpsertCustomersResponse, located: &Located) -> String {
    let not_sent = located.not_sent.len();
    let rejected = if not_sent == 0 {
        response.rejected.to_string()
    } else {
        format!(
            "{} (and {not_sent} not sent: a flag that is not true or false)",
            response.rejected
        )
    };
    let mut out = pairs(&[
        ("received", response.received.to_string()),
        ("upserted", response.upserted.to_string()),
        ("unchanged", response.unchanged.to_string()),
        ("rejected", rejected),
    ]);
    for p in problems(response, located) {
        let place = match (p.line, p.index) {
            (Some(line), _) => format!("line {line}"),
            (None, Some(index)) => format!("row {index} of the stream"),
            (None, None) => "a row".to_owned(),
        };
        let customer = if p.customer_id.is_empty() {
            "no customer id".to_owned()
        } else {
            format!("customer {}", p.customer_id)
        };
        out.push_str(&format!(
            "{place} ({customer}): {}: {}\n",
            p.field, p.message
        ));
    }
    out
}

fn json_report(response: &UpsertCustomersResponse, located: &Located) -> serde_json::Value {
    let (errors, not_sent): (Vec<_>, Vec<_>) = problems(response, located)
        .into_iter()
        .partition(|p| p.index.is_some());
    let entry = |p: &Problem<'_>| {
        let mut entry = json!({
            "line": p.line,
            "customer_id": p.customer_id,
            "field": p.field,
            "message": p.message,
        });
        if let Some(index) = p.index {
            entry["index"] = json!(index);
        }
        entry
    };
    json!({
        "received": response.received,
        "upserted": response.upserted,
        "unchanged": response.unchanged,
        "rejected": response.rejected,
        "errors": errors.iter().map(entry).collect::<Vec<_>>(),
        "not_sent": not_sent.iter().map(entry).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::RowProblem;
    use pcn_proto::v1::RowError;
    use std::collections::HashMap;

    #[test]
    fn row_errors_print_by_line_with_the_field_and_the_rows_held_back_among_them() {
        let response = UpsertCustomersResponse {
            received: 3,
            upserted: 2,
            unchanged: 0,
            rejected: 1,
            errors: vec![RowError {
                index: 2,
                customer_id: "C4".into(),
                field: "phone".into(),
                message: "not a phone number".into(),
            }],
        };
        let located = Located {
            rows: HashMap::from([(2, (5, "C4".to_owned()))]),
            not_sent: vec![(
                3,
                "C2".to_owned(),
                RowProblem {
                    field: "active",
                    message: "expected true or false, got \"maybe\"".into(),
                },
            )],
        };
        let text = text_report(&response, &located);
        let lines: Vec<&str> = text.lines().skip(4).collect();
        assert_eq!(
            lines,
            [
                "line 3 (customer C2): active: expected true or false, got \"maybe\"",
                "line 5 (customer C4): phone: not a phone number",
            ]
        );
        let json = json_report(&response, &located);
        assert_eq!(json["errors"][0]["line"], 5);
        assert_eq!(json["errors"][0]["index"], 2);
        assert!(json["not_sent"][0].get("index").is_none());
        assert_eq!(json["not_sent"][0]["customer_id"], "C2");
    }
}
