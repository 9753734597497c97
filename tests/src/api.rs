//! The control API under test: [`TestApi`] in process, tokens per role, and `pcnctl`.

use super::*;

/// The control API in process on a free port, with one token per role: `viewer`, `operator`,
/// `admin` (the tokens are `<role>-token-for-tests`; the server holds only their hashes).
pub struct TestApi {
    /// The server.
    pub server: pcn_worker::api::ApiServer,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl TestApi {
    /// The token of `role` (`viewer`, `operator`, `admin`).
    pub fn token(role: &str) -> String {
        format!("{role}-token-for-tests")
    }

    /// Starts the API on `db`, starting months on `task_queue` with [`test_month_settings`].
    pub async fn start(db: &TestDb, task_queue: &str) -> Self {
        Self::start_with_temporal(db, task_queue, &temporal_address()).await
    }

    /// [`TestApi::start`] with another Temporal address (e.g. one that refuses connections).
    pub async fn start_with_temporal(db: &TestDb, task_queue: &str, temporal: &str) -> Self {
        Self::start_full(db, task_queue, temporal, &[]).await
    }

    /// [`TestApi::start`] with the monthly report's recipients (`SendReport`).
    pub async fn start_with_recipients(db: &TestDb, task_queue: &str, recipients: &[&str]) -> Self {
        Self::start_full(db, task_queue, &temporal_address(), recipients).await
    }

    async fn start_full(
        db: &TestDb,
        task_queue: &str,
        temporal: &str,
        recipients: &[&str],
    ) -> Self {
        let spec = ["viewer", "operator", "admin"]
            .iter()
            .map(|role| {
                format!(
                    "{role}:{role}:{}",
                    pcn_worker::api::auth::hash_token(&Self::token(role))
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let tokens = pcn_worker::api::auth::TokenTable::parse(&spec).expect("test tokens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("api port");
        let server = pcn_worker::api::serve(
            listener,
            pcn_worker::api::ApiState {
                pool: db.pool.clone(),
                temporal: ClientSlot::new(temporal, "default", &payload_codec()),
                task_queue: task_queue.to_owned(),
                month_settings: test_month_settings(),
                tokens: std::sync::Arc::new(tokens),
                report_recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
                phones: pcn_activities::phone_vault::PhoneVault::development(),
            },
        )
        .await
        .expect("control API");
        let url = format!("http://{}", server.addr);
        Self { server, url }
    }

    /// A client of the API (tokens go on each request: see [`authed`]).
    pub async fn client(
        &self,
    ) -> pcn_proto::v1::control_service_client::ControlServiceClient<tonic::transport::Channel>
    {
        pcn_proto::v1::control_service_client::ControlServiceClient::connect(self.url.clone())
            .await
            .expect("connect to the control API")
    }
}

/// `message` with `authorization: Bearer <token>` (none when `token` is None).
pub fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii token"),
        );
    }
    request
}

/// The Web UI's *current details* of a month run (Temporal's `__temporal_workflow_metadata`
/// query, answered by a polling worker).
pub async fn month_current_details(
    client: &temporalio_client::Client,
    workflow_id: &str,
) -> String {
    use temporalio_client::UntypedQuery;
    use temporalio_common::data_converters::RawValue;
    let handle = client.get_workflow_handle::<pcn_workflows::month::MonthlyQualificationWorkflow>(
        workflow_id.to_owned(),
    );
    let answer = handle
        .query(
            UntypedQuery::new("__temporal_workflow_metadata"),
            RawValue::new(Vec::new()),
            Default::default(),
        )
        .await
        .expect("metadata query");
    let data = answer
        .payloads
        .first()
        .map(|p| p.data.clone())
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&data).expect("metadata JSON");
    json["currentDetails"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The real `pcnctl` binary, pointed at the control API at `url` with `token` (tokio's `Command`:
/// the API under test serves on the test's own runtime, which must keep running meanwhile).
pub fn pcnctl(url: &str, token: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(workspace_binary("pcnctl"));
    command
        .env("PCN_API_ADDRESS", url)
        .env("PCN_API_TOKEN", token)
        .env_remove("PCN_API_CA");
    command
}

/// Runs `pcnctl --json <args>` against the API at `url` with `token`, asserts that it succeeded
/// (its stderr is the failure message) and returns what it printed.
pub async fn pcnctl_json(url: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let out = pcnctl(url, token)
        .arg("--json")
        .args(args)
        .output()
        .await
        .expect("run pcnctl");
    assert!(
        out.status.success(),
        "pcnctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pcnctl --json prints JSON")
}
