//! The report as a printable A4 PDF: the headline tiles, the figures of every section, and the
//! charts (delivery outcomes, reasons, the daily pass rate) drawn as vector bars.
//!
//! Written directly in PDF 1.4 syntax: the document needs only the standard Helvetica fonts (no
//! font file is embedded: every PDF reader has them), text, rectangles and lines — a few hundred
//! lines here instead of a PDF library and its font and layout stack in the worker's build. The
//! content streams are left uncompressed: the report is a few kilobytes of operators, and tests
//! and auditors can read its figures with any text tool. The report holds figures only, never a
//! customer's data. All coordinates are whole points (integer arithmetic, like the HTML charts).
//!
//! Over 600 lines: about 570 of the PDF writer (objects, pages, text, bars) and 85 of unit tests
//! checking its structure (every xref offset and stream length) and its figures.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;

use super::html::{grouped, time_text, value_text};
use super::{Bar, Figure, Kpi, figures, kpis, outcome_bars, pass_rate_axis, reason_bars};
use crate::report::{MonthlyReport, NameCount};

/// A4 in points.
const PAGE_W: i64 = 595;
const PAGE_H: i64 = 842;
const MARGIN: i64 = 48;
/// Where right-aligned values of a figure list end.
const VALUE_RIGHT: i64 = 400;
const INK: &str = "#1c2733";
const MUTED: &str = "#5f6b7a";
const RULE: &str = "#dde3ea";

/// The report as a PDF document (A4, portrait; usually three pages).
pub fn pdf(r: &MonthlyReport) -> Vec<u8> {
    let all = figures(r);
    let mut d = Doc::new();
    let title = format!(
        "Premium customer notifications: {} {}",
        r.month.english_name(),
        r.month.year()
    );
    d.y -= 18;
    d.text(MARGIN, d.y, 18, true, INK, &title);
    d.y -= 16;
    d.text(
        MARGIN,
        d.y,
        10,
        false,
        MUTED,
        &format!(
            "Monthly report for {} - generated {}",
            r.month,
            time_text(Some(r.generated_at))
        ),
    );
    kpi_tiles(&mut d, r);

    d.heading("Programme summary");
    d.figure_rows(&all, "summary");
    d.heading("Qualification");
    d.figure_rows(&all, "qualification");
    d.subheading("Reasons for non-qualification");
    d.hbars(&reason_bars(r));

    d.heading("Daily balance checks");
    pass_rate_chart(&mut d, r);
    daily_table(&mut d, r);

    d.heading("SMS delivery");
    d.subheading("Where the notifications ended");
    d.hbars(&outcome_bars(r));
    d.figure_rows(&all, "delivery");

    d.heading("Delivery failures");
    d.subheading("Failure categories");
    d.name_rows(&r.failure_categories);
    d.subheading("Top carrier error codes");
    d.name_rows(&r.top_error_codes);
    if !r.carriers.is_empty() {
        d.heading("Carriers");
        d.figure_rows(&all, "carriers");
    }

    d.heading("Processing");
    d.figure_rows(&all, "processing");

    d.heading("Recommendations");
    for line in &r.recommendations {
        d.paragraph(&format!("- {line}"), 10);
    }
    d.finish(&title, &format!("PCN monthly report {}", r.month))
}

fn kpi_tiles(d: &mut Doc, r: &MonthlyReport) {
    let gap = 10;
    let width = (PAGE_W - 2 * MARGIN - 3 * gap) / 4;
    let height = 62;
    d.y -= 14 + height;
    for (i, kpi) in (0i64..).zip(kpis(r)) {
        let Kpi {
            label,
            value,
            short: note,
            ..
        } = kpi;
        let x = MARGIN + i * (width + gap);
        d.rect(x, d.y, width, height, "#f4f6f9");
        d.rect(x, d.y + height - 3, width, 3, "#1f3a5f");
        d.text(x + 8, d.y + height - 18, 8, false, MUTED, label);
        d.text(x + 8, d.y + 24, 17, true, INK, &value);
        d.text(x + 8, d.y + 9, 7, false, MUTED, &note);
    }
}

