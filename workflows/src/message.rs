//! SMS message templates, rendering and segment counting.
//!
//! A [`TemplateSet`] holds one [`MessageTemplate`] per [`Language`]. It is checked when it is
//! *loaded*: every template is rendered with the worst case it can ever meet (the longest
//! possible first name made of the most expensive characters, every month name, see
//! [`TemplateSet::from_sources`]) and the set is refused if any rendering would need more than
//! [`TemplateLimits::max_segments`] SMS segments. [`TemplateSet::render`] therefore never fails
//! and never produces a message longer than that: the check is made once, at start-up, instead of
//! refusing a customer's message at send time.
//!
//! Segments are counted as carriers bill them (GSM 03.38 / 3GPP TS 23.040): GSM-7 when every
//! character is in the GSM default alphabet or its extension table, otherwise UCS-2 (UTF-16).
//! See [`segments`].
//!
//! Like the rest of this crate, nothing here performs IO: the template texts are handed in by the
//! caller (the worker reads them from `templates/sms/*.txt`).

use serde::{Deserialize, Serialize};

use crate::customer::FirstName;
use crate::domain::{DomainError, Language, YearMonth};

// ---------------------------------------------------------------------------------------------
// Segment counting
// ---------------------------------------------------------------------------------------------

/// Septets in a single-part GSM-7 message.
const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 message (7 septets go to the UDH).
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single-part UCS-2 message.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 message (3 go to the UDH).
const UCS2_PART: usize = 67;

/// How a message is encoded on the air interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 / UTF-16: used as soon as one character is outside the GSM alphabet.
    Ucs2,
}

impl Encoding {
    /// The stored spelling (`notifications.encoding`): `GSM7` or `UCS2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM7",
            Self::Ucs2 => "UCS2",
        }
    }
}

/// The size of a message as the carrier bills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentCount {
    /// Encoding the message needs.
    pub encoding: Encoding,
    /// Length in the encoding's units: septets for GSM-7 (an extension character counts 2),
    /// UTF-16 code units for UCS-2 (a character outside the BMP, e.g. an emoji, counts 2).
    pub units: usize,
    /// Number of SMS parts (at least 1, also for an empty text).
    pub segments: u32,
}

/// Whether `c` is in the GSM 03.38 default alphabet (1 septet).
fn is_gsm7_basic(c: char) -> bool {
    matches!(c,
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
        | 'Å' | 'å' | 'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ'
        | 'æ' | 'ß' | 'É' | ' '..='#' | '¤' | '%'..='?' | '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ'
        | 'Ü' | '§' | '¿' | 'a'..='z' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à'
    )
}

/// Whether `c` is in the GSM 03.38 extension table (escape + septet: 2 septets).
fn is_gsm7_extension(c: char) -> bool {
    matches!(
        c,
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€'
    )
}

/// Septets `c` costs in GSM-7, or `None` when it cannot be encoded in GSM-7.
fn gsm7_septets(c: char) -> Option<usize> {
    if is_gsm7_basic(c) {
        Some(1)
    } else if is_gsm7_extension(c) {
        Some(2)
    } else {
        None
    }
}

/// Packs indivisible items of the given sizes into consecutive parts of `part` units (greedy,
/// which is optimal for an ordered sequence). Returns the total size and the number of parts;
/// a total of at most `single` fits one unsplit message.
fn pack(sizes: impl Iterator<Item = usize>, single: usize, part: usize) -> (usize, u32) {
    let (mut units, mut parts, mut fill) = (0_usize, 1_u32, 0_usize);
    for size in sizes {
        units += size;
        if fill + size > part {
            parts = parts.saturating_add(1);
            fill = 0;
        }
        fill += size;
    }
    if units <= single {
        (units, 1)
    } else {
        (units, parts)
    }
}

