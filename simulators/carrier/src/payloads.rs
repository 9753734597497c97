//! What the simulator posts to our webhooks: signed delivery callbacks and inbound replies, in
//! either API's format.

use anyhow::Context as _;
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::callbacks::{Delivery, Payload};
use crate::config::{SimConfig, TWILIO_API_VERSION};
use crate::hash::tag;
use crate::model::{Api, SentMessage, mask_phone};
use crate::server::{AppState, rfc3339};
use crate::sign::{sign_generic, twilio_signature};
use crate::stats::bump;

impl AppState {
    /// Posts one signed inbound message; the HTTP status our webhook answered.
    pub(crate) async fn send_inbound(
        &self,
        api: Api,
        from: &str,
        body: &str,
    ) -> anyhow::Result<u16> {
        let cfg = self.config();
        let hex = self.next_hex_tagged(cfg.seed, tag::INBOUND);
        let delivery = match api {
            Api::Generic => {
                let url = cfg
                    .inbound_generic_url
                    .clone()
                    .context("no inbound_generic_url configured")?;
                let raw = json!({
                    "messageId": format!("MO{hex}"),
                    "from": from,
                    "to": cfg.sender_number,
                    "body": body,
                    "receivedAt": rfc3339(Utc::now()),
                })
                .to_string();
                Delivery {
                    url,
                    payload: Payload::Json {
                        signature: sign_generic(cfg.webhook_secret.as_bytes(), raw.as_bytes()),
                        body: Bytes::from(raw),
                    },
                }
            }
            Api::Twilio => {
                let url = cfg
                    .inbound_twilio_url
                    .clone()
                    .context("no inbound_twilio_url configured")?;
                let sid = format!("SM{hex}");
                let params = pairs(&[
                    ("MessageSid", &sid),
                    ("SmsSid", &sid),
                    ("AccountSid", &cfg.twilio_account_sid),
                    ("From", from),
                    ("To", &cfg.sender_number),
                    ("Body", body),
                    ("NumMedia", "0"),
                    ("ApiVersion", TWILIO_API_VERSION),
                ]);
                form_delivery(&cfg, url, &params)
            }
        };
        bump(&self.stats.inbound_sent);
        let resp = self.dispatcher.client().post(&delivery.url).header(
            reqwest::header::CONTENT_TYPE,
            match &delivery.payload {
                Payload::Json { .. } => "application/json",
                Payload::Form { .. } => "application/x-www-form-urlencoded",
            },
        );
        let resp = match delivery.payload {
            Payload::Json { body, signature } => {
                resp.header("X-Carrier-Signature", signature).body(body)
            }
            Payload::Form { body, signature } => {
                resp.header("X-Twilio-Signature", signature).body(body)
            }
        };
        let resp = resp
            .send()
            .await
            .with_context(|| format!("posting the inbound message to {}", delivery.url))?;
        tracing::info!(from = %mask_phone(from), ?api, status = resp.status().as_u16(), "carrier simulator: inbound message posted");
        Ok(resp.status().as_u16())
    }
}

pub(crate) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub(crate) fn form_delivery(cfg: &SimConfig, url: String, params: &[(String, String)]) -> Delivery {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Delivery {
        payload: Payload::Form {
            signature: twilio_signature(&cfg.twilio_auth_token, &url, params),
            body: Bytes::from(body),
        },
        url,
    }
}

/// The callback for message `m`: its final status, or a SENT one when `sent`.
pub(crate) fn callback_delivery(
    cfg: &SimConfig,
    m: &SentMessage,
    url: &str,
    sent: bool,
    final_at: DateTime<Utc>,
) -> Delivery {
    match m.api {
        Api::Generic => {
            let (status, ts, code) = if sent {
                ("SENT", Value::Null, "0")
            } else {
                (
                    m.outcome.generic_status(),
                    Value::from(rfc3339(final_at)),
                    m.outcome.code().unwrap_or("0"),
                )
            };
            let raw = json!({
                "trackingId": m.carrier_id,
                "messageId": m.idempotency_key,
                "status": status,
                "deliveryTimestamp": ts,
                "phoneNumber": m.to,
                "statusCode": code,
            })
            .to_string();
            Delivery {
                url: url.to_owned(),
                payload: Payload::Json {
                    signature: sign_generic(cfg.webhook_secret.as_bytes(), raw.as_bytes()),
                    body: Bytes::from(raw),
                },
            }
        }
        Api::Twilio => {
            let status = if sent {
                "sent"
            } else {
                m.outcome.twilio_status()
            };
            let from = m.from.as_deref().unwrap_or(&cfg.sender_number);
            let mut params = pairs(&[
                ("MessageSid", &m.carrier_id),
                ("SmsSid", &m.carrier_id),
                ("AccountSid", &cfg.twilio_account_sid),
                ("From", from),
                ("To", &m.to),
                ("MessageStatus", status),
                ("SmsStatus", status),
                ("ApiVersion", TWILIO_API_VERSION),
            ]);
            if !sent && let Some(code) = m.outcome.code() {
                params.push(("ErrorCode".to_owned(), code.to_owned()));
            }
            form_delivery(cfg, url.to_owned(), &params)
        }
    }
}