/// The daily pass rate as a bar per day (red: some checks got no answer). The axis starts at the
/// highest of 0/50/80/90/95 % strictly below the month's worst day, as in the HTML chart.
fn pass_rate_chart(d: &mut Doc, r: &MonthlyReport) {
    const PLOT_H: i64 = 150;
    const LEFT: i64 = 34;
    let days = i64::from(r.month.num_days());
    let plot_w = PAGE_W - 2 * MARGIN - LEFT;
    let slot = plot_w / days;
    let (floor, step) = pass_rate_axis(r);
    d.room(PLOT_H + 50);
    d.y -= 10;
    let top = d.y;
    let bottom = top - PLOT_H;
    let x0 = MARGIN + LEFT;
    let height_of = |rate: Decimal| -> i64 {
        let above = (rate.max(Decimal::from(floor)) - Decimal::from(floor)) * Decimal::from(PLOT_H)
            / Decimal::from(100 - floor);
        above.round().to_i64().unwrap_or(0)
    };
    let mut tick = floor;
    while tick <= 100 {
        let y = bottom + height_of(Decimal::from(tick));
        d.line(x0, y, x0 + plot_w, y, RULE);
        d.text_right(x0 - 4, y - 3, 8, false, MUTED, &format!("{tick}%"));
        tick += step;
    }
    for row in &r.daily {
        let day = i64::from(chrono::Datelike::day(&row.date));
        let color = if row.missing > 0 {
            "#c62828"
        } else {
            "#1f3a5f"
        };
        let x = x0 + slot * (day - 1) + 2;
        d.rect(
            x,
            bottom,
            (slot - 4).max(1),
            height_of(row.pass_rate),
            color,
        );
    }
    for day in 1..=days {
        if day % 2 == 0 && day != days {
            continue;
        }
        let x = x0 + slot * (day - 1) + slot / 2;
        d.text_centered(x, bottom - 11, 7, MUTED, &day.to_string());
    }
    d.line(x0, bottom, x0 + plot_w, bottom, MUTED);
    d.line(x0, bottom, x0, top, MUTED);
    d.y = bottom - 24;
    d.text(
        x0,
        d.y,
        8,
        false,
        MUTED,
        &format!(
            "Day of {} {}: share of balance checks that passed (red: checks without an answer)",
            r.month.english_name(),
            r.month.year()
        ),
    );
}

fn daily_table(d: &mut Doc, r: &MonthlyReport) {
    const COLS: [(&str, i64); 6] = [
        ("Date", 0),
        ("Checked", 150),
        ("Passed", 220),
        ("Below", 290),
        ("Missing", 360),
        ("Pass rate", 440),
    ];
    let header = |d: &mut Doc| {
        d.y -= 16;
        d.text(MARGIN, d.y, 8, true, INK, COLS[0].0);
        for (label, right) in &COLS[1..] {
            d.text_right(MARGIN + right, d.y, 8, true, INK, label);
        }
        d.line(MARGIN, d.y - 3, MARGIN + 440, d.y - 3, RULE);
    };
    d.room(40);
    header(d);
    for row in &r.daily {
        if d.room(11) {
            header(d);
        }
        d.y -= 11;
        d.text(MARGIN, d.y, 8, false, INK, &row.date.to_string());
        let cells = [
            grouped(row.checked),
            grouped(row.passed),
            grouped(row.below_threshold),
            grouped(row.missing),
            format!("{}%", row.pass_rate),
        ];
        for ((_, right), cell) in COLS[1..].iter().zip(cells) {
            d.text_right(MARGIN + right, d.y, 8, false, INK, &cell);
        }
    }
    if r.daily.is_empty() {
        d.paragraph("No balance checks.", 9);
    }
}

/// A document being laid out, top to bottom, page after page.
struct Doc {
    pages: Vec<String>,
    page: String,
    /// The baseline of the last line written (points from the bottom).
    y: i64,
}

impl Doc {
    fn new() -> Self {
        Self {
            pages: Vec::new(),
            page: String::new(),
            y: PAGE_H - MARGIN,
        }
    }

    /// Starts a new page unless `height` more points fit; true when it did.
    fn room(&mut self, height: i64) -> bool {
        if self.y - height < MARGIN + 16 {
            self.pages.push(std::mem::take(&mut self.page));
            self.y = PAGE_H - MARGIN;
            true
        } else {
            false
        }
    }

    fn heading(&mut self, title: &str) {
        self.room(70);
        self.y -= 28;
        self.text(MARGIN, self.y, 13, true, INK, title);
        self.line(MARGIN, self.y - 5, PAGE_W - MARGIN, self.y - 5, RULE);
        self.y -= 6;
    }

    fn subheading(&mut self, title: &str) {
        self.room(40);
        self.y -= 18;
        self.text(MARGIN, self.y, 10, true, INK, title);
    }

    fn figure_rows(&mut self, all: &[Figure], section: &str) {
        for f in all.iter().filter(|f| f.section == section) {
            self.row(&f.label, &value_text(&f.value));
        }
    }

    fn name_rows(&mut self, items: &[NameCount]) {
        if items.is_empty() {
            self.row("None.", "");
        }
        for item in items {
            self.row(&item.name, &grouped(item.count));
        }
    }

