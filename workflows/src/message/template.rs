//! SMS templates: parsing, the worst-case segment check at load time, and rendering of a
//! checked [`TemplateSet`].

use serde::{Deserialize, Serialize};

use super::months::month_name;
use super::segments::{Encoding, SegmentCount, segments};
use crate::customer::FirstName;
use crate::domain::{DomainError, Language, YearMonth, shown};

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
                    format!("'}}' without a matching '{{' before {}", shown(tail)),
                ));
            }
            let Some(close) = tail.find('}') else {
                return Err(DomainError::new(
                    field,
                    format!("'{{' without a closing '}}' at {}", shown(tail)),
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
                            shown(other)
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

#[cfg(test)]
mod tests;
