//! A tiny aligned-column printer for the readable (non `--json`) output.
//!
//! Columns are as wide as their widest cell (counted in characters, not bytes: names may be in
//! Hebrew or Russian), separated by two spaces. A column whose cells are all numbers is aligned
//! right so figures line up.

use std::fmt;

/// Rows under upper-case headers.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// True when no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn widths(&self) -> Vec<usize> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, header)| {
                self.rows
                    .iter()
                    .map(|row| width(&row[i]))
                    .chain([width(header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn numeric(&self) -> Vec<bool> {
        (0..self.headers.len())
            .map(|i| {
                let mut cells = self.rows.iter().map(|row| row[i].as_str());
                !self.rows.is_empty()
                    && cells.all(|cell| is_blank(cell) || is_number(cell))
                    && self.rows.iter().any(|row| !is_blank(&row[i]))
            })
            .collect()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        let numeric = self.numeric();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                if numeric[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `key  value` lines with the values aligned, for one record (a month, a customer).
pub fn pairs(pairs: &[(&str, String)]) -> String {
    let key_width = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = " ".repeat(key_width - width(key));
        out.push_str(format!("{key}{pad}  {value}").trim_end());
        out.push('\n');
    }
    out
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// An empty cell, or the `-` printed for an empty value: neither decides a column's alignment.
fn is_blank(cell: &str) -> bool {
    cell.is_empty() || cell == "-"
}

fn is_number(cell: &str) -> bool {
    cell.bytes().any(|b| b.is_ascii_digit())
        && cell.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_numbers_align_right() {
        let mut table = Table::new(&["CUSTOMER", "STATUS", "ATTEMPTS"]);
        table.push(vec!["C1".into(), "DELIVERED".into(), "1".into()]);
        table.push(vec!["C100234".into(), "FAILED".into(), "12".into()]);
        assert_eq!(
            table.to_string(),
            "CUSTOMER  STATUS     ATTEMPTS\n\
             C1        DELIVERED         1\n\
             C100234   FAILED           12\n"
        );
    }

    #[test]
    fn a_dash_for_an_empty_value_does_not_stop_a_column_aligning_right() {
        let mut table = Table::new(&["AMOUNT"]);
        table.push(vec!["20000.00".into()]);
        table.push(vec!["-".into()]);
        assert_eq!(table.to_string(), "  AMOUNT\n20000.00\n       -\n");
    }

    #[test]
    fn widths_count_characters_not_bytes_and_short_rows_are_padded() {
        let mut table = Table::new(&["NAME", "LANG"]);
        table.push(vec!["דנה".into(), "he".into()]);
        table.push(vec!["Ольга".into()]);
        assert_eq!(table.to_string(), "NAME   LANG\nדנה    he\nОльга\n");
    }

    #[test]
    fn pairs_align_their_values() {
        assert_eq!(
            pairs(&[("month", "2026-10".into()), ("run id", "abc".into())]),
            "month   2026-10\nrun id  abc\n"
        );
    }
}
