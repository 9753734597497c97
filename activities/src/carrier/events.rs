//! What carriers post to us, parsed into neutral events: delivery callbacks ([`CarrierEvent`])
//! and customer replies ([`InboundSms`]). Pure functions over the raw request; the webhook server
//! checks the signature ([`super::signature`]) before calling them.
//!
//! Every error names the field at fault ([`ParseError::field`], spelled as on the wire) and never
//! echoes a phone number. Every field is bounded here, before anything is stored: a carrier id is
//! 1–128 visible ASCII characters, an error code at most 32, an attempt number 1–999, an inbound
//! text at most 1,600 characters without NUL — so one odd callback is refused alone (400) and can
//! never make the batch it would have been stored with fail.
//!
//! Over 600 lines: about 340 of callback parsing and 350 of unit tests of every shape a carrier
//! sends.

use chrono::{DateTime, Utc};
use pcn_workflows::delivery::{DeliveryStatus, MessageRef};
use pcn_workflows::domain::Phone;
use serde_json::{Map, Value};

use super::{CarrierKind, code_text, generic, twilio};

/// A carrier request we cannot use; `field` names the offending field as the carrier spells it
/// (`body` when the payload as a whole is unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ParseError {
    /// The field at fault, e.g. `"messageId"` or `"MessageStatus"`.
    pub field: &'static str,
    /// What is wrong with it (no customer data).
    pub message: String,
}

impl ParseError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    fn missing(field: &'static str) -> Self {
        Self::new(field, "missing")
    }
}

/// A delivery report about one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierEvent {
    /// The carrier that reported.
    pub carrier: CarrierKind,
    /// Our message (generic `messageId`; Twilio: the `ref` of the callback URL).
    pub reference: MessageRef,
    /// The carrier's id of the message (generic `trackingId`, Twilio `MessageSid`).
    pub carrier_message_id: String,
    /// The neutral status.
    pub status: DeliveryStatus,
    /// The carrier's error code, if any (never `"0"` or empty).
    pub error_code: Option<String>,
    /// When the status was reached, when the carrier says (Twilio callbacks do not).
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A customer's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The carrier that delivered it.
    pub carrier: CarrierKind,
    /// The carrier's id of the inbound message (generic `messageId`, Twilio `MessageSid`).
    pub carrier_message_id: String,
    /// The sender (its `Debug` is masked).
    pub from: Phone,
    /// The text as received.
    pub body: String,
}

/// Parses the generic carrier's delivery callback: JSON `{"trackingId", "messageId", "status",
/// "deliveryTimestamp", "phoneNumber", "statusCode"}`. `messageId` must be one of our
/// references; `statusCode` `"0"` or empty means no error; `deliveryTimestamp` is RFC 3339 or
/// null.
pub fn parse_generic_callback(body: &[u8]) -> Result<CarrierEvent, ParseError> {
    let object = json_object(body)?;
    let carrier_message_id = carrier_id(required_str(&object, "trackingId")?, "trackingId")?;
    let reference = MessageRef::parse(required_str(&object, "messageId")?)
        .map_err(|_| ParseError::new("messageId", "not one of our message references"))?;
    let raw = required_str(&object, "status")?;
    let status = generic::map_status(raw).ok_or_else(|| unknown_status("status", raw))?;
    let occurred_at = match object.get("deliveryTimestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(
            generic::parse_timestamp(t)
                .ok_or_else(|| ParseError::new("deliveryTimestamp", "not an RFC 3339 timestamp"))?,
        ),
        Some(_) => return Err(ParseError::new("deliveryTimestamp", "not a string")),
    };
    let error_code = match object.get("statusCode") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => error_code(code_text(v), "statusCode")?,
        Some(_) => return Err(ParseError::new("statusCode", "not a string")),
    };
    Ok(CarrierEvent {
        carrier: CarrierKind::Generic,
        reference,
        carrier_message_id,
        status,
        error_code,
        occurred_at,
    })
}