    /// A label and its value, right-aligned.
    fn row(&mut self, label: &str, value: &str) {
        self.room(13);
        self.y -= 13;
        self.text(MARGIN, self.y, 9, false, INK, label);
        self.text_right(VALUE_RIGHT, self.y, 9, true, INK, value);
    }

    /// Horizontal bars, lengths proportional to the counts.
    fn hbars(&mut self, bars: &[Bar]) {
        const LABEL_W: i64 = 130;
        const BAR_W: i64 = 260;
        if bars.is_empty() {
            self.row("None.", "");
            return;
        }
        let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
        for bar in bars {
            self.room(18);
            self.y -= 18;
            let x = MARGIN + LABEL_W;
            self.text_right(x - 6, self.y + 3, 9, false, INK, &bar.label);
            self.rect(x, self.y, BAR_W, 12, "#eef1f5");
            let len = i64::try_from(bar.count.saturating_mul(BAR_W as u64) / max).unwrap_or(0);
            self.rect(x, self.y, len, 12, bar.color);
            self.text(
                x + BAR_W + 6,
                self.y + 3,
                9,
                false,
                INK,
                &format!("{} ({})", grouped(bar.count), bar.note),
            );
        }
    }

    /// Text wrapped to the page width.
    fn paragraph(&mut self, text: &str, size: i64) {
        let width = PAGE_W - 2 * MARGIN;
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if text_width(&candidate, size, false) > width && !line.is_empty() {
                self.line_of_text(&line, size);
                line = word.to_owned();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            self.line_of_text(&line, size);
        }
    }

    fn line_of_text(&mut self, line: &str, size: i64) {
        self.room(size + 4);
        self.y -= size + 4;
        self.text(MARGIN, self.y, size, false, INK, line);
    }

    fn text(&mut self, x: i64, y: i64, size: i64, bold: bool, color: &str, s: &str) {
        let font = if bold { "F2" } else { "F1" };
        let _ = writeln!(
            self.page,
            "BT {} rg /{font} {size} Tf {x} {y} Td ({}) Tj ET",
            rgb(color),
            pdf_string(s)
        );
    }

    fn text_right(&mut self, right: i64, y: i64, size: i64, bold: bool, color: &str, s: &str) {
        let x = right - text_width(s, size, bold);
        self.text(x, y, size, bold, color, s);
    }

    fn text_centered(&mut self, center: i64, y: i64, size: i64, color: &str, s: &str) {
        let x = center - text_width(s, size, false) / 2;
        self.text(x, y, size, false, color, s);
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: &str) {
        if w > 0 && h > 0 {
            let _ = writeln!(self.page, "{} rg {x} {y} {w} {h} re f", rgb(color));
        }
    }

    fn line(&mut self, x1: i64, y1: i64, x2: i64, y2: i64, color: &str) {
        let _ = writeln!(
            self.page,
            "{} RG 0.5 w {x1} {y1} m {x2} {y2} l S",
            rgb(color)
        );
    }

    /// The finished file: every page with its footer, the fonts, the cross-reference table.
    fn finish(mut self, title: &str, footer: &str) -> Vec<u8> {
        self.pages.push(std::mem::take(&mut self.page));
        let count = self.pages.len();
        let mut objects: Vec<String> = Vec::new();
        // 1 catalog, 2 page tree, 3/4 fonts, 5 info; then per page: the page, its content.
        let first_page = 6;
        let kids: Vec<String> = (0..count)
            .map(|i| format!("{} 0 R", first_page + 2 * i))
            .collect();
        objects.push("<< /Type /Catalog /Pages 2 0 R >>".to_owned());
        objects.push(format!(
            "<< /Type /Pages /Kids [{}] /Count {count} >>",
            kids.join(" ")
        ));
        for font in ["Helvetica", "Helvetica-Bold"] {
            objects.push(format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{font} /Encoding /WinAnsiEncoding >>"
            ));
        }
        objects.push(format!(
            "<< /Title ({}) /Producer (pcn-worker) >>",
            pdf_string(title)
        ));
        for (i, mut content) in self.pages.into_iter().enumerate() {
            let text = format!("{footer} - page {} of {count}", i + 1);
            let x = PAGE_W - MARGIN - text_width(&text, 7, false);
            let _ = writeln!(
                content,
                "BT {} rg /F1 7 Tf {x} 28 Td ({}) Tj ET",
                rgb(MUTED),
                pdf_string(&text)
            );
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                first_page + 2 * i + 1
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                content.len()
            ));
        }
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::with_capacity(objects.len());
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            let _ = writeln!(tail, "{offset:010} 00000 n ");
        }
        let _ = write!(
            tail,
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        out.extend_from_slice(tail.as_bytes());
        out
    }
}

