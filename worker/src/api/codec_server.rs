//! The remote codec server: Temporal's Web UI (and `temporal` CLI, `tctl`) send it the encrypted
//! payloads of a history and show what it answers, so an authorised operator reads inputs, results
//! and signals while Temporal's database holds only ciphertext.
//!
//! Protocol (Temporal's codec-server protocol): `POST …/decode` and `POST …/encode` (only the last
//! path segment counts, so the endpoints may be mounted under any prefix), the body a `Payloads`
//! message in protobuf JSON — `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data":
//! "<base64>"}]}` — and the answer the same shape. The UI sends `X-Namespace` (ignored: one codec
//! for the namespace) and, when configured to pass an access token, `Authorization: Bearer …`.
//!
//! Served by `pcn-worker api` on its own listener (`PCN_CODEC_LISTEN`, TLS with the API's
//! certificate when it has one), with the control API's tokens: **viewer** may decode (it reads
//! what the API already shows), encoding needs **operator** (the UI encodes what an operator sends
//! a workflow: a signal, a start). CORS for the Web UI's origins (`PCN_CODEC_CORS_ORIGIN`),
//! preflight answered.
//!
//! Bad input — malformed JSON, bad base64, an unknown key id, a corrupt ciphertext — is a 400 whose
//! message names the payload's index and field; nothing is logged with payload content. No token
//! or an unknown one: 401; a role that may not: 403.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use super::auth::{Role, TokenTable};
use crate::codec::PayloadEncryption;

/// Largest request body (a page of a long history's payloads).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Settings of the codec server (`PCN_CODEC_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecServerSettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Origins (`scheme://host:port`) whose pages may call it: the Web UI's.
    pub cors_origins: Vec<String>,
    /// Decode without a token: development profile only (`make demo`, where the Web UI has no
    /// login to take a token from).
    pub anonymous_decode: bool,
}

/// A running codec server.
pub struct CodecServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CodecServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct State {
    codec: PayloadEncryption,
    tokens: Arc<TokenTable>,
    cors_origins: Arc<Vec<String>>,
    anonymous_decode: bool,
}

/// Serves the codec on `listener` (TLS when `tls` is given).
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: CodecServerSettings,
    codec: PayloadEncryption,
    tokens: Arc<TokenTable>,
    tls: Option<crate::tls::TlsIdentity>,
) -> anyhow::Result<CodecServer> {
    let addr = listener.local_addr()?;
    let state = State {
        codec,
        tokens,
        cors_origins: Arc::new(settings.cors_origins),
        anonymous_decode: settings.anonymous_decode,
    };
    let app = Router::new()
        .fallback(handle)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY));
    let task = match tls {
        Some(identity) => {
            let listener =
                pcn_tls::TlsListener::new("codec endpoint", listener, identity.server_config()?)?;
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(error = %err, "codec server stopped");
                }
            })
        }
        None => tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "codec server stopped");
            }
        }),
    };
    Ok(CodecServer { addr, task })
}

/// `Payloads` in protobuf JSON.
#[derive(Debug, Deserialize, Serialize)]
struct JsonPayloads {
    #[serde(default)]
    payloads: Vec<JsonPayload>,
}

/// `Payload` in protobuf JSON: bytes as base64.
#[derive(Debug, Deserialize, Serialize)]
struct JsonPayload {
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    data: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Decode,
    Encode,
}

async fn handle(
    axum::extract::State(state): axum::extract::State<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cors = cors_headers(&state, &headers);
    let mut response = answer(&state, &method, &uri, &headers, &body);
    response.headers_mut().extend(cors);
    response
}

