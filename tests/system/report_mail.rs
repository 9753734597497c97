//! The monthly report by email, through the real `pcn-worker` process and a real SMTP server on
//! loopback: exactly one email per recipient and month (HTML with its charts, XLSX and PDF
//! attached), a failing SMTP server retried without holding the month, the worker aborted on
//! both sides of the SMTP transaction (the email in doubt is never sent again by itself), and
//! `SendReport` on demand (and `pcnctl report send`).

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_activities::report_deliveries::{self, ReportDelivery, ReportDeliveryStatus};
use pcn_proto::v1 as pb;
use pcn_tests::smtp::{Failure, Part, Received, SmtpSink};
use pcn_tests::{
    TestApi, TestCarrier, TestDb, WorkerProcess, authed, spawn_sim, temporal_address,
    temporal_client, test_month_settings, unique_task_queue, wait_completed,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;
use tonic::Code;

const RECIPIENTS: [&str; 2] = ["owner@bank.example", "risk@bank.example"];
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A month of a few customers, the bank and carrier simulators, the SMTP server.
struct Stack {
    db: TestDb,
    bank: pcn_bank_sim::SimHandle,
    carrier: TestCarrier,
    queue: String,
    client: temporalio_client::Client,
    smtp: SmtpSink,
}

impl Stack {
    async fn new(name: &str, seed: u64) -> Self {
        pcn_tests::init();
        let n = 5;
        let db = TestDb::with_customers(n).await;
        let bank = spawn_sim(n, seed, pcn_bank_sim::Faults::default()).await;
        let carrier = TestCarrier::start(
            &db.pool,
            &temporal_address(),
            CarrierKind::Generic,
            pcn_carrier_sim::SimConfig::default(),
        )
        .await;
        Self {
            db,
            bank,
            carrier,
            queue: unique_task_queue(name),
            client: temporal_client().await,
            smtp: SmtpSink::start().await,
        }
    }

    /// `pcn-worker run` mailing through the test's SMTP server (fast retries, a 2 s grace before
    /// a SENDING row counts as abandoned), with `recipients` and `extra` settings.
    fn worker(&self, recipients: &[&str], extra: &[(&str, &str)]) -> WorkerProcess {
        let recipients = recipients.join(",");
        let url = self.smtp.url();
        let mut env: Vec<(&str, &str)> = vec![
            ("PCN_REPORT_RECIPIENTS", &recipients),
            ("PCN_REPORT_FROM", "PCN reports <pcn-reports@bank.example>"),
            ("PCN_SMTP_URL", &url),
            ("PCN_REPORT_RETRY_SECS", "1"),
            ("PCN_REPORT_POLL_MS", "200"),
            ("PCN_REPORT_SENDING_GRACE_SECS", "2"),
            ("RUST_LOG", "warn,pcn_worker::report=info"),
        ];
        env.extend_from_slice(extra);
        WorkerProcess::start_with(
            &self.queue,
            &self.db.url,
            &self.bank.base_url(),
            8,
            &self.carrier,
            &env,
        )
    }

    async fn start(&self, month: YearMonth) {
        start_month(&self.client, &self.queue, month, test_month_settings())
            .await
            .expect("start the month");
    }

    async fn rows(&self, month: YearMonth) -> Vec<ReportDelivery> {
        report_deliveries::list(&self.db.pool, month)
            .await
            .expect("report deliveries")
    }

    /// Waits until the month's rows satisfy `done` (or panics with them after `timeout`).
    async fn wait_rows(
        &self,
        month: YearMonth,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ReportDelivery]) -> bool,
    ) -> Vec<ReportDelivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rows = self.rows(month).await;
            if done(&rows) {
                return rows;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; rows: {rows:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn audit(&self, action: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT actor, subject_id FROM audit_log WHERE action = $1 ORDER BY subject_id",
        )
        .bind(action)
        .fetch_all(&self.db.pool)
        .await
        .expect("audit entries")
    }
}