/// Parses a Twilio status callback: form `MessageSid` (or `SmsSid`), `MessageStatus` (or
/// `SmsStatus`), optional `ErrorCode`. `reference` is the decoded `ref` query parameter of the
/// callback URL (field `ref`).
pub fn parse_twilio_callback(
    params: &[(String, String)],
    reference: &str,
) -> Result<CarrierEvent, ParseError> {
    let reference = MessageRef::parse(reference)
        .map_err(|_| ParseError::new("ref", "not one of our message references"))?;
    let carrier_message_id = carrier_id(
        param(params, "MessageSid")
            .or_else(|| param(params, "SmsSid"))
            .ok_or_else(|| ParseError::missing("MessageSid"))?,
        "MessageSid",
    )?;
    let raw = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or_else(|| ParseError::missing("MessageStatus"))?;
    let status = twilio::map_status(raw).ok_or_else(|| unknown_status("MessageStatus", raw))?;
    let error_code = error_code(
        param(params, "ErrorCode").and_then(|c| code_text(&Value::from(c))),
        "ErrorCode",
    )?;
    Ok(CarrierEvent {
        carrier: CarrierKind::Twilio,
        reference,
        carrier_message_id,
        status,
        error_code,
        occurred_at: None,
    })
}

/// Parses the generic carrier's inbound reply: JSON `{"messageId", "from", "to", "body",
/// "receivedAt"}` (`body` may be empty).
pub fn parse_generic_inbound(body: &[u8]) -> Result<InboundSms, ParseError> {
    let object = json_object(body)?;
    let carrier_message_id = carrier_id(required_str(&object, "messageId")?, "messageId")?;
    let from = phone(required_str(&object, "from")?, "from")?;
    let text = match object.get("body") {
        Some(Value::String(s)) => inbound_text(s, "body")?,
        Some(_) => return Err(ParseError::new("body", "not a string")),
        None => return Err(ParseError::missing("body")),
    };
    Ok(InboundSms {
        carrier: CarrierKind::Generic,
        carrier_message_id,
        from,
        body: text,
    })
}

/// Parses a Twilio inbound message: form `MessageSid` (or `SmsSid`), `From`, `Body` (may be
/// empty, must be present).
pub fn parse_twilio_inbound(params: &[(String, String)]) -> Result<InboundSms, ParseError> {
    let carrier_message_id = carrier_id(
        param(params, "MessageSid")
            .or_else(|| param(params, "SmsSid"))
            .ok_or_else(|| ParseError::missing("MessageSid"))?,
        "MessageSid",
    )?;
    let from = phone(
        param(params, "From").ok_or_else(|| ParseError::missing("From"))?,
        "From",
    )?;
    let body = params
        .iter()
        .find(|(k, _)| k == "Body")
        .map(|(_, v)| inbound_text(v, "Body"))
        .ok_or_else(|| ParseError::missing("Body"))??;
    Ok(InboundSms {
        carrier: CarrierKind::Twilio,
        carrier_message_id,
        from,
        body,
    })
}

/// What a reply says about consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKeyword {
    /// Stop sending (STOP and its equivalents in every language we send in).
    OptOut,
    /// Start again (START, UNSTOP): the customer's own opt-in.
    OptIn,
}

/// Opt-out words, compared case-insensitively: English (Twilio's standard list), Hebrew, Arabic
/// and Russian — every language a notification goes out in.
const OPT_OUT_WORDS: [&str; 19] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
    "הסר",
    "הסרה",
    "עצור",
    "توقف",
    "إيقاف",
    "ايقاف",
    "إلغاء",
    "الغاء",
    "стоп",
    "отписаться",
    "отписка",
];

/// Opt-in words: the customer asks to receive messages again.
const OPT_IN_WORDS: [&str; 2] = ["START", "UNSTOP"];

