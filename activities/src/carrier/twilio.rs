//! The Twilio-compatible carrier (`docs/carrier-wire.md`, "Twilio-compatible carrier").
//!
//! One form POST per message to `{base}/2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP
//! Basic `AccountSid:AuthToken`; a batch is sent with bounded concurrency. Twilio's Messages API
//! has no idempotency key for message creation: a repeated POST is a second SMS, so nothing here
//! pretends otherwise. A message whose create answer was lost is found again through the message
//! list filtered by recipient and date ([`SmsCarrier::find_sent`]). The `StatusCallback` of each message is
//! `<status_callback_base>?ref=<MessageRef>`, so that a callback names our message without a
//! lookup (parsed by [`super::events::parse_twilio_callback`]).
//!
//! Over 600 lines: about 400 of the adapter and 200 of unit tests of its wire format beside it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use pcn_workflows::delivery::{DeliveryStatus, FailureCategory, MessageRef};
use serde::Deserialize;
use url::Url;

use super::{
    CarrierError, CarrierKind, OutboundSms, SmsCarrier, StatusReport, SubmitOutcome, bounded,
    classify_http, code_text, endpoint, http_client, retry_after_header, status_answer,
};
use crate::bank::Secret;

/// The API version in every path.
const API_VERSION: &str = "2010-04-01";

/// How to reach the Twilio-compatible carrier.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// Base URL, e.g. `https://api.twilio.com` (paths are appended).
    pub base_url: Url,
    /// `AC…`: the user name of Basic auth and part of every path.
    pub account_sid: String,
    /// The password of Basic auth; also the key of callback signatures.
    pub auth_token: Secret,
    /// The sender: an alphanumeric sender id or number (`From`), or a Messaging Service when it
    /// starts with `MG` (`MessagingServiceSid`).
    pub from: String,
    /// `<public base>/webhooks/twilio/status`; each message's `StatusCallback` is this with
    /// `?ref=<MessageRef>` appended ([`status_callback_url`]).
    pub status_callback_base: Url,
    /// Per-request timeout.
    pub timeout: Duration,
    /// PEM CA bundle trusted for the carrier's certificate besides the platform's trust store
    /// (`PCN_CARRIER_CA`), for a carrier behind a private CA.
    pub server_ca: Option<Vec<u8>>,
    /// Messages of one batch in flight at once.
    pub concurrency: usize,
}

impl Default for TwilioConfig {
    /// Local development: the carrier simulator on 8082, our webhooks on 8090.
    fn default() -> Self {
        Self {
            base_url: Url::parse("http://127.0.0.1:8082").expect("static URL"),
            account_sid: "AC00000000000000000000000000000000".to_owned(),
            auth_token: Secret::new("dev-twilio-token"),
            from: "PCNBank".to_owned(),
            status_callback_base: Url::parse("http://127.0.0.1:8090/webhooks/twilio/status")
                .expect("static URL"),
            timeout: Duration::from_secs(10),
            server_ca: None,
            concurrency: 16,
        }
    }
}

/// The Twilio-compatible carrier client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct TwilioCarrier {
    http: reqwest::Client,
    config: TwilioConfig,
}

impl TwilioCarrier {
    /// Builds the client (no request is made).
    pub fn new(config: TwilioConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.base_url.cannot_be_a_base(),
            "the Twilio base URL must be an http(s) URL"
        );
        anyhow::ensure!(
            !config.account_sid.is_empty(),
            "the Twilio account SID is empty"
        );
        let http = http_client(config.timeout, config.server_ca.as_deref())?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TwilioConfig {
        &self.config
    }

    async fn submit_one(&self, sms: &OutboundSms) -> Result<SubmitOutcome, CarrierError> {
        let url = self.messages_url()?;
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose()),
            )
            .form(&message_form(&self.config, sms))
            .send()
            .await
            .map_err(|err| CarrierError::transport(&err))?;
        let status = response.status().as_u16();
        if let Some(err) = classify_http(status, retry_after_header(&response).as_deref()) {
            return Err(err);
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| CarrierError::transport(&err))?;
        let outcome = interpret_created(status, &body)?;
        if let SubmitOutcome::Rejected { code, category, .. } = &outcome {
            tracing::info!(
                reference = %sms.reference,
                to = ?sms.to,
                code = %code,
                category = %category,
                "Twilio refused a message"
            );
        }
        Ok(outcome)
    }
}

