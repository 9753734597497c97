//! The report as CSV: `section,metric,value` rows of the shared figure list, then the daily table.

use super::{Value, figures, rfc3339};
use crate::report::MonthlyReport;

/// The columns of the CSV's daily table (the XLSX Daily sheet names its own headers).
const DAILY_COLUMNS: [&str; 8] = [
    "date",
    "checked",
    "passed",
    "below_threshold",
    "missing",
    "not_found",
    "invalid",
    "pass_rate",
];

/// The report as CSV (RFC 4180: CRLF line ends, fields quoted when they hold a comma, a quote or
/// a line break). First `section,metric,value` rows, then after an empty line the daily table
/// with its own header. Percentages are plain numbers (`12.50` for 12.5 %), times RFC 3339 UTC,
/// absent values empty.
pub fn csv(r: &MonthlyReport) -> String {
    let mut out = String::new();
    csv_line(&mut out, &["section", "metric", "value"]);
    for f in figures(r) {
        let value = match f.value {
            Value::Count(n) => n.to_string(),
            Value::Percent(p) => p.to_string(),
            Value::Amount(a, _) => a.map(|a| a.to_string()).unwrap_or_default(),
            Value::Time(t) => t.map(rfc3339).unwrap_or_default(),
            Value::Text(t) => t,
        };
        csv_line(&mut out, &[f.section, &f.metric, &value]);
    }
    out.push_str("\r\n");
    csv_line(&mut out, &DAILY_COLUMNS);
    for d in &r.daily {
        csv_line(
            &mut out,
            &[
                &d.date.to_string(),
                &d.checked.to_string(),
                &d.passed.to_string(),
                &d.below_threshold.to_string(),
                &d.missing.to_string(),
                &d.not_found.to_string(),
                &d.invalid.to_string(),
                &d.pass_rate.to_string(),
            ],
        );
    }
    out
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(field));
    }
    out.push_str("\r\n");
}

/// One field, quoted per RFC 4180 when needed. Text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first: carrier error codes are outside input) gets a leading `'`; no
/// figure of ours starts that way (counts and rates are never negative).
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn csv_quotes_commas_and_quotes_and_ends_lines_with_crlf() {
        let text = csv(&sample());
        assert!(text.starts_with("section,metric,value\r\nreport,month,2026-10\r\n"));
        assert!(text.contains("report,generated_at,2026-11-03T06:30:00Z\r\n"));
        assert!(text.contains("summary,qualification_rate,90.00\r\n"));
        assert!(text.contains("failure_categories,\"<script>\"\"x\"\",y\",2\r\n"));
        assert!(text.contains("qualification,threshold,10000.00\r\n"));
        assert!(text.contains("processing,last_final_at,\r\n"));
        assert!(text.contains(
            "\r\n\r\ndate,checked,passed,below_threshold,missing,not_found,invalid,pass_rate\r\n"
        ));
        assert!(text.contains("2026-10-03,1000,950,8,40,1,1,95.00\r\n"));
        // Every line has the fields its header promises (no stray unquoted comma).
        for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
            let plain = line.replace("\"\"", "");
            let commas = plain
                .split('"')
                .step_by(2)
                .map(|s| s.matches(',').count())
                .sum::<usize>();
            assert_eq!(commas, 2, "{line}");
        }
    }

    #[test]
    fn csv_defuses_formulas() {
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
        assert_eq!(csv_field("12.50"), "12.50");
    }
}