fn answer(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let operation = match uri.path().trim_end_matches('/').rsplit('/').next() {
        Some("decode") => Operation::Decode,
        Some("encode") => Operation::Encode,
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "the codec serves …/decode and …/encode",
            );
        }
    };
    if method == Method::OPTIONS {
        return StatusCode::NO_CONTENT.into_response();
    }
    if method != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    if let Err((status, message)) = authorize(state, headers, operation) {
        return text(status, &message);
    }
    let request: JsonPayloads = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body is not a Payloads message in JSON ({{\"payloads\": [{{\"metadata\": \
                     {{…}}, \"data\": \"<base64>\"}}]}}): line {}, column {}",
                    err.line(),
                    err.column()
                ),
            );
        }
    };
    let mut payloads = Vec::with_capacity(request.payloads.len());
    for (i, json) in request.payloads.into_iter().enumerate() {
        match from_json(i, json) {
            Ok(payload) => payloads.push(payload),
            Err(message) => return text(StatusCode::BAD_REQUEST, &message),
        }
    }
    let payloads = match operation {
        Operation::Encode => state.codec.encode_all(payloads),
        Operation::Decode => match state.codec.decode_all(payloads) {
            Ok(payloads) => payloads,
            Err((i, err)) => {
                return text(StatusCode::BAD_REQUEST, &format!("payloads[{i}]: {err}"));
            }
        },
    };
    let answer = JsonPayloads {
        payloads: payloads.into_iter().map(to_json).collect(),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&answer).expect("JSON of strings"),
    )
        .into_response()
}

/// 401 without a known token, 403 when its role may not; Ok for a caller who may.
fn authorize(
    state: &State,
    headers: &HeaderMap,
    operation: Operation,
) -> Result<(), (StatusCode, String)> {
    let (needed, name) = match operation {
        Operation::Decode => (Role::Viewer, "decode"),
        Operation::Encode => (Role::Operator, "encode"),
    };
    if operation == Operation::Decode
        && state.anonymous_decode
        && !headers.contains_key(header::AUTHORIZATION)
    {
        return Ok(());
    }
    let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
    let caller = state
        .tokens
        .authenticate(&metadata)
        .map_err(|status| (StatusCode::UNAUTHORIZED, status.message().to_owned()))?;
    if caller.role < needed {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "{name} needs the {} role; this token has {}",
                needed.as_str(),
                caller.role.as_str()
            ),
        ));
    }
    Ok(())
}

/// Protobuf JSON accepts standard and URL-safe base64, padded or not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    STANDARD_LENIENT
        .decode(s)
        .or_else(|_| URL_SAFE_LENIENT.decode(s))
        .ok()
}

fn from_json(i: usize, json: JsonPayload) -> Result<Payload, String> {
    let mut metadata = std::collections::HashMap::with_capacity(json.metadata.len());
    for (key, value) in json.metadata {
        let bytes = base64_decode(&value)
            .ok_or_else(|| format!("payloads[{i}].metadata.{key}: not base64"))?;
        metadata.insert(key, bytes);
    }
    let data =
        base64_decode(&json.data).ok_or_else(|| format!("payloads[{i}].data: not base64"))?;
    Ok(Payload {
        metadata,
        data,
        external_payloads: Vec::new(),
    })
}

fn to_json(payload: Payload) -> JsonPayload {
    JsonPayload {
        metadata: payload
            .metadata
            .into_iter()
            .map(|(k, v)| (k, STANDARD.encode(v)))
            .collect(),
        data: STANDARD.encode(payload.data),
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// CORS headers for a request from an allowed origin (none for any other: the browser then keeps
/// the page from reading the answer).
fn cors_headers(state: &State, headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return out;
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|o| state.cors_origins.iter().any(|a| a == o));
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, X-Namespace"),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_either_alphabet_with_or_without_padding() {
        assert_eq!(base64_decode("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64_decode("+/8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64_decode("").unwrap(), Vec::<u8>::new());
        assert!(base64_decode("*").is_none());
    }

    #[test]
    fn bad_fields_are_named_with_their_index() {
        let bad = JsonPayload {
            metadata: [("encoding".to_owned(), "!!".to_owned())]
                .into_iter()
                .collect(),
            data: String::new(),
        };
        assert_eq!(
            from_json(3, bad).unwrap_err(),
            "payloads[3].metadata.encoding: not base64"
        );
        let bad = JsonPayload {
            metadata: Default::default(),
            data: "%%".to_owned(),
        };
        assert_eq!(
            from_json(0, bad).unwrap_err(),
            "payloads[0].data: not base64"
        );
    }
}
