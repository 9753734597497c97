//! The control API through a real tonic client: the access-control matrix, bad input that
//! changes nothing, pause/resume/cancel of a live month, and a whole month driven only through
//! the API (import, backfill, watch, read, retry, report) and the `pcnctl` binary.
//!
//! Over 600 lines: the control API's system tests, one resource after another, sharing one running
//! API.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_carrier_sim::{Outcome, SimConfig};
use pcn_proto::v1 as pb;
use pcn_proto::v1::control_service_client::ControlServiceClient;
use pcn_tests::{
    InProcessWorker, TestApi, TestCarrier, TestDb, authed, spawn_sim, temporal_address,
    unique_task_queue,
};
use pcn_workflows::domain::YearMonth;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

type Api = ControlServiceClient<Channel>;

/// Every method, in proto order, with the role it needs.
const METHODS: [(&str, &str); 17] = [
    ("StartMonth", "operator"),
    ("GetMonth", "viewer"),
    ("PauseMonth", "operator"),
    ("ResumeMonth", "operator"),
    ("CancelMonth", "operator"),
    ("ListQualifications", "viewer"),
    ("GetCustomer", "viewer"),
    ("UpsertCustomers", "admin"),
    ("SetOptOut", "admin"),
    ("ListNotifications", "viewer"),
    ("RetryNotification", "operator"),
    ("CancelNotification", "operator"),
    ("GetReport", "viewer"),
    ("ExportReport", "viewer"),
    ("SendReport", "operator"),
    ("ListReportDeliveries", "viewer"),
    ("ListAuditEntries", "viewer"),
];