impl SmsCarrier for TwilioCarrier {
    fn name(&self) -> CarrierKind {
        CarrierKind::Twilio
    }

    /// One request per message, at most [`TwilioConfig::concurrency`] at a time, outcomes in
    /// input order. The first error (in input order) ends the batch: the messages before it may
    /// have been created, so the caller treats an error that is not
    /// [`CarrierError::certainly_not_taken`] as in doubt for the whole batch.
    async fn submit(&self, batch: &[OutboundSms]) -> Result<Vec<SubmitOutcome>, CarrierError> {
        // Collected first: a lazy `map` closure held across the await would make the future
        // not provably `Send` (rust-lang/rust#102211).
        let requests: Vec<_> = batch.iter().map(|sms| self.submit_one(sms)).collect();
        futures::stream::iter(requests)
            .buffered(self.config.concurrency.max(1))
            .try_collect()
            .await
    }

    async fn status(&self, carrier_message_id: &str) -> Result<StatusReport, CarrierError> {
        if carrier_message_id.is_empty() {
            return Err(CarrierError::NotFound);
        }
        let resource = format!("{carrier_message_id}.json");
        let url = endpoint(
            &self.config.base_url,
            &[
                API_VERSION,
                "Accounts",
                &self.config.account_sid,
                "Messages",
                &resource,
            ],
        )?;
        interpret_resource(carrier_message_id, &self.get_json(url).await?)
    }

    async fn find_sent(
        &self,
        sms: &OutboundSms,
        since: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>, CarrierError> {
        self.list_sent(sms, since).await.map(Some)
    }
}

/// Most list pages read by one lookup (100 messages a page): a recipient gets a handful of
/// messages a month, so more pages mean something else is wrong.
const MAX_LIST_PAGES: usize = 10;

impl TwilioCarrier {
    fn messages_url(&self) -> Result<Url, CarrierError> {
        endpoint(
            &self.config.base_url,
            &[
                API_VERSION,
                "Accounts",
                &self.config.account_sid,
                "Messages.json",
            ],
        )
    }

    async fn get_json(&self, url: Url) -> Result<Vec<u8>, CarrierError> {
        let response = self
            .http
            .get(url)
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose()),
            )
            .send()
            .await
            .map_err(|err| CarrierError::transport(&err))?;
        let (status, body) = status_answer(response).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(CarrierError::Refused(format!("HTTP {status}")))
        }
    }

    /// The message list filtered by `To` and `DateSent>=` (a date, UTC), page by page; the sids of
    /// messages with exactly our recipient and text.
    async fn list_sent(
        &self,
        sms: &OutboundSms,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, CarrierError> {
        let mut url = self.messages_url()?;
        url.query_pairs_mut()
            .append_pair("To", sms.to.as_e164())
            .append_pair("DateSent>", &since.date_naive().to_string())
            .append_pair("PageSize", "100");
        let mut found = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let body = self.get_json(url.clone()).await?;
            let page: ListPage = serde_json::from_slice(&body)
                .map_err(|_| CarrierError::Protocol("malformed message list".to_owned()))?;
            found.extend(
                page.messages
                    .into_iter()
                    .filter(|m| {
                        m.to.as_deref() == Some(sms.to.as_e164())
                            && m.body.as_deref() == Some(sms.body.as_str())
                    })
                    .filter_map(|m| m.sid),
            );
            match page.next_page_uri.filter(|u| !u.is_empty()) {
                // `next_page_uri` is a path with its query, relative to the API host.
                Some(next) => {
                    url = self.config.base_url.join(&next).map_err(|_| {
                        CarrierError::Protocol("malformed next_page_uri".to_owned())
                    })?;
                }
                None => return Ok(found),
            }
        }
        Err(CarrierError::Protocol(format!(
            "message list longer than {MAX_LIST_PAGES} pages"
        )))
    }
}

