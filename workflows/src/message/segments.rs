//! SMS segment counting: GSM-7 / UCS-2 encoding detection and the number of parts a text
//! needs, as carriers bill it (GSM 03.38 / 3GPP TS 23.040).

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn prop_segments_grow_with_the_text(s in "[a-z€ש\u{1F600}]{0,400}", extra in "[a-z€ש\u{1F600}]") {
            let before = segments(&s);
            let after = segments(&format!("{s}{extra}"));
            prop_assert!(after.segments >= before.segments || after.encoding != before.encoding);
            prop_assert!(before.segments >= 1);
        }
    }
}