/// Counts the SMS segments of `text`.
///
/// - **GSM-7** when every character is in the GSM 03.38 default alphabet or its extension table
///   (`^ { } \ [ ~ ] | €` and form feed, 2 septets each): one segment up to 160 septets, otherwise
///   153-septet segments; an escape pair is never split across two segments.
/// - **UCS-2** otherwise, counted in UTF-16 code units: one segment up to 70 units, otherwise
///   67-unit segments; a surrogate pair (e.g. an emoji) is never split across two segments.
pub fn segments(text: &str) -> SegmentCount {
    let gsm7 = text.chars().all(|c| gsm7_septets(c).is_some());
    let (encoding, (units, segments)) = if gsm7 {
        let sizes = text.chars().map(|c| gsm7_septets(c).unwrap_or(1));
        (Encoding::Gsm7, pack(sizes, GSM7_SINGLE, GSM7_PART))
    } else {
        let sizes = text.chars().map(char::len_utf16);
        (Encoding::Ucs2, pack(sizes, UCS2_SINGLE, UCS2_PART))
    };
    SegmentCount {
        encoding,
        units,
        segments,
    }
}

// ---------------------------------------------------------------------------------------------
// Month names
// ---------------------------------------------------------------------------------------------

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

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
        Language::English => &MONTHS_EN,
        Language::Russian => &MONTHS_RU,
    };
    names[index]
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// Placeholder for the customer's first name (required in every template).
pub const FIRST_NAME_PLACEHOLDER: &str = "{CustomerFirstName}";
/// Placeholder for the month's name in the template's language.
pub const MONTH_NAME_PLACEHOLDER: &str = "{MonthName}";
/// Placeholder for the four-digit year of the month.
pub const YEAR_PLACEHOLDER: &str = "{Year}";

/// Error field of a language's template, e.g. `"template.he"`.
fn template_field(language: Language) -> &'static str {
    match language {
        Language::Hebrew => "template.he",
        Language::Arabic => "template.ar",
        Language::English => "template.en",
        Language::Russian => "template.ru",
    }
}

/// Position of a language in [`Language::ALL`].
fn slot(language: Language) -> usize {
    match language {
        Language::Hebrew => 0,
        Language::Arabic => 1,
        Language::English => 2,
        Language::Russian => 3,
    }
}

/// Quotes a fragment of a template for an error message, bounded in length.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    FirstName,
    MonthName,
    Year,
}

/// A parsed SMS template of one language.
///
/// The text may contain exactly these placeholders: `{CustomerFirstName}` (required),
/// `{MonthName}` and `{Year}`. Any other `{...}`, a stray `{` or `}`, a control character other
/// than a line feed (e.g. the `\r` of a CRLF file), or a blank template is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    language: Language,
    source: String,
    parts: Vec<Part>,
}