fn statuses(rows: &[ReportDelivery]) -> Vec<ReportDeliveryStatus> {
    rows.iter().map(|r| r.status).collect()
}

fn all(rows: &[ReportDelivery], status: ReportDeliveryStatus) -> bool {
    rows.len() == RECIPIENTS.len() && rows.iter().all(|r| r.status == status)
}

/// The recipients of the emails the server accepted, sorted.
fn recipients_of(received: &[Received]) -> Vec<String> {
    let mut to: Vec<String> = received.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    to.sort();
    to
}

/// The leaf of `message` whose attachment file name is `name`.
fn attachment(message: &Part, name: &str) -> Part {
    message
        .leaves()
        .into_iter()
        .find(|p| p.param("content-disposition", "filename").as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no attachment {name}; parts: {:?}", message.leaves()))
}

/// One accepted email: the envelope, the headers, the HTML body with its charts, the XLSX and the
/// PDF with the month's figures.
fn check_email(m: &Received, month: YearMonth, row: &ReportDelivery) {
    assert_eq!(m.mail_from, "pcn-reports@bank.example");
    assert_eq!(m.rcpt_to, vec![row.recipient.clone()]);
    let message = Part::parse(&m.data);
    assert_eq!(
        message.header("subject"),
        Some(format!("PCN monthly report {month}").as_str())
    );
    assert_eq!(message.header("to"), Some(row.recipient.as_str()));
    assert_eq!(message.header("message-id"), row.message_id.as_deref());
    assert_eq!(message.content_type(), "multipart/mixed");
    let leaves = message.leaves();
    let html = leaves
        .iter()
        .find(|p| p.content_type() == "text/html")
        .expect("an HTML body");
    let html = String::from_utf8(html.decoded()).expect("UTF-8 HTML");
    assert!(html.contains("<svg"), "the HTML body has its charts");
    assert!(html.contains(&month.to_string()));
    assert!(leaves.iter().any(|p| p.content_type() == "text/plain"));
    let xlsx = attachment(&message, &format!("pcn-report-{month}.xlsx"));
    assert_eq!(xlsx.content_type(), XLSX);
    assert!(xlsx.decoded().starts_with(b"PK"), "XLSX is a zip");
    let pdf = attachment(&message, &format!("pcn-report-{month}.pdf"));
    assert_eq!(pdf.content_type(), "application/pdf");
    let pdf = pdf.decoded();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("(Customers monitored)") && text.contains("(5)"));
    assert!(text.contains(&format!("(PCN monthly report {month} - page 1 of ")));
    let raw = String::from_utf8_lossy(&m.data);
    assert!(!raw.contains("+9725"), "no phone number in the email");
    eprintln!(
        "email to {}: {} bytes, PDF {} bytes",
        row.recipient,
        m.data.len(),
        pdf.len()
    );
}

#[tokio::test]
async fn a_completed_month_mails_its_report_once_to_each_recipient_with_html_xlsx_and_pdf() {
    let s = Stack::new("mail-once", 41).await;
    let month = YearMonth::parse("2021-01").unwrap();
    let _worker = s.worker(&RECIPIENTS, &[]);
    s.start(month).await;
    wait_completed(&s.client, month, Duration::from_secs(180)).await;
    let rows = s
        .wait_rows(month, Duration::from_secs(60), "both emails SENT", |r| {
            all(r, ReportDeliveryStatus::Sent)
        })
        .await;
    // More rounds of the mailer change nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = s.smtp.received();
    assert_eq!(recipients_of(&received), RECIPIENTS.to_vec());
    for row in &rows {
        assert_eq!(row.attempts, 1);
        assert_eq!(row.request, 1);
        assert_eq!(row.requested_by, format!("workflow:qualification/{month}"));
        assert!(row.sent_at.is_some());
        let message_id = row.message_id.as_deref().expect("a Message-ID");
        assert!(
            message_id.starts_with(&format!("<pcn-report.{month}."))
                && message_id.ends_with(".r1@bank.example>"),
            "{message_id}"
        );
        let m = received
            .iter()
            .find(|m| m.rcpt_to.contains(&row.recipient))
            .unwrap();
        check_email(m, month, row);
    }
    let queued = s.audit("REPORT_DELIVERY_QUEUED").await;
    assert_eq!(
        queued,
        RECIPIENTS
            .iter()
            .map(|r| (
                format!("workflow:qualification/{month}"),
                format!("{month}/{r}")
            ))
            .collect::<Vec<_>>()
    );
    let sent = s.audit("REPORT_DELIVERY_SENT").await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(actor, _)| actor == "mailer"));
    // The run with its QueueReport step replays (saved as a fixture with PCN_WRITE_FIXTURES).
    crate::replay::check_and_maybe_save(&s.client, month, "month-report-mail-patches-first.json")
        .await;
}