/// The consent keyword a reply consists of, if any: one word from [`OPT_OUT_WORDS`] or
/// [`OPT_IN_WORDS`], alone after trimming whitespace, bidi marks and punctuation ("Stop!" is a
/// STOP; "please don't stop" is not).
pub fn consent_keyword(body: &str) -> Option<ConsentKeyword> {
    // Phones of right-to-left writers may wrap the text in direction marks.
    let word = body.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
                    | '.' | '!' | '?' | ',' | '\u{061f}' | '\u{060c}'
            )
    });
    let word = word.to_lowercase();
    let is = |list: &[&str]| list.iter().any(|k| k.to_lowercase() == word);
    if is(&OPT_OUT_WORDS) {
        Some(ConsentKeyword::OptOut)
    } else if is(&OPT_IN_WORDS) {
        Some(ConsentKeyword::OptIn)
    } else {
        None
    }
}

/// Whether a reply asks us to stop sending ([`consent_keyword`] is [`ConsentKeyword::OptOut`]).
pub fn is_stop_keyword(body: &str) -> bool {
    consent_keyword(body) == Some(ConsentKeyword::OptOut)
}

/// Longest carrier id accepted (generic `trackingId`, Twilio `MessageSid`).
pub const MAX_CARRIER_ID_CHARS: usize = 128;
/// Longest error code accepted.
pub const MAX_ERROR_CODE_CHARS: usize = 32;
/// Longest inbound text accepted (10 concatenated segments).
pub const MAX_INBOUND_CHARS: usize = 1600;

/// A carrier's id: 1–128 visible ASCII characters (no spaces, no control characters).
fn carrier_id(s: &str, field: &'static str) -> Result<String, ParseError> {
    if s.len() > MAX_CARRIER_ID_CHARS {
        return Err(ParseError::new(
            field,
            format!("longer than {MAX_CARRIER_ID_CHARS} characters"),
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::new(
            field,
            "not visible ASCII (control character, space or non-ASCII)",
        ));
    }
    Ok(s.to_owned())
}

/// An error code: at most 32 visible ASCII characters.
fn error_code(code: Option<String>, field: &'static str) -> Result<Option<String>, ParseError> {
    match code {
        Some(c) if c.len() > MAX_ERROR_CODE_CHARS || !c.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(ParseError::new(
                field,
                format!("not an error code (1–{MAX_ERROR_CODE_CHARS} visible ASCII characters)"),
            ))
        }
        other => Ok(other),
    }
}

/// A customer's text: at most 1,600 characters, no NUL (which Postgres cannot store).
fn inbound_text(s: &str, field: &'static str) -> Result<String, ParseError> {
    if s.chars().count() > MAX_INBOUND_CHARS {
        return Err(ParseError::new(
            field,
            format!("longer than {MAX_INBOUND_CHARS} characters"),
        ));
    }
    if s.contains('\0') {
        return Err(ParseError::new(field, "contains a NUL character"));
    }
    Ok(s.to_owned())
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ParseError::new("body", "not a JSON object")),
        Err(_) => Err(ParseError::new("body", "malformed JSON")),
    }
}

/// A non-empty string field.
fn required_str<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ParseError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ParseError::missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ParseError::new(field, "empty")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ParseError::new(field, "not a string")),
    }
}

/// The first non-empty value of a form parameter.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn phone(s: &str, field: &'static str) -> Result<Phone, ParseError> {
    // The domain error is already number-free; ours is too.
    Phone::parse(s).map_err(|_| ParseError::new(field, "not a valid phone number"))
}