impl MessageTemplate {
    /// Parses the template of `language` (errors name the field `template.<code>`).
    pub fn parse(language: Language, source: &str) -> Result<Self, DomainError> {
        let field = template_field(language);
        if source.trim().is_empty() {
            return Err(DomainError::new(field, "the template is empty"));
        }
        if let Some(c) = source.chars().find(|&c| c.is_control() && c != '\n') {
            return Err(DomainError::new(
                field,
                format!(
                    "contains the control character {c:?}; only line feeds are allowed \
                     (save the file with LF line endings)"
                ),
            ));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(['{', '}']) {
            let (text, tail) = rest.split_at(at);
            if !text.is_empty() {
                parts.push(Part::Text(text.to_owned()));
            }
            if tail.starts_with('}') {
                return Err(DomainError::new(
                    field,
                    format!("'}}' without a matching '{{' before {}", quoted(tail)),
                ));
            }
            let Some(close) = tail.find('}') else {
                return Err(DomainError::new(
                    field,
                    format!("'{{' without a closing '}}' at {}", quoted(tail)),
                ));
            };
            let placeholder = &tail[..=close];
            parts.push(match placeholder {
                FIRST_NAME_PLACEHOLDER => Part::FirstName,
                MONTH_NAME_PLACEHOLDER => Part::MonthName,
                YEAR_PLACEHOLDER => Part::Year,
                other => {
                    return Err(DomainError::new(
                        field,
                        format!(
                            "unknown placeholder {}; expected {FIRST_NAME_PLACEHOLDER}, \
                             {MONTH_NAME_PLACEHOLDER} or {YEAR_PLACEHOLDER}",
                            quoted(other)
                        ),
                    ));
                }
            });
            rest = &tail[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if !parts.contains(&Part::FirstName) {
            return Err(DomainError::new(
                field,
                format!("the template must contain {FIRST_NAME_PLACEHOLDER}"),
            ));
        }
        Ok(Self {
            language,
            source: source.to_owned(),
            parts,
        })
    }

    /// The template's language.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The template text as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Substitutes the placeholders; no length checks (that is [`TemplateSet`]'s job).
    fn fill(&self, first_name: &str, month_name: &str, year: i32) -> String {
        let mut out = String::with_capacity(self.source.len() + first_name.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::FirstName => out.push_str(first_name),
                Part::MonthName => out.push_str(month_name),
                Part::Year => out.push_str(&year.to_string()),
            }
        }
        out
    }
}

/// Bounds a [`TemplateSet`] is checked against when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateLimits {
    /// Most SMS segments any rendered message may need. Default
    /// [`TemplateLimits::DEFAULT_MAX_SEGMENTS`].
    pub max_segments: u32,
    /// First names are shortened to this many characters when rendered. Default
    /// [`TemplateLimits::DEFAULT_MAX_FIRST_NAME_CHARS`].
    pub max_first_name_chars: usize,
}

impl TemplateLimits {
    /// Default segment ceiling: 5, the smallest that the shipped templates
    /// (`templates/sms/*.txt`) pass. The English one decides it: its worst case is a customer
    /// whose name is not GSM-7 (20 characters outside the BMP, e.g. emoji), which turns the
    /// whole message into UCS-2 (278 units, 5 segments; with 20 Hebrew letters it would be 258
    /// units, 4 segments). Hebrew, Arabic and Russian need at most 3.
    pub const DEFAULT_MAX_SEGMENTS: u32 = 5;
    /// Default first-name budget: 20 characters.
    pub const DEFAULT_MAX_FIRST_NAME_CHARS: usize = 20;
}

impl Default for TemplateLimits {
    fn default() -> Self {
        Self {
            max_segments: Self::DEFAULT_MAX_SEGMENTS,
            max_first_name_chars: Self::DEFAULT_MAX_FIRST_NAME_CHARS,
        }
    }
}

/// A rendered, personalised SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMessage {
    /// The message text.
    pub text: String,
    /// Its language.
    pub language: Language,
    /// Its size as the carrier bills it.
    pub segments: SegmentCount,
}

/// Most expensive GSM-7 character for a name: an extension character (2 septets).
const WORST_GSM7_CHAR: char = '€';
/// Most expensive character for a name in UCS-2: outside the BMP (a surrogate pair).
const WORST_UCS2_CHAR: char = '\u{1F600}';
/// Year used for the worst case: every supported year has four digits.
const ANY_YEAR: i32 = 2000;

/// The worst case of one template, as found at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WorstCase {
    count: SegmentCount,
    name_kind: &'static str,
    month: u32,
}

/// The segments of the largest message `template` can render under `limits`.
///
/// Every first name of at most `n` characters is dominated by one of two names of exactly `n`
/// characters: `n` GSM-7 extension characters (if the rendered message is GSM-7, every name
/// character costs at most 2 septets) or `n` characters outside the BMP (if it is UCS-2, every
/// name character costs at most 2 code units). Replacing an indivisible character by a larger
/// one, or adding one, never reduces the number of segments (a packing of the larger text is a
/// packing of the smaller), so these two names over all twelve month names give the exact
/// maximum.
fn worst_case(template: &MessageTemplate, limits: TemplateLimits) -> WorstCase {
    let n = limits.max_first_name_chars;
    let names = [
        (
            "GSM-7 extension characters",
            WORST_GSM7_CHAR.to_string().repeat(n),
        ),
        (
            "characters outside the BMP (e.g. emoji)",
            WORST_UCS2_CHAR.to_string().repeat(n),
        ),
    ];
    let mut worst: Option<WorstCase> = None;
    for (name_kind, name) in &names {
        for month in 1..=12 {
            let text = template.fill(name, month_name(template.language, month), ANY_YEAR);
            let count = segments(&text);
            let larger = worst
                .as_ref()
                .is_none_or(|w| (count.segments, count.units) > (w.count.segments, w.count.units));
            if larger {
                worst = Some(WorstCase {
                    count,
                    name_kind,
                    month,
                });
            }
        }
    }
    // Twelve months were tried, so `worst` is set; the fallback only keeps this total.
    worst.unwrap_or(WorstCase {
        count: segments(template.source()),
        name_kind: "",
        month: 1,
    })
}

