//! The customer CSV of `customer import`, split into `CustomerRow` messages lazily.
//!
//! The format: a header naming the columns
//! `customer_id,account_id,first_name,phone,language,monitored_since` in any order, optionally
//! `opted_out` and `active` (`true`/`1`/`yes`, `false`/`0`/`no`, empty for the default); other
//! columns are ignored, blank lines skipped, fields trimmed. Fields may be quoted as in RFC 4180
//! (`"Cohen, Dana"`, `""` for a quote).
//!
//! Rows are not validated here: the server parses each field and reports the bad ones by index
//! and field. A line with too few fields is still sent, its missing fields empty, so the server
//! names the field. The one thing that cannot be sent as written is a flag that is not a boolean
//! (the message field is a `bool`); such a row is held back and reported like a server error.

use std::collections::{HashMap, HashSet};

use pcn_proto::v1::CustomerRow;

use crate::exit::InvalidInput;

/// One CSV record and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    /// The fields, unquoted and trimmed.
    pub fields: Vec<String>,
}

/// The records of a CSV document, read one at a time. A quoted field may span lines; blank lines
/// are skipped; a leading byte-order mark is ignored.
#[derive(Debug, Clone)]
pub struct Records<T> {
    text: T,
    pos: usize,
    /// Lines consumed so far.
    line: usize,
}

impl<T: AsRef<str>> Records<T> {
    /// The records of `text`.
    pub fn new(text: T) -> Self {
        let pos = if text.as_ref().starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        Self { text, pos, line: 0 }
    }
}

/// A field being read: its text and, once a closing quote was seen, the length of the quoted
/// part (kept as written, while what follows the quote is trimmed).
#[derive(Default)]
struct Field {
    text: String,
    quoted_len: Option<usize>,
}

impl Field {
    fn finish(self) -> String {
        match self.quoted_len {
            Some(len) => {
                let (quoted, after) = self.text.split_at(len);
                format!("{quoted}{}", after.trim())
            }
            None => self.text.trim().to_owned(),
        }
    }

    fn is_blank(&self) -> bool {
        self.quoted_len.is_none() && self.text.trim().is_empty()
    }
}

impl<T: AsRef<str>> Iterator for Records<T> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let text = self.text.as_ref();
        while self.pos < text.len() {
            let first_line = self.line + 1;
            let mut fields = Vec::new();
            let mut field = Field::default();
            let mut in_quotes = false;
            let mut end = text.len();
            let mut chars = text[self.pos..].char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if in_quotes {
                    match c {
                        '"' if chars.next_if(|&(_, next)| next == '"').is_some() => {
                            field.text.push('"');
                        }
                        '"' => {
                            in_quotes = false;
                            field.quoted_len = Some(field.text.len());
                        }
                        c => {
                            if c == '\n' {
                                self.line += 1;
                            }
                            field.text.push(c);
                        }
                    }
                    continue;
                }
                match c {
                    ',' => fields.push(std::mem::take(&mut field).finish()),
                    // An opening quote: only at the start of a field (spaces aside).
                    '"' if field.is_blank() => {
                        field.text.clear();
                        in_quotes = true;
                    }
                    '\n' => {
                        end = self.pos + i + 1;
                        break;
                    }
                    c => field.text.push(c),
                }
            }
            self.line += 1;
            self.pos = end;
            if fields.is_empty() && field.is_blank() {
                continue;
            }
            fields.push(field.finish());
            return Some(Record {
                line: first_line,
                fields,
            });
        }
        None
    }
}

/// Where each column of the customer CSV is, from its header.
#[derive(Debug, Clone)]
struct Columns {
    customer_id: usize,
    account_id: usize,
    first_name: usize,
    phone: usize,
    language: usize,
    monitored_since: usize,
    opted_out: Option<usize>,
    active: Option<usize>,
}

impl Columns {
    fn from_header(header: &Record) -> Result<Self, InvalidInput> {
        let find = |name: &str| header.fields.iter().position(|f| f == name);
        let required = |name: &str| {
            find(name).ok_or_else(|| {
                InvalidInput(format!(
                    "the header (line {}) has no column {name}; expected \
                     customer_id,account_id,first_name,phone,language,monitored_since\
                     [,opted_out][,active]",
                    header.line
                ))
            })
        };
        Ok(Self {
            customer_id: required("customer_id")?,
            account_id: required("account_id")?,
            first_name: required("first_name")?,
            phone: required("phone")?,
            language: required("language")?,
            monitored_since: required("monitored_since")?,
            opted_out: find("opted_out"),
            active: find("active"),
        })
    }
}

/// Why a row was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The column at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// One data line of the file, as a message or as the reason it cannot be one.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    /// 1-based line the record starts on.
    pub line: usize,
    /// The `customer_id` field as written (for error messages).
    pub customer_id: String,
    /// The message to send.
    pub row: Result<CustomerRow, RowProblem>,
}

/// The data rows of a customer CSV, parsed one at a time after the header.
#[derive(Debug, Clone)]
pub struct CustomerRows<T> {
    records: Records<T>,
    columns: Columns,
}

impl<T: AsRef<str>> CustomerRows<T> {
    /// Reads the header; refuses a file without one or without a required column.
    pub fn new(text: T) -> Result<Self, InvalidInput> {
        let mut records = Records::new(text);
        let header = records
            .next()
            .ok_or_else(|| InvalidInput("the file is empty (a header line is required)".into()))?;
        let columns = Columns::from_header(&header)?;
        Ok(Self { records, columns })
    }
}

impl<T: AsRef<str>> Iterator for CustomerRows<T> {
    type Item = ParsedRow;

