//! Month names in each supported language, in the form the SMS templates use.

#[cfg(doc)]
use crate::domain::YearMonth;
use crate::domain::{Language, MONTH_NAMES};

const MONTHS_HE: [&str; 12] = [
    "ינואר",
    "פברואר",
    "מרץ",
    "אפריל",
    "מאי",
    "יוני",
    "יולי",
    "אוגוסט",
    "ספטמבר",
    "אוקטובר",
    "נובמבר",
    "דצמבר",
];

/// The names used in Israeli Arabic media and banking (not the Levantine "تشرين الأول" series).
const MONTHS_AR: [&str; 12] = [
    "يناير",
    "فبراير",
    "مارس",
    "أبريل",
    "مايو",
    "يونيو",
    "يوليو",
    "أغسطس",
    "سبتمبر",
    "أكتوبر",
    "نوفمبر",
    "ديسمبر",
];

/// Nominative, lower case: the Russian template says "Весь {MonthName} …" ("all of October").
const MONTHS_RU: [&str; 12] = [
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
];

/// The name of `month` (1 = January) in `language`, in the form its template uses: English
/// "October", Hebrew "אוקטובר", Arabic "أكتوبر", Russian "октябрь" (nominative, lower case).
///
/// `month` is normally [`YearMonth::month`], always in `1..=12`; other values are clamped into
/// that range rather than panicking inside a workflow.
pub fn month_name(language: Language, month: u32) -> &'static str {
    let index = (month.clamp(1, 12) - 1) as usize;
    let names = match language {
        Language::Hebrew => &MONTHS_HE,
        Language::Arabic => &MONTHS_AR,
        Language::English => &MONTH_NAMES,
        Language::Russian => &MONTHS_RU,
    };
    names[index]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::YearMonth;

    // --- month names ------------------------------------------------------------------------

    #[test]
    fn month_names_per_language() {
        assert_eq!(month_name(Language::English, 10), "October");
        assert_eq!(month_name(Language::Hebrew, 10), "אוקטובר");
        assert_eq!(month_name(Language::Arabic, 10), "أكتوبر");
        assert_eq!(month_name(Language::Russian, 10), "октябрь");
        assert_eq!(month_name(Language::English, 1), "January");
        assert_eq!(month_name(Language::Hebrew, 12), "דצמבר");
        for m in 1..=12 {
            let ym = YearMonth::new(2026, m).unwrap();
            assert_eq!(month_name(Language::English, m), ym.english_name());
        }
        // Out of range is clamped, not a panic.
        assert_eq!(month_name(Language::English, 0), "January");
        assert_eq!(month_name(Language::English, 13), "December");
    }
}