/// One page of the message list.
#[derive(Deserialize)]
struct ListPage {
    messages: Vec<Resource>,
    next_page_uri: Option<String>,
}

/// The `StatusCallback` of a message: `base` with `ref=<reference>` added to its query
/// (form-encoded: `sms/2026-10/C1#1` becomes `sms%2F2026-10%2FC1%231`). The callback arrives at
/// exactly this URL, which is also the URL its signature covers.
pub fn status_callback_url(base: &Url, reference: &MessageRef) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("ref", &reference.to_string());
    url
}

/// The form of one message: `To`, `From` or `MessagingServiceSid`, `Body`, `StatusCallback`.
fn message_form(config: &TwilioConfig, sms: &OutboundSms) -> Vec<(&'static str, String)> {
    let sender = if config.from.starts_with("MG") {
        "MessagingServiceSid"
    } else {
        "From"
    };
    vec![
        ("To", sms.to.as_e164().to_owned()),
        (sender, config.from.clone()),
        ("Body", sms.body.clone()),
        (
            "StatusCallback",
            status_callback_url(&config.status_callback_base, &sms.reference).into(),
        ),
    ]
}

/// Twilio's spelling of a status (exact, lower case) → ours.
pub(crate) fn map_status(s: &str) -> Option<DeliveryStatus> {
    Some(match s {
        "queued" | "accepted" | "scheduled" => DeliveryStatus::Queued,
        "sending" | "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        "undelivered" => DeliveryStatus::Undeliverable,
        _ => return None,
    })
}

/// A Message resource (the fields we read).
#[derive(Deserialize)]
struct Resource {
    sid: Option<String>,
    to: Option<String>,
    body: Option<String>,
    status: Option<String>,
    #[serde(default)]
    error_code: serde_json::Value,
    error_message: Option<String>,
    date_updated: Option<String>,
    date_sent: Option<String>,
}

/// Twilio's error body.
#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    code: serde_json::Value,
    message: Option<String>,
}

/// Reads the answer to a message POST (any status but 401/403/408/429/5xx).
fn interpret_created(status: u16, body: &[u8]) -> Result<SubmitOutcome, CarrierError> {
    match status {
        200..=299 => {
            let resource: Resource = serde_json::from_slice(body)
                .map_err(|_| CarrierError::Protocol("malformed message resource".to_owned()))?;
            let sid = resource
                .sid
                .filter(|s| !s.is_empty())
                .ok_or_else(|| CarrierError::Protocol("message resource without sid".to_owned()))?;
            // A message that failed on creation (rare) is a refusal when it says why.
            if let (Some("failed" | "undelivered"), Some(code)) =
                (resource.status.as_deref(), code_text(&resource.error_code))
            {
                return Ok(SubmitOutcome::Rejected {
                    category: FailureCategory::from_code(Some(&code)),
                    message: bounded(resource.error_message.as_deref().unwrap_or("failed")),
                    code,
                });
            }
            Ok(SubmitOutcome::Accepted {
                carrier_message_id: sid,
            })
        }
        400 => {
            // A 400 is a refusal even when its body cannot be read: nothing was created.
            let answer: ErrorAnswer = serde_json::from_slice(body).map_err(|_| {
                CarrierError::Refused("HTTP 400 with a malformed error answer".to_owned())
            })?;
            let code = code_text(&answer.code).ok_or_else(|| {
                CarrierError::Refused("HTTP 400 without an error code".to_owned())
            })?;
            Ok(SubmitOutcome::Rejected {
                category: FailureCategory::from_code(Some(&code)),
                message: bounded(answer.message.as_deref().unwrap_or("refused")),
                code,
            })
        }
        other => {
            let detail = serde_json::from_slice::<ErrorAnswer>(body)
                .ok()
                .and_then(|a| a.message)
                .unwrap_or_else(|| "no reason given".to_owned());
            Err(CarrierError::Refused(format!(
                "HTTP {other}: {}",
                bounded(&detail)
            )))
        }
    }
}