/// Calls `method` with harmless arguments (nothing exists for them, or they are invalid after
/// authorisation), returning only the status code.
async fn call(api: &mut Api, method: &str, token: Option<&str>) -> Code {
    // An unused month and customer: every authorised call ends NOT_FOUND, INVALID_ARGUMENT or
    // OK without changing anything.
    let month = "2023-01".to_owned();
    let customer = "NOBODY".to_owned();
    let result = match method {
        "StartMonth" => api
            .start_month(authed(
                pb::StartMonthRequest {
                    month: "2023-13".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetMonth" => api
            .get_month(authed(pb::GetMonthRequest { month }, token))
            .await
            .map(|_| ()),
        "PauseMonth" => api
            .pause_month(authed(
                pb::MonthActionRequest {
                    month,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ResumeMonth" => api
            .resume_month(authed(
                pb::MonthActionRequest {
                    month,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CancelMonth" => api
            .cancel_month(authed(
                pb::MonthActionRequest {
                    month,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListQualifications" => api
            .list_qualifications(authed(
                pb::ListQualificationsRequest {
                    month,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetCustomer" => api
            .get_customer(authed(
                pb::GetCustomerRequest {
                    customer_id: customer,
                    month: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "UpsertCustomers" => api
            .upsert_customers(authed(
                tokio_stream::iter(Vec::<pb::CustomerRow>::new()),
                token,
            ))
            .await
            .map(|_| ()),
        "SetOptOut" => api
            .set_opt_out(authed(
                pb::SetOptOutRequest {
                    customer_id: customer,
                    opted_out: true,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListNotifications" => api
            .list_notifications(authed(
                pb::ListNotificationsRequest {
                    month,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RetryNotification" => api
            .retry_notification(authed(
                pb::RetryNotificationRequest {
                    month,
                    customer_id: customer,
                    request_id: "matrix-1".into(),
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CancelNotification" => api
            .cancel_notification(authed(
                pb::CancelNotificationRequest {
                    month,
                    customer_id: customer,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetReport" => api
            .get_report(authed(pb::GetReportRequest { month }, token))
            .await
            .map(|_| ()),
        "ExportReport" => api
            .export_report(authed(
                pb::ExportReportRequest {
                    month,
                    format: pb::ReportFormat::Csv.into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "SendReport" => api
            .send_report(authed(
                pb::SendReportRequest {
                    month,
                    resend_in_doubt: false,
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListReportDeliveries" => api
            .list_report_deliveries(authed(pb::ListReportDeliveriesRequest { month }, token))
            .await
            .map(|_| ()),
        "ListAuditEntries" => api
            .list_audit_entries(authed(pb::ListAuditEntriesRequest::default(), token))
            .await
            .map(|_| ()),
        other => panic!("unknown method {other}"),
    };
    match result {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 1,
        "operator" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// Row counts of every table a call could change.
async fn snapshot(pool: &PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "customers",
        "audit_log",
        "notifications",
        "notification_retries",
        "qualifications",
        "balance_checks",
        "report_deliveries",
    ] {
        counts.push(
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .unwrap(),
        );
    }
    let opted: i64 = sqlx::query_scalar("SELECT count(*) FROM customers WHERE opted_out")
        .fetch_one(pool)
        .await
        .unwrap();
    counts.push(opted);
    counts
}

#[tokio::test]
async fn access_control_matrix_every_method_and_caller() {
    pcn_tests::init();
    let db = TestDb::new().await;
    let api_server = TestApi::start(&db, &unique_task_queue("api-matrix")).await;
    let mut api = api_server.client().await;
    let before = snapshot(&db.pool).await;
    let mut rows = Vec::new();
    for (method, needed) in METHODS {
        let none = call(&mut api, method, None).await;
        let bad = call(&mut api, method, Some("not-a-configured-token")).await;
        assert_eq!(none, Code::Unauthenticated, "{method} without a token");
        assert_eq!(bad, Code::Unauthenticated, "{method} with an unknown token");
        let mut line = format!("{method:<20} none={none:?} bad={bad:?}");
        for role in ["viewer", "operator", "admin"] {
            let token = TestApi::token(role);
            let code = call(&mut api, method, Some(&token)).await;
            if rank(role) < rank(needed) {
                assert_eq!(code, Code::PermissionDenied, "{method} as {role}");
            } else {
                assert!(
                    !matches!(
                        code,
                        Code::PermissionDenied | Code::Unauthenticated | Code::Internal
                    ),
                    "{method} as {role} must pass authorisation, got {code:?}"
                );
            }
            line.push_str(&format!(" {role}={code:?}"));
        }
        rows.push(line);
    }
    println!("{}", rows.join("\n"));
    // Only the allowed empty import wrote something: its audit entry (one per admin call).
    let after = snapshot(&db.pool).await;
    assert_eq!(after[0], before[0], "no customer written");
    assert_eq!(
        after[1],
        before[1] + 1,
        "one audit entry: the admin's empty import"
    );
    assert_eq!(after[2..], before[2..]);
    let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit_log")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(actors, vec!["api:admin".to_owned()]);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_status_and_changes_nothing() {
    pcn_tests::init();
    let db = TestDb::with_customers(3).await;
    let api_server = TestApi::start(&db, &unique_task_queue("api-bad")).await;
    let mut api = api_server.client().await;
    let op = TestApi::token("operator");
    let admin = TestApi::token("admin");
    let viewer = TestApi::token("viewer");
    let before = snapshot(&db.pool).await;

    // Bytes that do not decode as the request message: INVALID_ARGUMENT, never INTERNAL.
    for method in ["GetMonth", "SetOptOut", "UpsertCustomers"] {
        let err = raw_call(
            &api_server.url,
            method,
            vec![0x0a, 0xff, 0x01, 0x41],
            &admin,
        )
        .await;
        assert_eq!(err.code(), Code::InvalidArgument, "{method}: {err:?}");
        assert!(
            err.message().contains("does not decode"),
            "{method}: {err:?}"
        );
    }

    // Invalid months: INVALID_ARGUMENT naming the field.
    for month in ["2023-13", "23-01", "", "2023-1", "9999-99"] {
        let err = api
            .start_month(authed(
                pb::StartMonthRequest {
                    month: month.into(),
                },
                Some(&op),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{month:?}");
        assert!(err.message().contains("month"), "{}", err.message());
    }
    // Too far ahead.
    let far = api
        .start_month(authed(
            pb::StartMonthRequest {
                month: "2099-01".into(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err();
    assert_eq!(far.code(), Code::InvalidArgument);
    assert!(far.message().contains("ahead"), "{}", far.message());

    // Unknown ids: NOT_FOUND.
    let unknown = api
        .get_customer(authed(
            pb::GetCustomerRequest {
                customer_id: "C9999999999".into(),
                month: String::new(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let bad_id = api
        .get_customer(authed(
            pb::GetCustomerRequest {
                customer_id: "../etc/passwd".into(),
                month: String::new(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    assert!(
        bad_id.message().contains("customer_id"),
        "{}",
        bad_id.message()
    );
    for code in [
        api.get_month(authed(
            pb::GetMonthRequest {
                month: "2023-02".into(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err()
        .code(),
        api.get_report(authed(
            pb::GetReportRequest {
                month: "2023-02".into(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err()
        .code(),
        api.pause_month(authed(
            pb::MonthActionRequest {
                month: "2023-02".into(),
                reason: String::new(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err()
        .code(),
        api.set_opt_out(authed(
            pb::SetOptOutRequest {
                customer_id: "C9999999999".into(),
                opted_out: true,
                reason: String::new(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err()
        .code(),
        api.retry_notification(authed(
            pb::RetryNotificationRequest {
                month: "2023-02".into(),
                customer_id: pcn_bank_sim::customer_id(0),
                request_id: "r1".into(),
                reason: String::new(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err()
        .code(),
    ] {
        assert_eq!(code, Code::NotFound);
    }
    // Malformed request fields.
    let bad_request_id = api
        .retry_notification(authed(
            pb::RetryNotificationRequest {
                month: "2023-02".into(),
                customer_id: pcn_bank_sim::customer_id(0),
                request_id: "has spaces and / slashes".into(),
                reason: String::new(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_request_id.code(), Code::InvalidArgument);
    assert!(bad_request_id.message().contains("request_id"));
    let bad_page = api
        .list_qualifications(authed(
            pb::ListQualificationsRequest {
                month: "2023-02".into(),
                page_size: 5_000,
                ..Default::default()
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err();
    assert!(bad_page.message().contains("page_size"));
    let bad_token = api
        .list_notifications(authed(
            pb::ListNotificationsRequest {
                month: "2023-02".into(),
                page_token: "forged".into(),
                ..Default::default()
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"));
    let bad_format = api
        .export_report(authed(
            pb::ExportReportRequest {
                month: "2023-02".into(),
                format: 0,
            },
            Some(&viewer),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_format.code(), Code::InvalidArgument);
    assert!(bad_format.message().contains("format"));
    let bad_reason = api
        .set_opt_out(authed(
            pb::SetOptOutRequest {
                customer_id: pcn_bank_sim::customer_id(0),
                opted_out: true,
                reason: "line\nbreak".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_reason.code(), Code::InvalidArgument);
    assert!(bad_reason.message().contains("reason"));
    assert_eq!(
        snapshot(&db.pool).await,
        before,
        "bad input changed nothing"
    );

    // A malformed import: every bad row named with its index and field, the good rows kept.
    let good = pcn_tests::customers_for(5);
    let mut rows: Vec<pb::CustomerRow> = good[3..].iter().map(row_of).collect();
    let mut bad_phone = row_of(&pcn_tests::customers_for(6)[5]);
    bad_phone.phone = "12345".into();
    let mut bad_date = row_of(&pcn_tests::customers_for(7)[6]);
    bad_date.monitored_since = "2023-02-30".into();
    let mut bad_language = row_of(&pcn_tests::customers_for(8)[7]);
    bad_language.language = "fr".into();
    let duplicate = rows[0].clone();
    let mut stolen_account = row_of(&pcn_tests::customers_for(9)[8]);
    stolen_account.account_id = good[0].account_id.as_str().to_owned();
    rows.extend([bad_phone, bad_date, bad_language, duplicate, stolen_account]);
    let response = api
        .upsert_customers(authed(tokio_stream::iter(rows), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.received, 7);
    assert_eq!(response.upserted, 2, "{response:?}");
    assert_eq!(response.rejected, 5, "{response:?}");
    let fields: Vec<(u64, &str)> = response
        .errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (2, "phone"),
            (3, "date"),
            (4, "language"),
            (5, "customer_id"),
            (6, "account_id")
        ],
        "{response:?}"
    );
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(customers, 5, "3 seeded + 2 good rows; no bad row written");
}

fn row_of(c: &pcn_workflows::customer::Customer) -> pb::CustomerRow {
    pb::CustomerRow {
        customer_id: c.customer_id.as_str().to_owned(),
        account_id: c.account_id.as_str().to_owned(),
        first_name: c.first_name.as_str().to_owned(),
        phone: c.phone.as_e164().to_owned(),
        language: c.language.code().to_owned(),
        monitored_since: c.monitored_since.to_string(),
        opted_out: c.opted_out,
        active: Some(c.active),
    }
}

/// Calls `method` with `bytes` as the request message, whatever they are.
async fn raw_call(url: &str, method: &str, bytes: Vec<u8>, token: &str) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path: tonic::codegen::http::uri::PathAndQuery =
        format!("/pcn.v1.ControlService/{method}").parse().unwrap();
    let request = authed(bytes, Some(token));
    if method == "UpsertCustomers" {
        let stream = tokio_stream::iter(vec![request.into_inner()]);
        grpc.client_streaming(authed(stream, Some(token)), path, RawCodec)
            .await
            .unwrap_err()
    } else {
        grpc.unary(request, path, RawCodec).await.unwrap_err()
    }
}

/// Sends bytes as they are; reads whatever comes back.
#[derive(Clone, Copy)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(buf);
        Ok(Some(bytes::Buf::copy_to_bytes(buf, n).to_vec()))
    }
}

/// Polls GetMonth until `done`.
async fn watch(
    api: &mut Api,
    month: &str,
    timeout: Duration,
    done: impl Fn(&pb::Month) -> bool,
) -> pb::Month {
    let viewer = TestApi::token("viewer");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = api
            .get_month(authed(
                pb::GetMonthRequest {
                    month: month.into(),
                },
                Some(&viewer),
            ))
            .await;
        if let Ok(m) = &last
            && done(m.get_ref())
        {
            return m.get_ref().clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out watching {month}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn pause_resume_and_cancel_a_live_month() {
    pcn_tests::init();
    let db = TestDb::with_customers(5).await;
    let bank = spawn_sim(5, 1, Default::default()).await;
    let queue = unique_task_queue("api-live");
    let worker = InProcessWorker::for_test(&queue, &db, &bank);
    let api_server = TestApi::start(&db, &queue).await;
    let mut api = api_server.client().await;
    let op = TestApi::token("operator");
    // Next month: its run waits for its first day, so it stays MONITORING while we steer it.
    let today = pcn_workflows::domain::BusinessDate::of_instant(chrono::Utc::now());
    let month = today.year_month().next().to_string();
    let started = api
        .start_month(authed(
            pb::StartMonthRequest {
                month: month.clone(),
            },
            Some(&op),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!started.backfill);
    let action = |reason: &str| pb::MonthActionRequest {
        month: month.clone(),
        reason: reason.into(),
    };
    watch(&mut api, &month, Duration::from_secs(30), |m| {
        m.phase == pb::MonthPhase::Monitoring as i32
    })
    .await;
    // The Web UI shows what the run is and links to its SMS runs.
    let described = pcn_tests::temporal_client()
        .await
        .get_workflow_handle::<pcn_workflows::month::MonthlyQualificationWorkflow>(format!(
            "qualification/{month}"
        ))
        .describe(Default::default())
        .await
        .unwrap();
    assert_eq!(
        described.static_summary(),
        Some(format!("{month} · threshold 15000.00 NIS on every day").as_str())
    );
    let details = described.static_details().unwrap_or_default();
    // Its current details (the Web UI's "Current details") say what it waits for.
    let temporal = pcn_tests::temporal_client().await;
    let now = pcn_tests::month_current_details(&temporal, &format!("qualification/{month}")).await;
    assert!(now.starts_with("**MONITORING** — 0 of "), "{now}");
    assert!(
        now.contains("next daily check") && now.contains("Israel time"),
        "{now}"
    );
    assert!(
        details.contains(&format!(
            "](/namespaces/default/workflows?query=PcnMonth%3D%22{month}%22%20AND%20WorkflowType%3D%22SmsNotificationWorkflow%22)"
        )),
        "{details}"
    );
    // A carrier's breaker, as a worker stores it when it opens, shows in GetMonth.
    sqlx::query(
        "INSERT INTO carrier_breakers (carrier, state, worker) VALUES ('twilio', 'open', '7@w1')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let seen = watch(&mut api, &month, Duration::from_secs(30), |m| {
        !m.carriers.is_empty()
    })
    .await;
    assert_eq!(seen.carriers.len(), 1);
    assert_eq!(seen.carriers[0].carrier, "twilio");
    assert_eq!(seen.carriers[0].state, pb::BreakerState::Open as i32);
    assert_eq!(seen.carriers[0].worker, "7@w1");
    // No worker: GetMonth shows the phase the run last published, says why, and pcnctl never
    // prints UNSPECIFIED; an action needs the run's own answer. A new worker brings it back.
    worker.stop();
    let stale = watch(&mut api, &month, Duration::from_secs(60), |m| {
        !m.degraded.is_empty()
    })
    .await;
    assert_eq!(stale.phase, pb::MonthPhase::Monitoring as i32, "{stale:?}");
    assert!(stale.degraded.contains("no worker answered"), "{stale:?}");
    let out = pcn_tests::pcnctl(&api_server.url, &TestApi::token("viewer"))
        .args(["month", "get", &month])
        .output()
        .await
        .expect("run pcnctl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("MONITORING") && text.contains("no worker answered"),
        "{text}"
    );
    assert!(!text.contains("UNSPECIFIED"), "{text}");
    // `month watch` (one line per change when not on a terminal): the last known phase and the
    // note, not UNSPECIFIED; it keeps watching (killed here).
    let mut watching = pcn_tests::pcnctl(&api_server.url, &TestApi::token("viewer"))
        .args(["month", "watch", &month])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run pcnctl month watch");
    let stdout = watching.stdout.take().expect("watch output");
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut first),
    )
    .await
    .expect("a line from month watch within 60 s")
    .expect("read month watch");
    assert!(
        first.contains("MONITORING") && first.contains("no worker answered"),
        "{first}"
    );
    assert!(!first.contains("UNSPECIFIED"), "{first}");
    watching.kill().await.expect("stop month watch");
    let err = api
        .pause_month(authed(action("no worker"), Some(&op)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let worker = InProcessWorker::for_test(&queue, &db, &bank);
    watch(&mut api, &month, Duration::from_secs(60), |m| {
        m.degraded.is_empty() && m.phase == pb::MonthPhase::Monitoring as i32
    })
    .await;
    // Resume while running is an illegal transition.
    let err = api
        .resume_month(authed(action("x"), Some(&op)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    api.pause_month(authed(action("maintenance"), Some(&op)))
        .await
        .unwrap();
    watch(&mut api, &month, Duration::from_secs(30), |m| {
        m.phase == pb::MonthPhase::Paused as i32
    })
    .await;
    let now = pcn_tests::month_current_details(&temporal, &format!("qualification/{month}")).await;
    assert!(now.starts_with("**PAUSED**"), "{now}");
    assert!(
        now.contains(&format!("pcnctl month resume {month}")),
        "{now}"
    );
    let err = api
        .pause_month(authed(action("again"), Some(&op)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    api.resume_month(authed(action("done"), Some(&op)))
        .await
        .unwrap();
    watch(&mut api, &month, Duration::from_secs(30), |m| {
        m.phase == pb::MonthPhase::Monitoring as i32
    })
    .await;
    api.cancel_month(authed(action("wrong month"), Some(&op)))
        .await
        .unwrap();
    watch(&mut api, &month, Duration::from_secs(30), |m| {
        m.phase == pb::MonthPhase::Cancelled as i32
    })
    .await;
    let err = api
        .cancel_month(authed(action("twice"), Some(&op)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = api
        .start_month(authed(
            pb::StartMonthRequest {
                month: month.clone(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = 'api:operator' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        vec![
            "MONTH_STARTED",
            "MONTH_PAUSE_REQUESTED",
            "MONTH_RESUME_REQUESTED",
            "MONTH_CANCEL_REQUESTED"
        ]
    );
    worker.stop();
}

#[tokio::test]
async fn get_month_without_temporal_shows_what_postgres_implies() {
    pcn_tests::init();
    let db = TestDb::with_customers(5).await;
    let queue = unique_task_queue("api-blind");
    // An API whose Temporal address refuses connections.
    let blind = TestApi::start_with_temporal(&db, &queue, "127.0.0.1:1").await;
    let mut api = blind.client().await;
    let viewer = TestApi::token("viewer");
    let get = |month: &str| {
        authed(
            pb::GetMonthRequest {
                month: month.into(),
            },
            Some(&viewer),
        )
    };
    // No data: whether the month has a run cannot be known — UNAVAILABLE, not NOT_FOUND.
    let err = api.get_month(get("2019-02")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // One swept day: MONITORING, with a note that says where the phase comes from.
    sqlx::query(
        "INSERT INTO daily_sweeps (business_date, checked, passed, below_threshold, missing,
                                   not_found, invalid, workflow_id, run_id)
         VALUES ('2019-01-01', 5, 5, 0, 0, 0, 0, 'qualification/2019-01', 'test')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let inferred = api.get_month(get("2019-01")).await.unwrap().into_inner();
    assert_eq!(
        inferred.phase,
        pb::MonthPhase::Monitoring as i32,
        "{inferred:?}"
    );
    assert_eq!(inferred.days_done, 1);
    assert!(inferred.degraded.contains("Temporal"), "{inferred:?}");
    // pcnctl shows the same.
    let json = pcn_tests::pcnctl_json(&blind.url, &viewer, &["month", "get", "2019-01"]).await;
    assert_eq!(json["phase"], "MONITORING", "{json}");
    assert!(
        json["degraded"]
            .as_str()
            .unwrap_or_default()
            .contains("inferred from Postgres"),
        "{json}"
    );
}

#[tokio::test]
async fn a_month_driven_only_through_the_api_and_pcnctl() {
    pcn_tests::init();
    let n = 40;
    let month_s = "2023-03";
    let month = YearMonth::parse(month_s).unwrap();
    let db = TestDb::new().await;
    let bank = spawn_sim(n, 1, Default::default()).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    // Every even customer's first message is undeliverable (anything after is delivered); the
    // carrier never answers for customers 1, 5, 9, ... (they stay SUBMITTED until cancelled).
    for i in 0..n {
        let plan = match i % 4 {
            0 | 2 => Outcome::Undeliverable {
                code: "30005".into(),
            },
            1 => Outcome::Silent,
            _ => continue,
        };
        carrier.sim.set_plan(&format!("+9725{i:08}"), vec![plan]);
    }
    let queue = unique_task_queue("api-life");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let api_server = TestApi::start(&db, &queue).await;
    let mut api = api_server.client().await;
    let (viewer, op, admin) = (
        TestApi::token("viewer"),
        TestApi::token("operator"),
        TestApi::token("admin"),
    );

    // 1. Import.
    let customers = pcn_tests::customers_for(n);
    let imported = api
        .upsert_customers(authed(
            tokio_stream::iter(customers.iter().map(row_of).collect::<Vec<_>>()),
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (imported.received, imported.upserted, imported.rejected),
        (n, n, 0)
    );

    // 2. Backfill and watch.
    let started = api
        .start_month(authed(
            pb::StartMonthRequest {
                month: month_s.into(),
            },
            Some(&op),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(started.backfill);
    assert_eq!(started.workflow_id, "qualification/2023-03");
    // The month waits for its silent notifications: cancel them (operator), then it completes.
    // Wait (through the API, uncached list) until every notification is final except the silent
    // customers' (1, 5, 9, ... mod 4), which stay SUBMITTED.
    watch(&mut api, month_s, Duration::from_secs(240), |m| {
        let c = m.notifications.unwrap_or_default();
        let q = m.qualification.unwrap_or_default();
        m.phase == pb::MonthPhase::Notifying as i32 && q.qualified > 0 && c.total == q.qualified
    })
    .await;
    let expected_silent: Vec<String> = pcn_tests::qualified_in_db(&db.pool, month)
        .await
        .into_iter()
        .filter(|c| c[1..].parse::<u64>().unwrap() % 4 == 1)
        .collect();
    assert!(!expected_silent.is_empty());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let silent = loop {
        let all = api
            .list_notifications(authed(
                pb::ListNotificationsRequest {
                    month: month_s.into(),
                    page_size: 1000,
                    ..Default::default()
                },
                Some(&viewer),
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications;
        let (waiting, open): (Vec<_>, Vec<_>) = all
            .into_iter()
            .filter(|n| n.finished_at.is_empty())
            .partition(|n| n.status == pb::NotificationStatus::Submitted as i32);
        let ids: Vec<String> = waiting.iter().map(|n| n.customer_id.clone()).collect();
        if open.is_empty() && ids == expected_silent {
            break waiting;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still open: {open:?}; submitted {ids:?}, expected {expected_silent:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for n in &silent {
        let index: u64 = n.customer_id[1..].parse().unwrap();
        assert_eq!(index % 4, 1, "only the silent customers wait");
        api.cancel_notification(authed(
            pb::CancelNotificationRequest {
                month: month_s.into(),
                customer_id: n.customer_id.clone(),
                reason: "carrier lost it".into(),
            },
            Some(&op),
        ))
        .await
        .unwrap();
    }
    let done = watch(&mut api, month_s, Duration::from_secs(120), |m| {
        m.phase == pb::MonthPhase::Completed as i32
    })
    .await;
    // A completed run answers no query: its fan-out count is the notification rows, not 0.
    let notified = done.notifications.unwrap_or_default().total;
    assert!(notified > 0);
    assert_eq!(done.fanout_started, notified, "{done:?}");
    assert_eq!(done.degraded, "", "every part answered");
    // A final notification cannot be cancelled.
    let err = api
        .cancel_notification(authed(
            pb::CancelNotificationRequest {
                month: month_s.into(),
                customer_id: silent[0].customer_id.clone(),
                reason: String::new(),
            },
            Some(&op),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(done.days_done, 31);
    assert_eq!(done.days.len(), 31);
    let q = done.qualification.unwrap();
    assert_eq!(q.decided, n);
    let qualified_db = pcn_tests::qualified_in_db(&db.pool, month).await;
    assert_eq!(q.qualified, qualified_db.len() as u64);
    let counts = done.notifications.unwrap();
    assert_eq!(counts.total, q.qualified);
    assert_eq!(counts.cancelled, silent.len() as u64);
    assert_eq!(
        counts.delivered + counts.undeliverable + counts.cancelled,
        counts.total,
        "{counts:?}"
    );
    assert!(
        counts.undeliverable > 0 && counts.delivered > 0,
        "{counts:?}"
    );

    // 3. Qualifications, page by page (page size 7), equal the database.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_qualifications(authed(
                pb::ListQualificationsRequest {
                    month: month_s.into(),
                    qualified: Some(true),
                    page_size: 7,
                    page_token: token.clone(),
                    ..Default::default()
                },
                Some(&viewer),
            ))
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.qualifications.into_iter().map(|q| q.customer_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed, qualified_db);

    // 4. One undeliverable customer, read and retried.
    let undeliverable = api
        .list_notifications(authed(
            pb::ListNotificationsRequest {
                month: month_s.into(),
                status: pb::NotificationStatus::Undeliverable.into(),
                ..Default::default()
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(undeliverable.len() as u64, counts.undeliverable);
    let target = undeliverable[0].customer_id.clone();
    let detail = api
        .get_customer(authed(
            pb::GetCustomerRequest {
                customer_id: target.clone(),
                month: String::new(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    let profile = detail.customer.clone().unwrap();
    let index: u64 = target[1..].parse().unwrap();
    let phone = format!("+9725{index:08}");
    assert!(
        profile.phone.contains('*') && profile.phone != phone,
        "phone masked: {}",
        profile.phone
    );
    assert_eq!(detail.checks_month, month_s);
    assert_eq!(detail.checks.len(), 31);
    assert!(
        detail
            .checks
            .iter()
            .all(|c| c.outcome == pb::CheckOutcome::Passed as i32)
    );
    assert_eq!(detail.qualifications.len(), 1);
    assert_eq!(detail.notifications[0].sms_attempts.len(), 1);
    assert_eq!(
        detail.notifications[0].sms_attempts[0].status,
        "UNDELIVERABLE"
    );

    let retry = |request_id: &str| {
        authed(
            pb::RetryNotificationRequest {
                month: month_s.into(),
                customer_id: target.clone(),
                request_id: request_id.into(),
                reason: "number fixed by the branch".into(),
            },
            Some(&op),
        )
    };
    let first = api
        .retry_notification(retry("retry-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.attempt, 2);
    assert!(!first.replayed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = api
            .get_customer(authed(
                pb::GetCustomerRequest {
                    customer_id: target.clone(),
                    month: String::new(),
                },
                Some(&viewer),
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications
            .remove(0);
        if n.status == pb::NotificationStatus::Delivered as i32 {
            assert_eq!(n.attempts, 2);
            assert_eq!(n.manual_retries, 1);
            assert_eq!(n.sms_attempts.len(), 2);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retry not delivered: {n:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // In the Web UI the retry's run says what it is (no personal data).
    let retried = pcn_tests::temporal_client()
        .await
        .get_workflow_handle::<pcn_workflows::sms::SmsNotificationWorkflow>(format!(
            "sms/{month_s}/{target}"
        ))
        .describe(Default::default())
        .await
        .unwrap();
    assert_eq!(
        retried.static_summary(),
        Some(format!("{month_s} · customer {target} · manual retry, attempt 2").as_str())
    );
    // The retried run replays on the current code (and is kept as a fixture when asked).
    crate::replay::check_and_maybe_save_workflow(
        &pcn_tests::temporal_client().await,
        &format!("sms/{month_s}/{target}"),
        "sms-manual-retry.json",
    )
    .await;
    // The same request again: the first answer, nothing sent.
    let again = api
        .retry_notification(retry("retry-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(
        (again.attempt, again.run_id.as_str()),
        (2, first.run_id.as_str())
    );
    // A new request on a DELIVERED notification is an illegal transition.
    let err = api.retry_notification(retry("retry-2")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        carrier.sim.messages_to(&phone).len(),
        2,
        "one original, one retry"
    );

    // 5. The report equals an independent computation.
    let report = api
        .get_report(authed(
            pb::GetReportRequest {
                month: month_s.into(),
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    let scalar = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            let v: i64 = sqlx::query_scalar(sql)
                .bind(month.first_day().as_naive())
                .fetch_one(&pool)
                .await
                .unwrap();
            v as u64
        }
    };
    let summary = report.summary.unwrap();
    assert_eq!(
        summary.customers_monitored,
        scalar("SELECT count(*) FROM qualifications WHERE month = $1").await
    );
    assert_eq!(
        summary.qualified,
        scalar("SELECT count(*) FROM qualifications WHERE month = $1 AND reason = 'QUALIFIED'")
            .await
    );
    let delivery = report.delivery.unwrap();
    assert_eq!(
        delivery.delivered,
        scalar("SELECT count(*) FROM notifications WHERE month = $1 AND status = 'DELIVERED'")
            .await
    );
    assert_eq!(
        delivery.undeliverable,
        scalar("SELECT count(*) FROM notifications WHERE month = $1 AND status = 'UNDELIVERABLE'")
            .await
    );
    assert_eq!(
        delivery.messages_sent,
        scalar(
            "SELECT count(*) FROM sms_attempts WHERE month = $1 AND carrier_message_id IS NOT NULL"
        )
        .await
    );
    assert_eq!(delivery.messages_sent, carrier.sim.stats().accepted as u64);
    assert_eq!(delivery.pending, 0);
    let rate = Decimal::from(summary.qualified * 100) / Decimal::from(summary.customers_monitored);
    assert_eq!(
        summary.qualification_rate,
        format!("{:.2}", rate.round_dp(2))
    );
    let reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM qualifications WHERE month = $1 AND NOT qualified GROUP BY reason ORDER BY 2 DESC, 1",
    )
    .bind(month.first_day().as_naive())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let reported: Vec<(String, i64)> = report
        .qualification
        .clone()
        .unwrap()
        .reasons
        .iter()
        .map(|r| (r.reason.clone(), r.count as i64))
        .collect();
    assert_eq!(reported, reasons);
    assert_eq!(report.daily.len(), 31);
    let passed: u64 = report.daily.iter().map(|d| d.passed).sum();
    assert_eq!(passed, scalar("SELECT count(*) FROM balance_checks WHERE business_date >= $1 AND business_date < $1 + 31 AND outcome = 'PASSED'").await);

    // 6. Exports.
    for (format, needle) in [
        (pb::ReportFormat::Csv, &b"section"[..]),
        (pb::ReportFormat::Xlsx, &b"PK"[..]),
        (pb::ReportFormat::Html, &b"<svg"[..]),
        (pb::ReportFormat::Pdf, &b"%PDF-"[..]),
    ] {
        let file = api
            .export_report(authed(
                pb::ExportReportRequest {
                    month: month_s.into(),
                    format: format.into(),
                },
                Some(&viewer),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            file.filename.starts_with("pcn-report-2023-03."),
            "{}",
            file.filename
        );
        assert!(
            file.content
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle)),
            "{format:?} export lacks {needle:?}"
        );
    }

    // 7. The audit trail names the callers.
    let audit = api
        .list_audit_entries(authed(
            pb::ListAuditEntriesRequest {
                actor: "api:operator".into(),
                ..Default::default()
            },
            Some(&viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    let mut expected = vec!["NOTIFICATION_RETRY_REQUESTED"];
    expected.extend(silent.iter().map(|_| "NOTIFICATION_CANCEL_REQUESTED"));
    expected.push("MONTH_STARTED");
    assert_eq!(actions, expected);

    // 8. pcnctl over the same API: JSON, files, exit codes.
    let run = |args: &[&str], token: &str| {
        pcn_tests::pcnctl(&api_server.url, token)
            .args(args)
            .output()
    };
    let out = run(&["--json", "month", "get", month_s], &viewer)
        .await
        .expect("run pcnctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("pcnctl --json prints JSON");
    assert_eq!(json["phase"], "COMPLETED", "{json}");
    let out = run(&["month", "pause", month_s], &viewer)
        .await
        .expect("run pcnctl");
    assert_eq!(out.status.code(), Some(3), "viewer may not pause");
    let out = run(&["month", "pause", month_s], &op)
        .await
        .expect("run pcnctl");
    assert_eq!(
        out.status.code(),
        Some(6),
        "a completed month cannot be paused"
    );
    let out = run(&["customer", "get", "C9999999999"], &viewer)
        .await
        .expect("run pcnctl");
    assert_eq!(out.status.code(), Some(4));
    let out = run(&["month", "get", "2023-13"], &viewer)
        .await
        .expect("run pcnctl");
    assert_eq!(out.status.code(), Some(5));
    let out = run(&["month", "get", month_s], "wrong-token")
        .await
        .expect("run pcnctl");
    assert_eq!(out.status.code(), Some(3));
    let file =
        std::env::temp_dir().join(format!("pcn-report-{}.html", uuid::Uuid::new_v4().simple()));
    let out = run(
        &[
            "report",
            "export",
            month_s,
            "--format",
            "html",
            "--output",
            file.to_str().unwrap(),
        ],
        &viewer,
    )
    .await
    .expect("run pcnctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains("<svg"));
    let _ = std::fs::remove_file(&file);
    worker.stop();
}

/// The standard services beside ours: health (SERVING for `pcn.v1.ControlService`) and server
/// reflection listing the API, so grpcurl needs no proto files. Neither needs a token.
#[tokio::test]
async fn health_and_reflection_answer() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    pcn_tests::init();
    let db = TestDb::new().await;
    let api_server = TestApi::start(&db, &unique_task_queue("api-health")).await;
    let channel = tonic::transport::Endpoint::from_shared(api_server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "pcn.v1.ControlService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"pcn.v1.ControlService".to_owned()),
        "{names:?}"
    );
}