/// `#rrggbb` as a PDF colour (`r g b`, each 0–1 with three places).
fn rgb(hex: &str) -> String {
    let channel = |i: usize| {
        let v = u32::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
        let milli = v * 1000 / 255;
        format!("{}.{:03}", milli / 1000, milli % 1000)
    };
    format!("{} {} {}", channel(1), channel(3), channel(5))
}

/// A PDF literal string's content: WinAnsi-safe ASCII (a few typographic characters mapped, any
/// other non-ASCII character as `?`), with `\`, `(` and `)` escaped.
fn pdf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '—' | '–' | '·' => out.push('-'),
            '…' => out.push_str("..."),
            '‘' | '’' => out.push('\''),
            '“' | '”' => out.push('"'),
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// Width of `s` in points at `size`, from the standard Helvetica metrics (Helvetica-Bold is a
/// little wider; its digits are the same).
fn text_width(s: &str, size: i64, bold: bool) -> i64 {
    let units: i64 = pdf_string(s)
        .chars()
        .filter(|c| *c != '\\')
        .map(|c| glyph_width(c, bold))
        .sum();
    units * size / 1000
}

/// Advance width of a printable ASCII glyph in 1/1000 em (Helvetica AFM).
fn glyph_width(c: char, bold: bool) -> i64 {
    const HELVETICA: [i64; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
        278, // ' '..'/'
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // '0'..'9'
        278, 278, 584, 584, 584, 556, 1015, // ':'..'@'
        667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // 'A'..'M'
        722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // 'N'..'Z'
        278, 278, 278, 469, 556, 333, // '['..'`'
        556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // 'a'..'m'
        556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // 'n'..'z'
        334, 260, 334, 584, // '{'..'~'
    ];
    let index = u32::from(c).saturating_sub(32) as usize;
    let base = HELVETICA.get(index).copied().unwrap_or(556);
    if bold && !c.is_ascii_digit() {
        base + base / 12
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(pdf: &[u8]) -> String {
        String::from_utf8_lossy(pdf).into_owned()
    }

    #[test]
    fn the_pdf_is_a_well_formed_document_with_pages() {
        let pdf = pdf(&crate::report::tests::sample());
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = text_of(&pdf);
        // The headline tiles, with their short notes.
        assert!(text.contains("days with checks") && text.contains("(still in flight)"));
        let count: usize = text
            .split("/Count ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("page count");
        assert!(count >= 2, "{count} pages");
        assert_eq!(text.matches("/Type /Page ").count(), count);
        // Every cross-reference entry points at its object.
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|rest| rest.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(pdf[xref_at..].starts_with(b"xref\n"));
        // (The binary comment of the header is not UTF-8: read the table from the bytes.)
        let table = std::str::from_utf8(&pdf[xref_at..]).expect("ASCII cross-reference table");
        let entries: Vec<usize> = table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect();
        assert!(entries.len() >= 5 + 2 * count);
        for (i, offset) in entries.iter().enumerate() {
            let head = format!("{} 0 obj\n", i + 1);
            assert!(
                pdf[*offset..].starts_with(head.as_bytes()),
                "object {}",
                i + 1
            );
        }
        // Every stream's length is its content's.
        for part in text.split("<< /Length ").skip(1) {
            let (len, rest) = part.split_once(" >>\nstream\n").unwrap();
            let len: usize = len.parse().unwrap();
            assert!(rest[len..].starts_with("endstream"));
        }
    }

    #[test]
    fn the_pdf_holds_the_months_figures_and_its_charts() {
        let r = crate::report::tests::sample();
        let text = text_of(&pdf(&r));
        for figure in [
            "(Premium customer notifications: October 2026)",
            "(Customers monitored)",
            "(1,000)",
            "(90.00%)",
            "(Reasons for non-qualification)",
            "(Below threshold)",
            "(2026-10-03)",
            "(INVALID_NUMBER)",
            "(<script>\"x\",y)",
            "(PCN monthly report 2026-10 - page 1 of ",
        ] {
            assert!(text.contains(figure), "missing {figure}");
        }
        // Bars are filled rectangles: 31 daily bars, red where checks were missing (day 3).
        assert!(text.matches(" re f").count() > 31 + 6);
        assert!(text.contains("0.776 0.156 0.156 rg"));
        assert!(!text.contains("+9725"), "no phone number");
    }

    #[test]
    fn text_is_escaped_and_kept_to_winansi() {
        assert_eq!(pdf_string("a (b) \\ c — d ש"), "a \\(b\\) \\\\ c - d ?");
        assert_eq!(text_width("0000", 10, false), 22);
        assert_eq!(rgb("#ffffff"), "1.000 1.000 1.000");
    }
}
