//! The generic REST carrier (`docs/requirements.md#carrier-api`; `docs/carrier-wire.md`,
//! "Generic carrier").
//!
//! `POST {base}/api/v1/messages/batch` with `Authorization: Bearer <key>`: up to 1000 messages per
//! request, each carrying our [`MessageRef`](pcn_workflows::delivery::MessageRef) as `messageId`
//! (the carrier's idempotency key), answered per message with QUEUED + `trackingId` or REJECTED +
//! `errorCode`. `GET {base}/api/v1/messages/{trackingId}/status` fetches one status. Delivery
//! callbacks go to [`GenericConfig::callback_url`] (parsed by [`super::events`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use pcn_workflows::delivery::{DeliveryStatus, FailureCategory};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    CarrierError, CarrierKind, OutboundSms, SmsCarrier, StatusReport, SubmitOutcome, bounded,
    classify_http, code_text, endpoint, http_client, retry_after_header, status_answer,
};
use crate::bank::Secret;

/// Most messages the carrier takes in one batch request; larger batches are split.
pub const MAX_BATCH: usize = 1000;

/// Priority of every message we send: balance notifications are time-sensitive.
const PRIORITY: &str = "HIGH";

/// How to reach the generic carrier.
#[derive(Debug, Clone)]
pub struct GenericConfig {
    /// Base URL of the carrier API, e.g. `https://sms.carrier.example` (paths are appended).
    pub base_url: Url,
    /// The bearer key.
    pub api_key: Secret,
    /// Where the carrier posts delivery callbacks: `<public base>/webhooks/sms-delivery`.
    pub callback_url: Url,
    /// Per-request timeout.
    pub timeout: Duration,
    /// PEM CA bundle trusted for the carrier's certificate besides the platform's trust store
    /// (`PCN_CARRIER_CA`), for a carrier behind a private CA.
    pub server_ca: Option<Vec<u8>>,
    /// `metadata.campaignId` of every batch.
    pub campaign_id: String,
}

impl Default for GenericConfig {
    /// Local development: the carrier simulator on 8082, our webhooks on 8090.
    fn default() -> Self {
        Self {
            base_url: Url::parse("http://127.0.0.1:8082").expect("static URL"),
            api_key: Secret::new("dev-carrier-key"),
            callback_url: Url::parse("http://127.0.0.1:8090/webhooks/sms-delivery")
                .expect("static URL"),
            timeout: Duration::from_secs(10),
            server_ca: None,
            campaign_id: "pcn-monthly-balance".to_owned(),
        }
    }
}

/// The generic carrier client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct GenericCarrier {
    http: reqwest::Client,
    config: GenericConfig,
}

impl GenericCarrier {
    /// Builds the client (no request is made).
    pub fn new(config: GenericConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.base_url.cannot_be_a_base(),
            "the generic carrier base URL must be an http(s) URL"
        );
        let http = http_client(config.timeout, config.server_ca.as_deref())?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GenericConfig {
        &self.config
    }

    async fn submit_chunk(
        &self,
        chunk: &[OutboundSms],
    ) -> Result<Vec<SubmitOutcome>, CarrierError> {
        let url = endpoint(&self.config.base_url, &["api", "v1", "messages", "batch"])?;
        let request = batch_request(&self.config, chunk);
        tracing::debug!(
            batch_id = %request.batch_id,
            messages = chunk.len(),
            "submitting a batch to the generic carrier"
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(self.config.api_key.expose())
            .json(&request)
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
        if (200..300).contains(&status) {
            interpret_batch(chunk, &body)
        } else {
            Err(refused(status, &body))
        }
    }
}

impl SmsCarrier for GenericCarrier {
    /// The generic API can only fetch a message by its own tracking id: no lookup by recipient
    /// or by our `messageId`. An in-doubt attempt is resolved from callbacks (which carry the
    /// `messageId`) and the reconciliation wait instead.
    async fn find_sent(
        &self,
        _sms: &OutboundSms,
        _since: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>, CarrierError> {
        Ok(None)
    }

    fn name(&self) -> CarrierKind {
        CarrierKind::Generic
    }

    /// Sends the batch in chunks of at most [`MAX_BATCH`], one after the other (the gateway's
    /// batches are never larger, so this is one request). The carrier does not deduplicate a
    /// `messageId`: an error on a later chunk, after earlier ones were accepted, is answered as
    /// a protocol error, so the whole batch is in doubt and resolved by evidence — never marked
    /// "not taken" and sent again.
    async fn submit(&self, batch: &[OutboundSms]) -> Result<Vec<SubmitOutcome>, CarrierError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(MAX_BATCH) {
            match self.submit_chunk(chunk).await {
                Ok(answers) => outcomes.extend(answers),
                Err(err) if outcomes.is_empty() => return Err(err),
                Err(err) => {
                    return Err(CarrierError::Protocol(format!(
                        "a later chunk of the batch failed ({err}) after {} messages were accepted",
                        outcomes.len()
                    )));
                }
            }
        }
        Ok(outcomes)
    }