/// Reads a fetched Message resource.
fn interpret_resource(sid: &str, body: &[u8]) -> Result<StatusReport, CarrierError> {
    let resource: Resource = serde_json::from_slice(body)
        .map_err(|_| CarrierError::Protocol("malformed message resource".to_owned()))?;
    if resource.sid.as_deref().is_some_and(|s| s != sid) {
        return Err(CarrierError::Protocol(
            "message resource is about another message".to_owned(),
        ));
    }
    let raw = resource
        .status
        .ok_or_else(|| CarrierError::Protocol("message resource without status".to_owned()))?;
    let status = map_status(&raw)
        .ok_or_else(|| CarrierError::Protocol(format!("unknown status {}", bounded(&raw))))?;
    // Not part of the contract: read when present and well-formed (RFC 2822), else ignored.
    let occurred_at = [resource.date_updated, resource.date_sent]
        .into_iter()
        .flatten()
        .find_map(|d| DateTime::parse_from_rfc2822(&d).ok())
        .map(|d| d.with_timezone(&Utc));
    Ok(StatusReport {
        carrier_message_id: sid.to_owned(),
        status,
        error_code: code_text(&resource.error_code),
        occurred_at,
        reference: None,
        to: resource.to,
        body: resource.body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carrier::tests::sms;
    use serde_json::json;

    #[test]
    fn the_form_follows_the_contract() {
        let config = TwilioConfig::default();
        assert_eq!(
            message_form(&config, &sms(1)),
            vec![
                ("To", "+972501234567".to_owned()),
                ("From", "PCNBank".to_owned()),
                ("Body", "שלום".to_owned()),
                (
                    "StatusCallback",
                    "http://127.0.0.1:8090/webhooks/twilio/status?ref=sms%2F2026-10%2FC0000000042%231"
                        .to_owned()
                ),
            ]
        );
        let service = TwilioConfig {
            from: "MG0123456789abcdef0123456789abcdef".to_owned(),
            ..TwilioConfig::default()
        };
        let form = message_form(&service, &sms(1));
        assert_eq!(
            form[1],
            (
                "MessagingServiceSid",
                "MG0123456789abcdef0123456789abcdef".to_owned()
            )
        );
        assert!(form.iter().all(|(k, _)| *k != "From"));
    }

    #[test]
    fn the_callback_url_round_trips_the_reference() {
        let base = Url::parse("https://pcn.bank.example/webhooks/twilio/status").unwrap();
        let reference = sms(7).reference;
        let url = status_callback_url(&base, &reference);
        assert_eq!(
            url.as_str(),
            "https://pcn.bank.example/webhooks/twilio/status?ref=sms%2F2026-10%2FC0000000042%237"
        );
        let decoded: Vec<_> = url.query_pairs().collect();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].0, "ref");
        assert_eq!(MessageRef::parse(&decoded[0].1).unwrap(), reference);
        // An existing query is kept.
        let with_query = Url::parse("https://h/webhooks/twilio/status?v=2").unwrap();
        assert_eq!(
            status_callback_url(&with_query, &reference).query(),
            Some("v=2&ref=sms%2F2026-10%2FC0000000042%237")
        );
    }

    #[test]
    fn every_contract_status_maps() {
        for (s, d) in [
            ("queued", DeliveryStatus::Queued),
            ("accepted", DeliveryStatus::Queued),
            ("scheduled", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Sent),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("failed", DeliveryStatus::Failed),
            ("undelivered", DeliveryStatus::Undeliverable),
        ] {
            assert_eq!(map_status(s), Some(d), "{s}");
        }
        for s in ["DELIVERED", "received", "read", "canceled", ""] {
            assert_eq!(map_status(s), None, "{s:?}");
        }
    }

    #[test]
    fn a_created_message_is_accepted() {
        let body = json!({
            "sid": "SM0123456789abcdef0123456789abcdef", "account_sid": "AC0", "to": "+972501234567",
            "from": "PCNBank", "body": "x", "status": "queued", "num_segments": "1",
            "error_code": null, "error_message": null,
            "date_created": "Sat, 31 Oct 2026 10:00:00 +0000",
        });
        assert_eq!(
            interpret_created(201, body.to_string().as_bytes()).unwrap(),
            SubmitOutcome::Accepted {
                carrier_message_id: "SM0123456789abcdef0123456789abcdef".to_owned()
            }
        );
        let failed = json!({"sid": "SM1", "status": "failed", "error_code": 30006,
                            "error_message": "landline"});
        assert_eq!(
            interpret_created(201, failed.to_string().as_bytes()).unwrap(),
            SubmitOutcome::Rejected {
                code: "30006".to_owned(),
                category: FailureCategory::InvalidNumber,
                message: "landline".to_owned()
            }
        );
    }

    #[test]
    fn a_400_with_a_code_is_a_per_message_rejection() {
        for (code, category) in [
            (21211, FailureCategory::InvalidNumber),
            (21614, FailureCategory::InvalidNumber),
            (21610, FailureCategory::OptedOut),
            (21602, FailureCategory::Unknown),
            (21604, FailureCategory::Unknown),
        ] {
            let body =
                json!({"code": code, "message": "nope", "more_info": "https://x", "status": 400});
            assert_eq!(
                interpret_created(400, body.to_string().as_bytes()).unwrap(),
                SubmitOutcome::Rejected {
                    code: code.to_string(),
                    category,
                    message: "nope".to_owned()
                }
            );
        }
    }

    #[test]
    fn an_unreadable_creation_is_a_protocol_error_a_4xx_a_refusal() {
        for body in [
            b"<html>".to_vec(),
            json!({"status": "queued"}).to_string().into_bytes(),
            json!({"sid": ""}).to_string().into_bytes(),
        ] {
            assert!(
                matches!(
                    interpret_created(201, &body),
                    Err(CarrierError::Protocol(_))
                ),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        for (status, body) in [
            (400, b"oops".to_vec()),
            (400, json!({"message": "no code"}).to_string().into_bytes()),
            (
                404,
                json!({"code": 20404, "message": "not found"})
                    .to_string()
                    .into_bytes(),
            ),
            (409, Vec::new()),
        ] {
            assert!(
                matches!(
                    interpret_created(status, &body),
                    Err(CarrierError::Refused(_))
                ),
                "{status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn a_fetched_resource_is_read() {
        let body = json!({"sid": "SM1", "status": "undelivered", "error_code": 30003,
                          "to": "+972501234567", "body": "hi",
                          "date_updated": "Sat, 31 Oct 2026 10:00:05 +0000"});
        assert_eq!(
            interpret_resource("SM1", body.to_string().as_bytes()).unwrap(),
            StatusReport {
                carrier_message_id: "SM1".to_owned(),
                status: DeliveryStatus::Undeliverable,
                error_code: Some("30003".to_owned()),
                occurred_at: Some("2026-10-31T10:00:05Z".parse().unwrap()),
                reference: None,
                to: Some("+972501234567".to_owned()),
                body: Some("hi".to_owned()),
            }
        );
        let delivered = json!({"sid": "SM1", "status": "delivered", "error_code": null,
                               "date_updated": "garbage"});
        let report = interpret_resource("SM1", delivered.to_string().as_bytes()).unwrap();
        assert_eq!(report.status, DeliveryStatus::Delivered);
        assert_eq!(report.error_code, None);
        assert_eq!(report.occurred_at, None);
    }

    #[test]
    fn a_bad_resource_is_a_protocol_error() {
        for body in [
            json!({"sid": "SM2", "status": "sent"}),
            json!({"sid": "SM1", "status": "lost"}),
            json!({"sid": "SM1"}),
            json!("x"),
        ] {
            assert!(
                matches!(
                    interpret_resource("SM1", body.to_string().as_bytes()),
                    Err(CarrierError::Protocol(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn the_token_never_prints() {
        let config = TwilioConfig::default();
        assert!(!format!("{config:?}").contains("dev-twilio-token"));
    }
}