    fn next(&mut self) -> Option<ParsedRow> {
        let record = self.records.next()?;
        let field = |at: usize| record.fields.get(at).cloned().unwrap_or_default();
        let flag = |at: Option<usize>, name: &'static str| match at
            .map(field)
            .as_deref()
            .unwrap_or_default()
        {
            "" => Ok(None),
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            other => Err(RowProblem {
                field: name,
                message: format!("expected true or false, got {other:?}"),
            }),
        };
        let c = &self.columns;
        let row = flag(c.opted_out, "opted_out").and_then(|opted_out| {
            Ok(CustomerRow {
                customer_id: field(c.customer_id),
                account_id: field(c.account_id),
                first_name: field(c.first_name),
                phone: field(c.phone),
                language: field(c.language),
                monitored_since: field(c.monitored_since),
                opted_out,
                active: flag(c.active, "active")?,
            })
        });
        Some(ParsedRow {
            line: record.line,
            customer_id: field(c.customer_id),
            row,
        })
    }
}

/// What a second pass over the file tells about a finished import.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Located {
    /// Stream index → (line, customer id as written), for the indices asked about.
    pub rows: HashMap<u64, (usize, String)>,
    /// Rows held back: (line, customer id as written, problem).
    pub not_sent: Vec<(usize, String, RowProblem)>,
}

/// Maps stream indices (the server's `RowError.index`, counting only the rows sent) back to
/// lines, and lists the rows that were held back. Re-reading the file is cheaper than keeping a
/// line number per sent row for the rare import with errors.
pub fn locate<T: AsRef<str>>(rows: CustomerRows<T>, indices: &HashSet<u64>) -> Located {
    let mut located = Located::default();
    let mut index = 0_u64;
    for parsed in rows {
        match parsed.row {
            Ok(_) => {
                if indices.contains(&index) {
                    located
                        .rows
                        .insert(index, (parsed.line, parsed.customer_id));
                }
                index += 1;
            }
            Err(problem) => located
                .not_sent
                .push((parsed.line, parsed.customer_id, problem)),
        }
    }
    located
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<(usize, Vec<String>)> {
        Records::new(text).map(|r| (r.line, r.fields)).collect()
    }

    fn rec(line: usize, fields: &[&str]) -> (usize, Vec<String>) {
        (line, fields.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn plain_fields_are_split_on_commas_and_trimmed() {
        assert_eq!(
            split("a, b ,c\r\n1,2,3\n"),
            vec![rec(1, &["a", "b", "c"]), rec(2, &["1", "2", "3"])]
        );
    }

    #[test]
    fn a_quoted_field_keeps_its_commas_quotes_and_spaces() {
        assert_eq!(
            split("C1,\"Cohen, Dana\",\"say \"\"hi\"\"\", \" x \" \n"),
            vec![rec(1, &["C1", "Cohen, Dana", "say \"hi\"", " x "])]
        );
    }

    #[test]
    fn a_quoted_newline_stays_in_the_field_and_line_numbers_follow_the_file() {
        assert_eq!(
            split("h1,h2\n\n\"two\nlines\",x\n  \nlast,y"),
            vec![
                rec(1, &["h1", "h2"]),
                rec(3, &["two\nlines", "x"]),
                rec(6, &["last", "y"])
            ]
        );
    }

    #[test]
    fn empty_fields_and_a_byte_order_mark() {
        assert_eq!(split("\u{feff}a,,\"\"\n"), vec![rec(1, &["a", "", ""])]);
    }

    const HEADER: &str = "customer_id,account_id,first_name,phone,language,monitored_since";

    #[test]
    fn rows_map_columns_by_header_name_and_a_short_line_is_sent_with_empty_fields() {
        let text = format!(
            "note,{HEADER},active\n\
             ignored,C1,ACC-1,\"Cohen, Dana\",050-123-4567,he,2026-01-01,no\n\
             x,C2,ACC-2\n"
        );
        let rows: Vec<ParsedRow> = CustomerRows::new(text.as_str()).unwrap().collect();
        assert_eq!(rows.len(), 2);
        let first = rows[0].row.as_ref().unwrap();
        assert_eq!(first.first_name, "Cohen, Dana");
        assert_eq!(first.phone, "050-123-4567");
        assert_eq!(first.active, Some(false));
        assert_eq!(first.opted_out, None);
        let second = rows[1].row.as_ref().unwrap();
        assert_eq!(
            (second.customer_id.as_str(), second.phone.as_str()),
            ("C2", "")
        );
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn a_header_without_a_required_column_is_refused() {
        let err = CustomerRows::new("customer_id,account_id\n").unwrap_err();
        assert!(err.0.contains("first_name"), "{}", err.0);
        assert!(CustomerRows::new("\n\n").is_err());
    }

    #[test]
    fn a_flag_that_is_not_a_boolean_holds_the_row_back_and_indices_skip_it() {
        let text = format!(
            "{HEADER},opted_out\n\
             C1,A,Dana,050,he,2026-01-01,yes\n\
             C2,A,Omar,050,ar,2026-01-01,maybe\n\
             C3,A,Olga,050,ru,2026-01-01,\n"
        );
        let rows = CustomerRows::new(text.as_str()).unwrap();
        let located = locate(rows, &HashSet::from([0, 1]));
        assert_eq!(
            located.rows,
            HashMap::from([(0, (2, "C1".to_owned())), (1, (4, "C3".to_owned()))])
        );
        assert_eq!(located.not_sent.len(), 1);
        let (line, customer, problem) = &located.not_sent[0];
        assert_eq!(
            (*line, customer.as_str(), problem.field),
            (3, "C2", "opted_out")
        );
    }
}