    async fn status(&self, carrier_message_id: &str) -> Result<StatusReport, CarrierError> {
        if carrier_message_id.is_empty() {
            return Err(CarrierError::NotFound);
        }
        let url = endpoint(
            &self.config.base_url,
            &["api", "v1", "messages", carrier_message_id, "status"],
        )?;
        let response = self
            .http
            .get(url)
            .bearer_auth(self.config.api_key.expose())
            .send()
            .await
            .map_err(|err| CarrierError::transport(&err))?;
        let (status, body) = status_answer(response).await?;
        if (200..300).contains(&status) {
            interpret_status(carrier_message_id, &body)
        } else {
            Err(refused(status, &body))
        }
    }
}

/// The carrier's spelling of a status (exact, upper case) → ours.
pub(crate) fn map_status(s: &str) -> Option<DeliveryStatus> {
    Some(match s {
        "QUEUED" => DeliveryStatus::Queued,
        "SENT" => DeliveryStatus::Sent,
        "DELIVERED" => DeliveryStatus::Delivered,
        "FAILED" => DeliveryStatus::Failed,
        "UNDELIVERABLE" => DeliveryStatus::Undeliverable,
        "NO_STATUS" => DeliveryStatus::NoStatus,
        _ => return None,
    })
}

/// An RFC 3339 timestamp in UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `batchId`: a digest of the first reference and the batch size, so that the same batch
/// submitted again carries the same id (no randomness, no clock).
pub(crate) fn batch_id(chunk: &[OutboundSms]) -> String {
    let mut digest = Sha256::new();
    if let Some(first) = chunk.first() {
        digest.update(first.reference.to_string().as_bytes());
    }
    digest.update(b"\n");
    digest.update(chunk.len().to_string().as_bytes());
    let hash = hex::encode(digest.finalize());
    format!("pcn-{}", &hash[..32])
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchRequest<'a> {
    batch_id: String,
    messages: Vec<BatchMessage<'a>>,
    metadata: BatchMetadata<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchMessage<'a> {
    message_id: String,
    phone_number: &'a str,
    content: &'a str,
    priority: &'static str,
    callback_url: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchMetadata<'a> {
    campaign_id: &'a str,
    correlation_id: String,
}

fn batch_request<'a>(config: &'a GenericConfig, chunk: &'a [OutboundSms]) -> BatchRequest<'a> {
    let batch_id = batch_id(chunk);
    BatchRequest {
        messages: chunk
            .iter()
            .map(|sms| BatchMessage {
                message_id: sms.reference.to_string(),
                phone_number: sms.to.as_e164(),
                content: &sms.body,
                priority: PRIORITY,
                callback_url: config.callback_url.as_str(),
            })
            .collect(),
        metadata: BatchMetadata {
            campaign_id: &config.campaign_id,
            correlation_id: batch_id.clone(),
        },
        batch_id,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchAnswer {
    submission_status: Option<String>,
    messages: Vec<MessageAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageAnswer {
    message_id: Option<String>,
    tracking_id: Option<String>,
    status: String,
    #[serde(default)]
    error_code: serde_json::Value,
    error_message: Option<String>,
}

/// Reads a 2xx answer to a batch: one outcome per message of `chunk`, in order.
fn interpret_batch(chunk: &[OutboundSms], body: &[u8]) -> Result<Vec<SubmitOutcome>, CarrierError> {
    let answer: BatchAnswer = serde_json::from_slice(body)
        .map_err(|_| CarrierError::Protocol("malformed batch answer".to_owned()))?;
    if let Some(s) = answer
        .submission_status
        .as_deref()
        .filter(|s| *s != "ACCEPTED")
    {
        return Err(CarrierError::Protocol(format!(
            "batch submission status {}",
            bounded(s)
        )));
    }
    if answer.messages.len() != chunk.len() {
        return Err(CarrierError::Protocol(format!(
            "batch of {} answered with {} messages",
            chunk.len(),
            answer.messages.len()
        )));
    }
    chunk
        .iter()
        .zip(answer.messages)
        .map(|(sms, message)| {
            if message
                .message_id
                .as_deref()
                .is_some_and(|id| id != sms.reference.to_string())
            {
                return Err(CarrierError::Protocol(
                    "batch answer is not in request order".to_owned(),
                ));
            }
            match message.status.as_str() {
                "QUEUED" => match message.tracking_id.filter(|t| !t.is_empty()) {
                    Some(carrier_message_id) => Ok(SubmitOutcome::Accepted { carrier_message_id }),
                    None => Err(CarrierError::Protocol(
                        "queued message without trackingId".to_owned(),
                    )),
                },
                "REJECTED" => {
                    let code = code_text(&message.error_code).unwrap_or_default();
                    Ok(SubmitOutcome::Rejected {
                        category: FailureCategory::from_code(Some(&code)),
                        message: bounded(message.error_message.as_deref().unwrap_or("rejected")),
                        code,
                    })
                }
                other => Err(CarrierError::Protocol(format!(
                    "unknown submission status {}",
                    bounded(other)
                ))),
            }
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    tracking_id: Option<String>,
    message_id: Option<String>,
    status: String,
    delivery_timestamp: Option<String>,
    #[serde(default)]
    status_code: serde_json::Value,
}

/// Reads a 200 answer to a status fetch of `tracking_id`.
fn interpret_status(tracking_id: &str, body: &[u8]) -> Result<StatusReport, CarrierError> {
    let answer: StatusAnswer = serde_json::from_slice(body)
        .map_err(|_| CarrierError::Protocol("malformed status answer".to_owned()))?;
    if answer
        .tracking_id
        .as_deref()
        .is_some_and(|t| t != tracking_id)
    {
        return Err(CarrierError::Protocol(
            "status answer is about another message".to_owned(),
        ));
    }
    let status = map_status(&answer.status).ok_or_else(|| {
        CarrierError::Protocol(format!("unknown status {}", bounded(&answer.status)))
    })?;
    let occurred_at = match answer.delivery_timestamp.as_deref() {
        None => None,
        Some(t) => Some(parse_timestamp(t).ok_or_else(|| {
            CarrierError::Protocol("deliveryTimestamp is not RFC 3339".to_owned())
        })?),
    };
    Ok(StatusReport {
        carrier_message_id: tracking_id.to_owned(),
        status,
        error_code: code_text(&answer.status_code),
        occurred_at,
        reference: answer.message_id,
        to: None,
        body: None,
    })
}

/// A 4xx other than 401/403/404/408/429: the carrier refused what we sent.
fn refused(status: u16, body: &[u8]) -> CarrierError {
    #[derive(Deserialize)]
    struct ErrorAnswer {
        error: Option<String>,
    }
    let why = serde_json::from_slice::<ErrorAnswer>(body)
        .ok()
        .and_then(|a| a.error)
        .unwrap_or_else(|| "no reason given".to_owned());
    CarrierError::Refused(format!("HTTP {status}: {}", bounded(&why)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carrier::tests::sms;
    use serde_json::json;

    #[test]
    fn the_batch_request_follows_the_contract() {
        let config = GenericConfig::default();
        let batch = [sms(1), sms(2)];
        let value = serde_json::to_value(batch_request(&config, &batch)).unwrap();
        let id = batch_id(&batch);
        assert_eq!(
            value,
            json!({
                "batchId": id,
                "messages": [
                    {
                        "messageId": "sms/2026-10/C0000000042#1",
                        "phoneNumber": "+972501234567",
                        "content": "שלום",
                        "priority": "HIGH",
                        "callbackUrl": "http://127.0.0.1:8090/webhooks/sms-delivery",
                    },
                    {
                        "messageId": "sms/2026-10/C0000000042#2",
                        "phoneNumber": "+972501234567",
                        "content": "שלום",
                        "priority": "HIGH",
                        "callbackUrl": "http://127.0.0.1:8090/webhooks/sms-delivery",
                    },
                ],
                "metadata": {"campaignId": "pcn-monthly-balance", "correlationId": id},
            })
        );
    }

    #[test]
    fn batch_ids_are_deterministic() {
        let a = batch_id(&[sms(1), sms(2)]);
        assert_eq!(a, batch_id(&[sms(1), sms(2)]));
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("pcn-"));
        assert_ne!(a, batch_id(&[sms(1)]));
        assert_ne!(a, batch_id(&[sms(3), sms(2)]));
        assert!(batch_id(&[]).starts_with("pcn-"));
    }

    #[test]
    fn an_answer_maps_per_message_in_order() {
        let batch = [sms(1), sms(2), sms(3), sms(4)];
        let body = json!({
            "batchId": "b",
            "submissionStatus": "ACCEPTED",
            "timestamp": "2026-10-31T10:00:00Z",
            "messages": [
                {"messageId": "sms/2026-10/C0000000042#1", "trackingId": "T1", "status": "QUEUED",
                 "errorCode": null, "errorMessage": null},
                {"messageId": "sms/2026-10/C0000000042#2", "trackingId": null, "status": "REJECTED",
                 "errorCode": "21211", "errorMessage": "invalid number"},
                {"messageId": "sms/2026-10/C0000000042#3", "trackingId": null, "status": "REJECTED",
                 "errorCode": "21614", "errorMessage": "carrier reject"},
                {"messageId": "sms/2026-10/C0000000042#4", "status": "REJECTED"},
            ],
        });
        let outcomes = interpret_batch(&batch, body.to_string().as_bytes()).unwrap();
        assert_eq!(
            outcomes,
            vec![
                SubmitOutcome::Accepted {
                    carrier_message_id: "T1".to_owned()
                },
                SubmitOutcome::Rejected {
                    code: "21211".to_owned(),
                    category: FailureCategory::InvalidNumber,
                    message: "invalid number".to_owned(),
                },
                SubmitOutcome::Rejected {
                    code: "21614".to_owned(),
                    category: FailureCategory::InvalidNumber,
                    message: "carrier reject".to_owned(),
                },
                SubmitOutcome::Rejected {
                    code: String::new(),
                    category: FailureCategory::Unknown,
                    message: "rejected".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn a_broken_answer_is_a_protocol_error() {
        let batch = [sms(1), sms(2)];
        let queued = |id: &str| {
            json!({"messageId": format!("sms/2026-10/C0000000042#{id}"), "trackingId": "T",
                   "status": "QUEUED"})
        };
        for body in [
            b"not json".to_vec(),
            b"{\"messages\": [".to_vec(),
            json!({"messages": [queued("1")]}).to_string().into_bytes(),
            json!({"messages": [queued("2"), queued("1")]})
                .to_string()
                .into_bytes(),
            json!({"submissionStatus": "REFUSED", "messages": [queued("1"), queued("2")]})
                .to_string()
                .into_bytes(),
            json!({"messages": [queued("1"), {"messageId": "sms/2026-10/C0000000042#2",
                                              "status": "QUEUED", "trackingId": null}]})
            .to_string()
            .into_bytes(),
            json!({"messages": [queued("1"), {"status": "LOST"}]})
                .to_string()
                .into_bytes(),
        ] {
            assert!(
                matches!(
                    interpret_batch(&batch, &body),
                    Err(CarrierError::Protocol(_))
                ),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn every_contract_status_maps() {
        for (s, d) in [
            ("QUEUED", DeliveryStatus::Queued),
            ("SENT", DeliveryStatus::Sent),
            ("DELIVERED", DeliveryStatus::Delivered),
            ("FAILED", DeliveryStatus::Failed),
            ("UNDELIVERABLE", DeliveryStatus::Undeliverable),
            ("NO_STATUS", DeliveryStatus::NoStatus),
        ] {
            assert_eq!(map_status(s), Some(d));
        }
        for s in ["delivered", "REJECTED", "", "EXPIRED"] {
            assert_eq!(map_status(s), None, "{s:?}");
        }
    }

    #[test]
    fn a_status_answer_is_read() {
        let body = json!({
            "trackingId": "T1", "messageId": "sms/2026-10/C0000000042#1", "status": "FAILED",
            "deliveryTimestamp": "2026-10-31T12:00:05+02:00", "statusCode": "21614",
            "statusMessage": "carrier reject",
        });
        assert_eq!(
            interpret_status("T1", body.to_string().as_bytes()).unwrap(),
            StatusReport {
                carrier_message_id: "T1".to_owned(),
                status: DeliveryStatus::Failed,
                error_code: Some("21614".to_owned()),
                occurred_at: Some("2026-10-31T10:00:05Z".parse().unwrap()),
                reference: Some("sms/2026-10/C0000000042#1".to_owned()),
                to: None,
                body: None,
            }
        );
        let delivered = json!({"trackingId": "T1", "status": "DELIVERED",
                               "deliveryTimestamp": null, "statusCode": "0"});
        let report = interpret_status("T1", delivered.to_string().as_bytes()).unwrap();
        assert_eq!(report.status, DeliveryStatus::Delivered);
        assert_eq!(report.error_code, None);
        assert_eq!(report.occurred_at, None);
    }

    #[test]
    fn a_bad_status_answer_is_a_protocol_error() {
        for body in [
            json!({"trackingId": "T2", "status": "SENT"}),
            json!({"trackingId": "T1", "status": "sent"}),
            json!({"trackingId": "T1", "status": "SENT", "deliveryTimestamp": "yesterday"}),
            json!({"trackingId": "T1"}),
            json!([]),
        ] {
            assert!(
                matches!(
                    interpret_status("T1", body.to_string().as_bytes()),
                    Err(CarrierError::Protocol(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn refusals_carry_the_carriers_reason() {
        assert_eq!(
            refused(400, br#"{"error":"more than 1000 messages"}"#),
            CarrierError::Refused("HTTP 400: more than 1000 messages".to_owned())
        );
        assert_eq!(
            refused(400, b"<html>"),
            CarrierError::Refused("HTTP 400: no reason given".to_owned())
        );
    }

    #[test]
    fn the_key_never_prints() {
        let config = GenericConfig::default();
        assert!(!format!("{config:?}").contains("dev-carrier-key"));
    }
}