#[tokio::test]
async fn a_failing_smtp_server_is_retried_and_never_holds_the_month() {
    let s = Stack::new("mail-retry", 43).await;
    let month = YearMonth::parse("2021-02").unwrap();
    // Down first: connections refused.
    s.smtp.refuse_connections();
    let _worker = s.worker(&RECIPIENTS, &[]);
    s.start(month).await;
    // The month completes while nothing can be mailed.
    wait_completed(&s.client, month, Duration::from_secs(180)).await;
    let failed = s
        .wait_rows(month, Duration::from_secs(30), "both emails FAILED", |r| {
            all(r, ReportDeliveryStatus::Failed)
        })
        .await;
    assert!(failed.iter().all(|r| r.last_error.is_some()), "{failed:#?}");
    // Back, but answering 421 at the greeting once and 451 after the message twice.
    s.smtp.fail_next(1, Failure::AtGreeting);
    s.smtp.fail_next(2, Failure::AfterData);
    s.smtp.listen().await;
    let rows = s
        .wait_rows(month, Duration::from_secs(90), "both emails SENT", |r| {
            all(r, ReportDeliveryStatus::Sent)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.smtp.failures_left(), 0);
    assert_eq!(recipients_of(&s.smtp.received()), RECIPIENTS.to_vec());
    // Two transactions refused after DATA, two accepted; nothing accepted twice.
    assert_eq!(s.smtp.transactions(), 4);
    let attempts: i32 = rows.iter().map(|r| r.attempts).sum();
    assert!(
        attempts >= 2 + 3,
        "refused, 421, 451 ×2, then sent: {rows:#?}"
    );
    eprintln!(
        "attempts per email: {:?}",
        rows.iter().map(|r| r.attempts).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_worker_aborted_after_the_server_accepted_the_report_sends_nothing_twice() {
    let s = Stack::new("mail-after-send", 47).await;
    let month = YearMonth::parse("2021-03").unwrap();
    let crashing = s.worker(&RECIPIENTS, &[("PCN_FAILPOINT", "report.after_send")]);
    s.start(month).await;
    crashing
        .wait_exit(
            Duration::from_secs(180),
            "the report.after_send crash point",
        )
        .await;
    // The server has the first email; its row still says SENDING.
    let first = s.smtp.received();
    assert_eq!(first.len(), 1);
    let first_to = first[0].rcpt_to[0].clone();
    let _worker = s.worker(&RECIPIENTS, &[]);
    wait_completed(&s.client, month, Duration::from_secs(120)).await;
    let rows = s
        .wait_rows(
            month,
            Duration::from_secs(60),
            "one email SENT, the other IN_DOUBT",
            |r| {
                let mut st = statuses(r);
                st.sort_by_key(|s| s.as_str());
                st == [ReportDeliveryStatus::InDoubt, ReportDeliveryStatus::Sent]
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = s.smtp.received();
    assert_eq!(
        recipients_of(&received),
        RECIPIENTS.to_vec(),
        "exactly one each"
    );
    let doubt = rows
        .iter()
        .find(|r| r.status == ReportDeliveryStatus::InDoubt)
        .unwrap();
    assert_eq!(doubt.recipient, first_to, "the email the server accepted");
    assert!(
        doubt
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("may have been sent")
    );
    assert_eq!(
        s.audit("REPORT_DELIVERY_IN_DOUBT").await,
        vec![("mailer".to_owned(), format!("{month}/{first_to}"))]
    );
    // Nothing changes by itself afterwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.smtp.received().len(), 2);
    assert_eq!(s.rows(month).await, rows.clone());
}

#[tokio::test]
async fn a_worker_aborted_before_sending_leaves_the_report_in_doubt_until_an_operator_resends_it() {
    let s = Stack::new("mail-before-send", 53).await;
    let month = YearMonth::parse("2021-04").unwrap();
    let crashing = s.worker(&RECIPIENTS, &[("PCN_FAILPOINT", "report.before_send")]);
    s.start(month).await;
    crashing
        .wait_exit(
            Duration::from_secs(180),
            "the report.before_send crash point",
        )
        .await;
    assert!(s.smtp.received().is_empty());
    let _worker = s.worker(&RECIPIENTS, &[]);
    let rows = s
        .wait_rows(
            month,
            Duration::from_secs(60),
            "one email SENT, the other IN_DOUBT",
            |r| {
                let mut st = statuses(r);
                st.sort_by_key(|s| s.as_str());
                st == [ReportDeliveryStatus::InDoubt, ReportDeliveryStatus::Sent]
            },
        )
        .await;
    let doubt = rows
        .iter()
        .find(|r| r.status == ReportDeliveryStatus::InDoubt)
        .unwrap()
        .clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.smtp.received().len(),
        1,
        "the email in doubt is not sent by itself"
    );

    // An operator asks for it explicitly: sent exactly once more, under a new Message-ID.
    let api_server = TestApi::start_with_recipients(&s.db, &s.queue, &RECIPIENTS).await;
    let mut api = api_server.client().await;
    let send = |resend: bool| pb::SendReportRequest {
        month: month.to_string(),
        resend_in_doubt: resend,
        reason: "the relay's log shows no delivery".into(),
    };
    let operator = TestApi::token("operator");
    // Without resend_in_doubt nothing changes.
    let plain = api
        .send_report(authed(send(false), Some(&operator)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plain.queued, plain.retried, plain.resent), (0, 0, 0));
    let answer = api
        .send_report(authed(send(true), Some(&operator)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.queued, answer.retried, answer.resent), (0, 0, 1));
    let rows = s
        .wait_rows(month, Duration::from_secs(30), "both emails SENT", |r| {
            all(r, ReportDeliveryStatus::Sent)
        })
        .await;
    let again = api
        .send_report(authed(send(true), Some(&operator)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.queued, again.retried, again.resent), (0, 0, 0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = s.smtp.received();
    assert_eq!(recipients_of(&received), RECIPIENTS.to_vec());
    let resent = rows
        .iter()
        .find(|r| r.recipient == doubt.recipient)
        .unwrap();
    assert_eq!(resent.request, 2);
    assert!(
        resent
            .message_id
            .as_deref()
            .is_some_and(|m| m.ends_with(".r2@bank.example>")),
        "{resent:?}"
    );
    let m = received
        .iter()
        .find(|m| m.rcpt_to.contains(&doubt.recipient))
        .unwrap();
    check_email(m, month, resent);
    let requeued = s.audit("REPORT_DELIVERY_REQUEUED").await;
    assert_eq!(
        requeued,
        vec![(
            "api:operator".to_owned(),
            format!("{month}/{}", doubt.recipient)
        )]
    );
}

#[tokio::test]
async fn send_report_mails_a_month_on_demand_and_says_clearly_when_it_cannot() {
    let s = Stack::new("mail-on-demand", 59).await;
    let month = YearMonth::parse("2021-05").unwrap();
    // A worker without recipients: the month completes and queues nothing.
    let _worker = s.worker(&[], &[]);
    s.start(month).await;
    wait_completed(&s.client, month, Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(s.rows(month).await.is_empty());

    let operator = TestApi::token("operator");
    let send = |m: &str| pb::SendReportRequest {
        month: m.into(),
        resend_in_doubt: false,
        reason: "asked by the programme owner".into(),
    };
    // No recipients configured: FAILED_PRECONDITION saying so.
    let bare = TestApi::start(&s.db, &s.queue).await;
    let err = bare
        .client()
        .await
        .send_report(authed(send("2021-05"), Some(&operator)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("PCN_REPORT_RECIPIENTS"), "{err:?}");

    let api_server = TestApi::start_with_recipients(&s.db, &s.queue, &RECIPIENTS).await;
    let mut api = api_server.client().await;
    for (month_text, code) in [
        ("2021-13", Code::InvalidArgument),
        ("2020-01", Code::NotFound),
    ] {
        let err = api
            .send_report(authed(send(month_text), Some(&operator)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{month_text}: {err:?}");
    }
    let viewer = TestApi::token("viewer");
    let err = api
        .send_report(authed(send("2021-05"), Some(&viewer)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A viewer may look: nothing queued yet, and a bad month is about the month alone.
    let list = |m: &str| {
        authed(
            pb::ListReportDeliveriesRequest { month: m.into() },
            Some(&viewer),
        )
    };
    let none = api.list_report_deliveries(list("2021-05")).await.unwrap();
    assert!(none.into_inner().deliveries.is_empty());
    let err = api
        .list_report_deliveries(list("2021-13"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("month"), "{err:?}");

    // pcnctl report send, as an operator would.
    let json = pcn_tests::pcnctl_json(
        &api_server.url,
        &operator,
        &[
            "report",
            "send",
            "2021-05",
            "--reason",
            "asked by the programme owner",
        ],
    )
    .await;
    assert_eq!(json["queued"], 2, "{json}");
    assert_eq!(json["deliveries"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["deliveries"][0]["recipient"], RECIPIENTS[0]);

    let rows = s
        .wait_rows(month, Duration::from_secs(30), "both emails SENT", |r| {
            all(r, ReportDeliveryStatus::Sent)
        })
        .await;
    assert!(rows.iter().all(|r| r.requested_by == "api:operator"));
    // Asking again sends nothing: one email per recipient and month.
    let again = api
        .send_report(authed(send("2021-05"), Some(&operator)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.queued, 0);
    assert!(
        again
            .deliveries
            .iter()
            .all(|d| d.status == pb::ReportDeliveryStatus::Sent as i32)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = s.smtp.received();
    assert_eq!(recipients_of(&received), RECIPIENTS.to_vec());
    for row in &rows {
        let m = received
            .iter()
            .find(|m| m.rcpt_to.contains(&row.recipient))
            .unwrap();
        check_email(m, month, row);
    }
    let queued = s.audit("REPORT_DELIVERY_QUEUED").await;
    assert!(queued.iter().all(|(actor, _)| actor == "api:operator"));
    assert_eq!(queued.len(), 2);

    // The same through pcnctl's table.
    let out = pcn_tests::pcnctl(&api_server.url, &operator)
        .args(["report", "send", "2021-05", "--reason", "check"])
        .output()
        .await
        .expect("run pcnctl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("RECIPIENT") && text.contains("SENT"),
        "{text}"
    );

    // A viewer reads the same emails, and reading changes nothing.
    let listed = api
        .list_report_deliveries(list("2021-05"))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(
        listed
            .iter()
            .map(|d| d.recipient.as_str())
            .collect::<Vec<_>>(),
        RECIPIENTS.to_vec()
    );
    assert!(
        listed
            .iter()
            .all(|d| d.status == pb::ReportDeliveryStatus::Sent as i32 && d.attempts == 1)
    );
    let json = pcn_tests::pcnctl_json(
        &api_server.url,
        &viewer,
        &["report", "deliveries", "2021-05"],
    )
    .await;
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(json[1]["status"], "SENT", "{json}");
    assert_eq!(s.audit("REPORT_DELIVERY_QUEUED").await.len(), 2);
}