/// Shortens `name` to at most `max_chars` characters, without trailing whitespace.
fn shorten(name: &str, max_chars: usize) -> &str {
    let cut = name
        .char_indices()
        .nth(max_chars)
        .map_or(name.len(), |(at, _)| at);
    name[..cut].trim_end()
}

/// The templates of all four languages, checked against [`TemplateLimits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSet {
    /// Indexed by [`slot`].
    templates: [MessageTemplate; 4],
    /// Indexed by [`slot`].
    worst: [SegmentCount; 4],
    limits: TemplateLimits,
}

impl TemplateSet {
    /// Parses the template of every language and checks the set against `limits`.
    ///
    /// Refused (each error names the field): a language given twice or missing (field
    /// `templates`), a template [`MessageTemplate::parse`] refuses, limits of zero (field
    /// `template_limits`), and a template whose worst case needs more than
    /// `limits.max_segments` segments. The worst case is the template rendered with a first name
    /// of `limits.max_first_name_chars` of the costliest characters (GSM-7 extension characters,
    /// and characters outside the BMP, which also force UCS-2) and each of the twelve month
    /// names; no real name can make a longer message, because [`TemplateSet::render`] shortens
    /// names to that many characters.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (Language, String)>,
        limits: TemplateLimits,
    ) -> Result<Self, DomainError> {
        if limits.max_segments == 0 || limits.max_first_name_chars == 0 {
            return Err(DomainError::new(
                "template_limits",
                format!(
                    "max_segments and max_first_name_chars must be at least 1, got {} and {}",
                    limits.max_segments, limits.max_first_name_chars
                ),
            ));
        }
        let mut slots: [Option<MessageTemplate>; 4] = Default::default();
        for (language, source) in sources {
            let entry = &mut slots[slot(language)];
            if entry.is_some() {
                return Err(DomainError::new(
                    "templates",
                    format!("the {language} template is given twice"),
                ));
            }
            *entry = Some(MessageTemplate::parse(language, &source)?);
        }
        let missing: Vec<&str> = Language::ALL
            .into_iter()
            .filter(|&l| slots[slot(l)].is_none())
            .map(Language::code)
            .collect();
        let [Some(he), Some(ar), Some(en), Some(ru)] = slots else {
            return Err(DomainError::new(
                "templates",
                format!("missing the template of {}", missing.join(", ")),
            ));
        };
        let templates = [he, ar, en, ru];
        let cases = templates.each_ref().map(|t| worst_case(t, limits));
        for (template, case) in templates.iter().zip(&cases) {
            if case.count.segments > limits.max_segments {
                let encoding = match case.count.encoding {
                    Encoding::Gsm7 => "GSM-7 septets",
                    Encoding::Ucs2 => "UCS-2 units",
                };
                return Err(DomainError::new(
                    template_field(template.language),
                    format!(
                        "the {} template can need {} SMS segments ({} {encoding}, with a \
                         {}-character first name of {} and the month {}), more than \
                         max_segments {}; shorten the template or raise the limit",
                        template.language,
                        case.count.segments,
                        case.count.units,
                        limits.max_first_name_chars,
                        case.name_kind,
                        month_name(template.language, case.month),
                        limits.max_segments,
                    ),
                ));
            }
        }
        Ok(Self {
            worst: cases.map(|c| c.count),
            templates,
            limits,
        })
    }

    /// The limits the set was checked against.
    pub fn limits(&self) -> TemplateLimits {
        self.limits
    }

    /// The template of `language`.
    pub fn template(&self, language: Language) -> &MessageTemplate {
        &self.templates[slot(language)]
    }

    /// The size of the largest message the template of `language` can render (found at load
    /// time; at most `limits().max_segments` segments).
    pub fn worst_case(&self, language: Language) -> SegmentCount {
        self.worst[slot(language)]
    }

    /// Renders the message of `language` for `first_name` and `month`.
    ///
    /// Never fails: a first name longer than `limits().max_first_name_chars` characters is cut
    /// to that many (and trailing whitespace dropped), which keeps the message within the
    /// segment ceiling checked at load time.
    pub fn render(
        &self,
        language: Language,
        first_name: &FirstName,
        month: YearMonth,
    ) -> RenderedMessage {
        let name = shorten(first_name.as_str(), self.limits.max_first_name_chars);
        let text =
            self.template(language)
                .fill(name, month_name(language, month.month()), month.year());
        RenderedMessage {
            segments: segments(&text),
            text,
            language,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHIPPED: [(Language, &str); 4] = [
        (Language::Hebrew, include_str!("../../templates/sms/he.txt")),
        (Language::Arabic, include_str!("../../templates/sms/ar.txt")),
        (
            Language::English,
            include_str!("../../templates/sms/en.txt"),
        ),
        (
            Language::Russian,
            include_str!("../../templates/sms/ru.txt"),
        ),
    ];

    fn shipped_sources() -> Vec<(Language, String)> {
        SHIPPED
            .iter()
            .map(|(l, s)| (*l, s.trim_end_matches(['\n', '\r']).to_owned()))
            .collect()
    }

    fn shipped() -> TemplateSet {
        TemplateSet::from_sources(shipped_sources(), TemplateLimits::default()).unwrap()
    }

    fn simple_sources() -> Vec<(Language, String)> {
        vec![
            (
                Language::Hebrew,
                "שלום {CustomerFirstName}, {MonthName}".into(),
            ),
            (
                Language::Arabic,
                "مرحباً {CustomerFirstName}، {MonthName}".into(),
            ),
            (
                Language::English,
                "Hello {CustomerFirstName}, {MonthName} {Year}".into(),
            ),
            (
                Language::Russian,
                "Привет, {CustomerFirstName}! {MonthName}".into(),
            ),
        ]
    }

    fn name(s: &str) -> FirstName {
        FirstName::parse(s).unwrap()
    }

    fn october() -> YearMonth {
        YearMonth::new(2026, 10).unwrap()
    }

    fn count(encoding: Encoding, units: usize, segments: u32) -> SegmentCount {
        SegmentCount {
            encoding,
            units,
            segments,
        }
    }

    // --- segments -------------------------------------------------------------------------

    #[test]
    fn gsm7_single_segment_boundary_is_160_septets() {
        assert_eq!(segments(""), count(Encoding::Gsm7, 0, 1));
        assert_eq!(segments(&"a".repeat(160)), count(Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&"a".repeat(161)), count(Encoding::Gsm7, 161, 2));
        assert_eq!(segments(&"a".repeat(306)), count(Encoding::Gsm7, 306, 2));
        assert_eq!(segments(&"a".repeat(307)), count(Encoding::Gsm7, 307, 3));
    }

    #[test]
    fn gsm7_extension_characters_cost_two_septets() {
        assert_eq!(segments("€"), count(Encoding::Gsm7, 2, 1));
        assert_eq!(segments("^{}\\[~]|€\u{0C}"), count(Encoding::Gsm7, 20, 1));
        // 80 extension characters = 160 septets: still one segment; one more septet splits.
        assert_eq!(segments(&"[".repeat(80)), count(Encoding::Gsm7, 160, 1));
        assert_eq!(
            segments(&format!("{}a", "[".repeat(80))),
            count(Encoding::Gsm7, 161, 2)
        );
    }

    #[test]
    fn gsm7_escape_pair_is_not_split_at_a_153_boundary() {
        // 152 septets, then an escape pair that would straddle the boundary: it moves to the
        // second part, leaving one septet unused, so 152 + 2 + 152 = 306 septets need 3 parts.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text), count(Encoding::Gsm7, 306, 3));
        // The same length with the pair aligned fits in 2 parts of 153.
        let aligned = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(segments(&aligned), count(Encoding::Gsm7, 306, 2));
    }

    #[test]
    fn gsm7_covers_the_whole_default_alphabet() {
        let basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
        assert_eq!(basic.chars().count(), 127); // 128 minus the escape code
        assert_eq!(segments(basic).encoding, Encoding::Gsm7);
        assert_eq!(segments(basic).units, 127);
        for c in ['ç', 'á', '`', 'ש', 'ع', 'ж', '\t', '\u{1F600}'] {
            assert_eq!(segments(&c.to_string()).encoding, Encoding::Ucs2, "{c:?}");
        }
    }

    #[test]
    fn ucs2_single_segment_boundary_is_70_units() {
        assert_eq!(segments(&"ש".repeat(70)), count(Encoding::Ucs2, 70, 1));
        assert_eq!(segments(&"ש".repeat(71)), count(Encoding::Ucs2, 71, 2));
        assert_eq!(segments(&"ж".repeat(134)), count(Encoding::Ucs2, 134, 2));
        assert_eq!(segments(&"ж".repeat(135)), count(Encoding::Ucs2, 135, 3));
        // One non-GSM character turns a GSM text into UCS-2.
        assert_eq!(
            segments(&format!("{}ש", "a".repeat(69))),
            count(Encoding::Ucs2, 70, 1)
        );
    }

    #[test]
    fn ucs2_surrogate_pair_is_not_split_at_a_67_boundary() {
        let emoji = '\u{1F600}';
        assert_eq!(segments(&emoji.to_string()), count(Encoding::Ucs2, 2, 1));
        assert_eq!(
            segments(&emoji.to_string().repeat(35)),
            count(Encoding::Ucs2, 70, 1)
        );
        // 66 units, then a pair straddling the boundary: 66 + 2 + 66 = 134 units in 3 parts.
        let text = format!("{}{emoji}{}", "ש".repeat(66), "ש".repeat(66));
        assert_eq!(segments(&text), count(Encoding::Ucs2, 134, 3));
        // The same length with the pair aligned fits in 2 parts of 67.
        let aligned = format!("{}{emoji}{}", "ש".repeat(65), "ש".repeat(67));
        assert_eq!(segments(&aligned), count(Encoding::Ucs2, 134, 2));
    }

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

    // --- template parsing -------------------------------------------------------------------

    #[test]
    fn template_parses_placeholders() {
        let t = MessageTemplate::parse(
            Language::English,
            "Hi {CustomerFirstName}: {MonthName} {Year}!",
        )
        .unwrap();
        assert_eq!(t.language(), Language::English);
        assert_eq!(t.fill("Dana", "October", 2026), "Hi Dana: October 2026!");
        let twice =
            MessageTemplate::parse(Language::English, "{CustomerFirstName}{CustomerFirstName}")
                .unwrap();
        assert_eq!(twice.fill("Al", "May", 2026), "AlAl");
    }

    #[test]
    fn template_errors_name_the_language_field() {
        let cases = [
            ("", "empty"),
            ("  \n ", "empty"),
            ("Hello {MonthName}", "{CustomerFirstName}"),
            (
                "Hi {CustomerFirstName} {Name}",
                "unknown placeholder \"{Name}\"",
            ),
            ("Hi {customerfirstname}", "unknown placeholder"),
            ("Hi {CustomerFirstName} {MonthName", "without a closing"),
            ("Hi {CustomerFirstName} }", "without a matching"),
            ("Hi {{CustomerFirstName}}", "unknown placeholder"),
            ("Hi {CustomerFirstName}\r\nBye", "control character"),
        ];
        for (source, expected) in cases {
            let err = MessageTemplate::parse(Language::Russian, source).unwrap_err();
            assert_eq!(err.field, "template.ru", "{source:?}");
            assert!(err.message.contains(expected), "{source:?}: {err}");
        }
        let err = MessageTemplate::parse(Language::Hebrew, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid template.he: the template is empty"
        );
    }

    // --- template sets ----------------------------------------------------------------------

    #[test]
    fn a_set_needs_every_language_exactly_once() {
        let mut sources = simple_sources();
        sources.retain(|(l, _)| *l != Language::Arabic && *l != Language::Russian);
        let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
        assert_eq!(err.field, "templates");
        assert!(err.message.contains("ar, ru"), "{err}");

        let mut sources = simple_sources();
        sources.push((Language::English, "Again {CustomerFirstName}".into()));
        let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
        assert!(err.message.contains("en template is given twice"), "{err}");

        let mut sources = simple_sources();
        sources[1].1 = "no name".into();
        let err = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap_err();
        assert_eq!(err.field, "template.ar");
    }

    #[test]
    fn zero_limits_are_refused() {
        for limits in [
            TemplateLimits {
                max_segments: 0,
                ..TemplateLimits::default()
            },
            TemplateLimits {
                max_first_name_chars: 0,
                ..TemplateLimits::default()
            },
        ] {
            let err = TemplateSet::from_sources(simple_sources(), limits).unwrap_err();
            assert_eq!(err.field, "template_limits");
        }
    }

    #[test]
    fn renders_each_language_personalised() {
        let set = TemplateSet::from_sources(simple_sources(), TemplateLimits::default()).unwrap();
        let dana = name("Dana");
        let expected = [
            (Language::Hebrew, "שלום Dana, אוקטובר"),
            (Language::Arabic, "مرحباً Dana، أكتوبر"),
            (Language::English, "Hello Dana, October 2026"),
            (Language::Russian, "Привет, Dana! октябрь"),
        ];
        for (language, text) in expected {
            let m = set.render(language, &dana, october());
            assert_eq!(m.text, text);
            assert_eq!(m.language, language);
            assert_eq!(m.segments, segments(text));
        }
        let en = set.render(Language::English, &dana, october());
        assert_eq!(en.segments, count(Encoding::Gsm7, 24, 1));
        // A Hebrew name turns the English message into UCS-2.
        let en = set.render(Language::English, &name("דנה"), october());
        assert_eq!(en.text, "Hello דנה, October 2026");
        assert_eq!(en.segments, count(Encoding::Ucs2, 23, 1));
    }

    #[test]
    fn long_first_names_are_shortened_to_the_limit() {
        let set = TemplateSet::from_sources(simple_sources(), TemplateLimits::default()).unwrap();
        let long = name(&format!("{}{}", "א".repeat(20), "ב".repeat(30)));
        let m = set.render(Language::Hebrew, &long, october());
        assert_eq!(m.text, format!("שלום {}, אוקטובר", "א".repeat(20)));
        // Cut by characters (not bytes), then trailing whitespace dropped.
        let spaced = name("Maria Antonia Josefa Johanna");
        let m = set.render(Language::English, &spaced, october());
        assert_eq!(m.text, "Hello Maria Antonia Josefa, October 2026");
        let exact = name(&"x".repeat(20));
        let m = set.render(Language::English, &exact, october());
        assert!(m.text.contains(&"x".repeat(20)));
        // A configured budget is honoured.
        let limits = TemplateLimits {
            max_first_name_chars: 3,
            ..TemplateLimits::default()
        };
        let set = TemplateSet::from_sources(simple_sources(), limits).unwrap();
        assert_eq!(
            set.render(Language::Russian, &name("Анастасия"), october())
                .text,
            "Привет, Ана! октябрь"
        );
    }

    #[test]
    fn an_over_long_template_is_refused_at_load_naming_language_and_counts() {
        let mut sources = simple_sources();
        // 120 Russian letters + the worst name (20 emoji = 40 units) + "сентябрь" (8) + the
        // fixed text: well over 2 segments.
        sources[3].1 = format!("{} {{CustomerFirstName}} {{MonthName}}", "ж".repeat(120));
        let limits = TemplateLimits {
            max_segments: 2,
            ..TemplateLimits::default()
        };
        let err = TemplateSet::from_sources(sources, limits).unwrap_err();
        assert_eq!(err.field, "template.ru");
        // 120 + 1 + 40 + 1 + 8 ("сентябрь") = 170 units.
        assert!(
            err.message
                .contains("ru template can need 3 SMS segments (170 UCS-2 units"),
            "{err}"
        );
        assert!(err.message.contains("more than max_segments 2"), "{err}");
        assert!(err.message.contains("сентябрь"), "{err}");
    }

    #[test]
    fn the_worst_case_of_a_gsm_template_is_a_non_gsm_name() {
        // 100 septets of text: with 20 '€' (40 septets) and "September" it stays one GSM-7
        // segment, but 20 emoji make it UCS-2: 100 + 1 + 40 + 1 + 9 = 151 units, 3 segments.
        let mut sources = simple_sources();
        sources[2].1 = format!("{} {{CustomerFirstName}} {{MonthName}}", "a".repeat(100));
        let set = TemplateSet::from_sources(sources, TemplateLimits::default()).unwrap();
        assert_eq!(
            set.worst_case(Language::English),
            count(Encoding::Ucs2, 151, 3)
        );
        let euros = set.render(Language::English, &name(&"€".repeat(20)), october());
        assert_eq!(euros.segments, count(Encoding::Gsm7, 149, 1));
        let emoji = set.render(Language::English, &name(&"\u{1F600}".repeat(25)), october());
        assert_eq!(emoji.segments, count(Encoding::Ucs2, 149, 3));
    }

    #[test]
    fn shipped_templates_pass_the_default_limit_and_it_is_the_smallest() {
        let set = shipped();
        let worst: Vec<(Language, SegmentCount)> = Language::ALL
            .into_iter()
            .map(|l| (l, set.worst_case(l)))
            .collect();
        assert_eq!(
            worst,
            vec![
                (Language::Hebrew, count(Encoding::Ucs2, 194, 3)),
                (Language::Arabic, count(Encoding::Ucs2, 200, 3)),
                (Language::English, count(Encoding::Ucs2, 278, 5)),
                (Language::Russian, count(Encoding::Ucs2, 201, 3)),
            ]
        );
        let one_less = TemplateLimits {
            max_segments: TemplateLimits::DEFAULT_MAX_SEGMENTS - 1,
            ..TemplateLimits::default()
        };
        let err = TemplateSet::from_sources(shipped_sources(), one_less).unwrap_err();
        assert_eq!(err.field, "template.en");
    }

    #[test]
    fn shipped_templates_render_in_every_language() {
        let set = shipped();
        let cases = [
            (Language::Hebrew, "שלום דנה,", "לאורך כל חודש אוקטובר", 3),
            (Language::Arabic, "مرحباً رنا،", "طوال شهر أكتوبر", 3),
            (Language::English, "Hello Dana,", "throughout October.", 2),
            (Language::Russian, "Добрый день, Анна!", "Весь октябрь", 3),
        ];
        for (language, greeting, month, segs) in cases {
            let first = match language {
                Language::Hebrew => "דנה",
                Language::Arabic => "رنا",
                Language::English => "Dana",
                Language::Russian => "Анна",
            };
            let m = set.render(language, &name(first), october());
            assert!(m.text.starts_with(greeting), "{language}: {}", m.text);
            assert!(m.text.contains(month), "{language}: {}", m.text);
            assert!(
                m.text.contains("https://bank.example/premium"),
                "{language}"
            );
            assert!(m.text.contains("STOP"), "{language}");
            assert!(!m.text.contains('{'), "{language}: {}", m.text);
            assert_eq!(m.segments.segments, segs, "{language}: {:?}", m.segments);
        }
        let en = set.render(Language::English, &name("Dana"), october());
        assert_eq!(en.segments.encoding, Encoding::Gsm7);
    }

    proptest! {
        #[test]
        fn prop_rendering_never_exceeds_the_checked_worst_case(
            first in "[a-zA-Z€\\[\\]{}\u{05D0}-\u{05EA}\u{1F600}-\u{1F64F} ]{0,60}",
            month in 1u32..=12,
            language in prop::sample::select(Language::ALL.to_vec()),
        ) {
            let Ok(first) = FirstName::parse(&format!("X{first}")) else {
                return Ok(());
            };
            let set = shipped();
            let m = set.render(language, &first, YearMonth::new(2027, month).unwrap());
            let worst = set.worst_case(language);
            prop_assert!(m.segments.segments <= worst.segments);
            prop_assert!(m.segments.segments <= set.limits().max_segments);
        }

        #[test]
        fn prop_segments_grow_with_the_text(s in "[a-z€ש\u{1F600}]{0,400}", extra in "[a-z€ש\u{1F600}]") {
            let before = segments(&s);
            let after = segments(&format!("{s}{extra}"));
            prop_assert!(after.segments >= before.segments || after.encoding != before.encoding);
            prop_assert!(before.segments >= 1);
        }
    }
}
