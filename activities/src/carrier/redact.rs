//! Callback bodies kept for audit without phone numbers in clear.
//!
//! The webhook stores every verified callback body (`delivery_events.raw`). Carriers put the
//! recipient (and our sender) in them: the generic carrier's JSON `phoneNumber`, Twilio's form
//! fields `To`/`From`. [`mask_phones`] replaces the value of every field named like a phone
//! number ([`PHONE_FIELDS`], any case) with its masked form (`+97250*****67`, as logs print it)
//! and leaves every other byte of the body as received.

use pcn_workflows::domain::Phone;

/// Field names whose values are phone numbers, compared without case.
pub const PHONE_FIELDS: [&str; 7] = [
    "to",
    "from",
    "phonenumber",
    "phone_number",
    "phone",
    "msisdn",
    "recipient",
];

fn is_phone_field(name: &str) -> bool {
    PHONE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The masked form of a field's value: a number keeps its first 5 and last 2 digits; anything
/// else keeps nothing.
fn mask_value(value: &str) -> String {
    match Phone::parse(value) {
        Ok(phone) => phone.masked(),
        Err(_) if value.is_empty() => String::new(),
        Err(_) => "***".to_owned(),
    }
}

/// `body` with the values of its phone fields masked: a JSON body (object or array, at any
/// depth) or a form body (`a=1&To=%2B9725…`). A body that is neither is returned unchanged.
pub fn mask_phones(body: &str) -> String {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        mask_json(body)
    } else {
        mask_form(body)
    }
}

/// Form fields: each `name=value` pair whose decoded name is a phone field gets a masked value;
/// every other pair is kept byte for byte.
fn mask_form(body: &str) -> String {
    body.split('&')
        .map(|pair| {
            let Some((name, value)) = pair.split_once('=') else {
                return pair.to_owned();
            };
            let decoded = |s: &str| -> String {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            if !is_phone_field(&decoded(name)) {
                return pair.to_owned();
            }
            let masked: String =
                url::form_urlencoded::byte_serialize(mask_value(&decoded(value)).as_bytes())
                    .collect();
            format!("{name}={masked}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// JSON: scans the text's string literals; a literal that is a phone field's name, followed by
/// `:` and a string literal, gets that literal replaced by the masked value. Whitespace, order
/// and escapes of everything else stay as received.
fn mask_json(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut copied = 0;
    let mut i = 0;
    // The end (exclusive) of the string literal starting at `start` (a `"`).
    let literal_end = |start: usize| -> Option<usize> {
        let mut j = start + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    };
    let skip_ws = |mut j: usize| {
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(name_end) = literal_end(i) else {
            break;
        };
        let name = &body[i + 1..name_end - 1];
        let colon = skip_ws(name_end);
        if is_phone_field(name) && bytes.get(colon) == Some(&b':') {
            let value_start = skip_ws(colon + 1);
            if bytes.get(value_start) == Some(&b'"')
                && let Some(value_end) = literal_end(value_start)
            {
                let value: String =
                    serde_json::from_str(&body[value_start..value_end]).unwrap_or_default();
                out.push_str(&body[copied..value_start]);
                out.push_str(&serde_json::Value::String(mask_value(&value)).to_string());
                copied = value_end;
                i = value_end;
                continue;
            }
        }
        i = name_end;
    }
    out.push_str(&body[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_phone_fields_are_masked_and_the_rest_kept() {
        let body = r#"{"messageId":"m-1", "phoneNumber" : "+972501234567","status":"delivered","nested":{"To":"+972509876543"},"note":"to"}"#;
        let masked = mask_phones(body);
        assert_eq!(
            masked,
            r#"{"messageId":"m-1", "phoneNumber" : "+97250*****67","status":"delivered","nested":{"To":"+97250*****43"},"note":"to"}"#
        );
        assert!(!masked.contains("501234567"));
    }

    #[test]
    fn form_phone_fields_are_masked_and_the_rest_kept_byte_for_byte() {
        let body = "MessageSid=SM1&MessageStatus=delivered&To=%2B972501234567&From=%2B972521112233&Body=a+b%21";
        assert_eq!(
            mask_phones(body),
            "MessageSid=SM1&MessageStatus=delivered&To=%2B97250*****67&From=%2B97252*****33&Body=a+b%21"
        );
    }

    #[test]
    fn odd_bodies_never_panic_and_never_keep_a_number() {
        for body in [
            "",
            "{",
            r#"{"to":"#,
            r#"{"to":"not a phone"}"#,
            r#"{"to":12}"#,
            "To",
            "To=&x",
            r#"["\"to\"","x"]"#,
            r#"{"a\"b":"c","to":"+972501234567"}"#,
        ] {
            let masked = mask_phones(body);
            assert!(!masked.contains("501234567"), "{body} -> {masked}");
        }
        assert_eq!(mask_phones(r#"{"to":"not a phone"}"#), r#"{"to":"***"}"#);
    }
}