fn unknown_status(field: &'static str, raw: &str) -> ParseError {
    ParseError::new(field, format!("unknown status {}", super::bounded(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const REF: &str = "sms/2026-10/C0000000042#1";

    fn callback(status: &str, code: Value) -> Vec<u8> {
        json!({
            "trackingId": "T1", "messageId": REF, "status": status,
            "deliveryTimestamp": "2026-10-31T10:00:05Z", "phoneNumber": "+972501234567",
            "statusCode": code,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_generic_callback_is_parsed() {
        let event = parse_generic_callback(&callback("FAILED", json!("21211"))).unwrap();
        assert_eq!(
            event,
            CarrierEvent {
                carrier: CarrierKind::Generic,
                reference: MessageRef::parse(REF).unwrap(),
                carrier_message_id: "T1".to_owned(),
                status: DeliveryStatus::Failed,
                error_code: Some("21211".to_owned()),
                occurred_at: Some("2026-10-31T10:00:05Z".parse().unwrap()),
            }
        );
        for (s, d) in [
            ("QUEUED", DeliveryStatus::Queued),
            ("SENT", DeliveryStatus::Sent),
            ("DELIVERED", DeliveryStatus::Delivered),
            ("UNDELIVERABLE", DeliveryStatus::Undeliverable),
            ("NO_STATUS", DeliveryStatus::NoStatus),
        ] {
            assert_eq!(
                parse_generic_callback(&callback(s, json!("0")))
                    .unwrap()
                    .status,
                d
            );
        }
    }

    #[test]
    fn a_zero_or_empty_status_code_is_no_error() {
        for code in [json!("0"), json!(""), json!(null), json!(0)] {
            let event = parse_generic_callback(&callback("DELIVERED", code.clone())).unwrap();
            assert_eq!(event.error_code, None, "{code}");
        }
        assert_eq!(
            parse_generic_callback(&callback("FAILED", json!(21614)))
                .unwrap()
                .error_code
                .as_deref(),
            Some("21614")
        );
        let minimal = json!({"trackingId": "T1", "messageId": REF, "status": "SENT"});
        let event = parse_generic_callback(minimal.to_string().as_bytes()).unwrap();
        assert_eq!((event.error_code, event.occurred_at), (None, None));
    }

    #[test]
    fn a_bad_generic_callback_names_the_field() {
        let with = |patch: Value| {
            let mut v: Value = serde_json::from_slice(&callback("DELIVERED", json!("0"))).unwrap();
            for (k, x) in patch.as_object().unwrap() {
                if x.is_null() && k != "deliveryTimestamp" && k != "statusCode" {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = x.clone();
                }
            }
            parse_generic_callback(v.to_string().as_bytes())
                .unwrap_err()
                .field
        };
        assert_eq!(with(json!({"status": "LOST"})), "status");
        assert_eq!(with(json!({"status": "delivered"})), "status");
        assert_eq!(with(json!({"status": null})), "status");
        assert_eq!(with(json!({"status": 3})), "status");
        assert_eq!(with(json!({"messageId": "M-1"})), "messageId");
        assert_eq!(with(json!({"messageId": "sms/2026-10/C1#0"})), "messageId");
        assert_eq!(with(json!({"messageId": null})), "messageId");
        assert_eq!(with(json!({"trackingId": ""})), "trackingId");
        assert_eq!(with(json!({"trackingId": null})), "trackingId");
        assert_eq!(
            with(json!({"deliveryTimestamp": "31/10/2026"})),
            "deliveryTimestamp"
        );
        assert_eq!(with(json!({"deliveryTimestamp": 1})), "deliveryTimestamp");
        assert_eq!(with(json!({"statusCode": ["x"]})), "statusCode");
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"\"DELIVERED\"",
            b"null",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_generic_callback(body).unwrap_err().field, "body");
        }
    }

    #[test]
    fn a_twilio_callback_is_parsed() {
        let params = pairs(&[
            ("MessageSid", "SM1"),
            ("SmsSid", "SM1"),
            ("AccountSid", "AC0"),
            ("From", "PCNBank"),
            ("To", "+972501234567"),
            ("MessageStatus", "undelivered"),
            ("SmsStatus", "undelivered"),
            ("ApiVersion", "2010-04-01"),
            ("ErrorCode", "30003"),
        ]);
        assert_eq!(
            parse_twilio_callback(&params, REF).unwrap(),
            CarrierEvent {
                carrier: CarrierKind::Twilio,
                reference: MessageRef::parse(REF).unwrap(),
                carrier_message_id: "SM1".to_owned(),
                status: DeliveryStatus::Undeliverable,
                error_code: Some("30003".to_owned()),
                occurred_at: None,
            }
        );
        for (s, d) in [
            ("queued", DeliveryStatus::Queued),
            ("accepted", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Sent),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("failed", DeliveryStatus::Failed),
        ] {
            let p = pairs(&[("MessageSid", "SM1"), ("MessageStatus", s)]);
            let event = parse_twilio_callback(&p, REF).unwrap();
            assert_eq!((event.status, event.error_code), (d, None));
        }
        // The legacy names are enough; an empty ErrorCode is no error.
        let legacy = pairs(&[("SmsSid", "SM2"), ("SmsStatus", "sent"), ("ErrorCode", "")]);
        let event = parse_twilio_callback(&legacy, REF).unwrap();
        assert_eq!(event.carrier_message_id, "SM2");
        assert_eq!(event.error_code, None);
    }

    #[test]
    fn a_bad_twilio_callback_names_the_field() {
        let good = pairs(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]);
        for bad_ref in ["", "sms/2026-10/C1", "sms%2F2026-10%2FC1%231", "x"] {
            assert_eq!(
                parse_twilio_callback(&good, bad_ref).unwrap_err().field,
                "ref"
            );
        }
        let err = |p: &[(&str, &str)]| parse_twilio_callback(&pairs(p), REF).unwrap_err().field;
        assert_eq!(err(&[("MessageStatus", "delivered")]), "MessageSid");
        assert_eq!(
            err(&[("MessageSid", ""), ("MessageStatus", "delivered")]),
            "MessageSid"
        );
        assert_eq!(err(&[("MessageSid", "SM1")]), "MessageStatus");
        assert_eq!(
            err(&[("MessageSid", "SM1"), ("MessageStatus", "DELIVERED")]),
            "MessageStatus"
        );
        assert_eq!(
            err(&[("MessageSid", "SM1"), ("MessageStatus", "received")]),
            "MessageStatus"
        );
        assert_eq!(err(&[]), "MessageSid");
    }

    #[test]
    fn inbound_replies_are_parsed() {
        let generic = json!({"messageId": "IN1", "from": "+972501234567", "to": "PCNBank",
                             "body": " stop ", "receivedAt": "2026-10-31T10:00:00Z"});
        let sms = parse_generic_inbound(generic.to_string().as_bytes()).unwrap();
        assert_eq!(sms.carrier, CarrierKind::Generic);
        assert_eq!(sms.carrier_message_id, "IN1");
        assert_eq!(sms.from.as_e164(), "+972501234567");
        assert_eq!(sms.body, " stop ");
        assert!(is_stop_keyword(&sms.body));

        let twilio = pairs(&[
            ("MessageSid", "SM9"),
            ("SmsSid", "SM9"),
            ("AccountSid", "AC0"),
            ("From", "+972501234567"),
            ("To", "PCNBank"),
            ("Body", "הסר"),
            ("NumMedia", "0"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let sms = parse_twilio_inbound(&twilio).unwrap();
        assert_eq!(sms.carrier, CarrierKind::Twilio);
        assert_eq!(sms.carrier_message_id, "SM9");
        assert_eq!(sms.from.as_e164(), "+972501234567");
        assert!(is_stop_keyword(&sms.body));
        // An empty body is a reply too.
        let empty = pairs(&[
            ("MessageSid", "SM9"),
            ("From", "+972501234567"),
            ("Body", ""),
        ]);
        assert_eq!(parse_twilio_inbound(&empty).unwrap().body, "");
    }

    #[test]
    fn bad_inbound_replies_name_the_field_without_the_number() {
        let generic = |v: Value| parse_generic_inbound(v.to_string().as_bytes()).unwrap_err();
        let err = generic(json!({"messageId": "IN1", "from": "+97221234567", "body": "x"}));
        assert_eq!(err.field, "from");
        assert!(!err.to_string().contains("21234567"), "{err}");
        assert_eq!(
            generic(json!({"from": "+972501234567", "body": "x"})).field,
            "messageId"
        );
        assert_eq!(
            generic(json!({"messageId": "IN1", "body": "x"})).field,
            "from"
        );
        assert_eq!(
            generic(json!({"messageId": "IN1", "from": "+972501234567"})).field,
            "body"
        );
        assert_eq!(
            generic(json!({"messageId": "IN1", "from": "+972501234567", "body": 5})).field,
            "body"
        );
        assert_eq!(parse_generic_inbound(b"{nope").unwrap_err().field, "body");

        let twilio = |p: &[(&str, &str)]| parse_twilio_inbound(&pairs(p)).unwrap_err().field;
        assert_eq!(
            twilio(&[("From", "+972501234567"), ("Body", "x")]),
            "MessageSid"
        );
        assert_eq!(twilio(&[("MessageSid", "SM1"), ("Body", "x")]), "From");
        assert_eq!(
            twilio(&[("MessageSid", "SM1"), ("From", "nobody"), ("Body", "x")]),
            "From"
        );
        assert_eq!(
            twilio(&[("MessageSid", "SM1"), ("From", "+972501234567")]),
            "Body"
        );
    }

    #[test]
    fn stop_keywords() {
        for yes in [
            "STOP",
            "stop",
            " Stop\n",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
            "הסר",
            " עצור ",
            "\u{200f}הסר\u{200f}",
            "\u{2067}עצור\u{2069}",
            "توقف",
            " إلغاء ",
            "СТОП",
            "стоп",
            "Отписаться",
            "STOP.",
            "Stop!",
        ] {
            assert!(is_stop_keyword(yes), "{yes:?}");
        }
        for no in [
            "",
            "   ",
            "STOP IT",
            "please stop",
            "stopp",
            "ST OP",
            "הסר אותי",
            "תודה",
            "ＳＴＯＰ",
            "не стоп",
            "لا توقف",
            "START",
        ] {
            assert!(!is_stop_keyword(no), "{no:?}");
        }
    }

    #[test]
    fn start_and_unstop_opt_back_in_and_nothing_else_does() {
        for yes in ["START", "start", " Unstop\n", "START!"] {
            assert_eq!(consent_keyword(yes), Some(ConsentKeyword::OptIn), "{yes:?}");
        }
        for no in ["YES", "start again", "begin", "", "STOP"] {
            assert_ne!(consent_keyword(no), Some(ConsentKeyword::OptIn), "{no:?}");
        }
    }

    #[test]
    fn odd_fields_are_refused_by_name_before_storage() {
        let with = |tracking: &str, code: &str| {
            json!({"trackingId": tracking, "messageId": REF, "status": "DELIVERED",
                   "statusCode": code})
            .to_string()
            .into_bytes()
        };
        for (body, field) in [
            (with("T\u{0}1", "0"), "trackingId"),
            (with(&"T".repeat(129), "0"), "trackingId"),
            (with("T 1", "0"), "trackingId"),
            (with("T1", &"9".repeat(33)), "statusCode"),
            (with("T1", "2\u{0}"), "statusCode"),
        ] {
            assert_eq!(parse_generic_callback(&body).unwrap_err().field, field);
        }
        assert!(parse_generic_callback(&with(&"T".repeat(128), "30003")).is_ok());
        let big_attempt = json!({"trackingId": "T1", "messageId": "sms/2026-10/C0000000042#99999",
                                 "status": "DELIVERED"});
        assert_eq!(
            parse_generic_callback(big_attempt.to_string().as_bytes())
                .unwrap_err()
                .field,
            "messageId"
        );
        let twilio = pairs(&[("MessageSid", "SM\u{1}x"), ("MessageStatus", "delivered")]);
        assert_eq!(
            parse_twilio_callback(&twilio, REF).unwrap_err().field,
            "MessageSid"
        );
        let inbound = json!({"messageId": "MO1", "from": "+972501234567", "body": "a\u{0}b"});
        assert_eq!(
            parse_generic_inbound(inbound.to_string().as_bytes())
                .unwrap_err()
                .field,
            "body"
        );
        let long = json!({"messageId": "MO1", "from": "+972501234567", "body": "x".repeat(1601)});
        assert_eq!(
            parse_generic_inbound(long.to_string().as_bytes())
                .unwrap_err()
                .field,
            "body"
        );
    }
}
