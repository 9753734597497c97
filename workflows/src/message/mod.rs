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

#[cfg(doc)]
use crate::domain::Language;

mod months;
mod segments;
mod template;

pub use months::month_name;
pub use segments::{Encoding, SegmentCount, segments};
pub use template::{
    FIRST_NAME_PLACEHOLDER, MONTH_NAME_PLACEHOLDER, MessageTemplate, RenderedMessage,
    TemplateLimits, TemplateSet, YEAR_PLACEHOLDER,
};
