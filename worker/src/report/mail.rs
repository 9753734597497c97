//! The monthly report by email: the mailer task of `pcn-worker run`.
//!
//! Every `poll_every` it
//!
//! 1. turns rows left SENDING longer than the grace period into IN_DOUBT — a mailer stopped
//!    between the claim and the record, so the email may have gone: an ERROR line and an audit
//!    entry say so, and nothing sends it again unless an operator asks (`SendReport` with
//!    `resend_in_doubt`);
//! 2. claims the due rows one at a time (`report_deliveries::claim_due`: SENDING before any SMTP
//!    traffic, and only the row being sent);
//! 3. builds each month's report once per round (the same report, HTML, XLSX and PDF as the
//!    control API's exports) and sends one email per row over SMTP (`lettre`);
//! 4. records the outcome: the server's 250 → SENT; a refusal (4xx/5xx) or a server that could not
//!    be reached → FAILED, retried after a backoff (`PCN_REPORT_RETRY_SECS`, doubling, at most an
//!    hour); a connection that broke after the message may have been transmitted → IN_DOUBT.
//!
//! The month workflow only inserts the outbox rows (`QueueReport`), so a failing SMTP server
//! never blocks or fails a month. Recipients are bank staff; the email holds the report's figures
//! and no customer data.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pcn_activities::bank::Secret;
use pcn_activities::failpoint;
use pcn_activities::report_deliveries::{self as outbox, ReportDelivery};
use pcn_workflows::domain::YearMonth;
use sqlx::PgPool;

use super::MonthlyReport;

/// Actor of the mailer's audit entries.
const ACTOR: &str = "mailer";

/// Emails sent at most per round (the next round goes on).
const ROUND_LIMIT: usize = 100;

/// What the mailer needs (`PCN_REPORT_*`, `PCN_SMTP_*`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Who gets the report (parsed addresses).
    pub recipients: Vec<String>,
    /// The sender.
    pub from: Mailbox,
    /// `smtp://host:port[?tls=required]` or `smtps://host:port`, without credentials.
    pub smtp_url: String,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, Secret)>,
    /// First wait after a failed attempt.
    pub retry_first: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// How often the outbox is read.
    pub poll_every: Duration,
    /// How long a row may stay SENDING before it is taken as abandoned (IN_DOUBT).
    pub sending_grace: Duration,
}

/// The outcome of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    /// The server answered 250.
    Accepted,
    /// The server refused it or could not be reached: nothing was accepted.
    Refused(String),
    /// The connection broke when the message may have been transmitted.
    InDoubt(String),
}

/// What one round did (for logs and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Rows found abandoned and put in doubt.
    pub in_doubt_stale: usize,
    /// Rows claimed.
    pub claimed: usize,
    /// Emails the server accepted.
    pub sent: usize,
    /// Emails refused (retried later).
    pub failed: usize,
    /// Emails whose outcome is unknown.
    pub in_doubt: usize,
}

/// The mailer: the SMTP transport and the outbox.
pub struct Mailer {
    pool: PgPool,
    settings: MailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    /// A mailer on `pool` (fails on an SMTP URL lettre cannot use).
    pub fn new(pool: PgPool, settings: MailSettings) -> anyhow::Result<Self> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .context("PCN_SMTP_URL")?
            .timeout(Some(Duration::from_secs(60)));
        if let Some((user, password)) = &settings.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            pool,
            settings,
            transport: builder.build(),
        })
    }

    /// Runs rounds forever, every `poll_every`; a failed round is logged and the next one tries
    /// again.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.settings.poll_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = self.round().await {
                    tracing::warn!(error = format!("{err:#}"), "report mailer round failed");
                }
            }
        })
    }

    /// One round: abandoned rows into doubt, then the due rows sent.
    pub async fn round(&self) -> anyhow::Result<Round> {
        let mut round = Round::default();
        let stale =
            outbox::mark_in_doubt_stale(&self.pool, self.settings.sending_grace, ACTOR).await?;
        for d in &stale {
            tracing::error!(
                month = %d.month,
                delivery = d.id,
                message_id = d.message_id.as_deref().unwrap_or(""),
                "report email IN DOUBT: a mailer stopped between sending and recording it; it may \
                 have been delivered and is not sent again by itself (resend explicitly: pcnctl \
                 report send {} --resend-in-doubt --reason …)",
                d.month
            );
        }
        round.in_doubt_stale = stale.len();
        // One row at a time: only the email whose SMTP transaction is about to run is SENDING, so
        // a crash leaves at most that one in doubt; the others stay PENDING.
        let mut current: Option<(YearMonth, anyhow::Result<Rendered>)> = None;
        for _ in 0..ROUND_LIMIT {
            let Some(d) = outbox::claim_due(&self.pool, 1, self.message_domain())
                .await?
                .pop()
            else {
                break;
            };
            let d = &d;
            round.claimed += 1;
            if current.as_ref().map(|(m, _)| *m) != Some(d.month) {
                current = Some((d.month, self.render(d.month).await));
            }
            let outcome = match current.as_ref().map(|(_, r)| r) {
                Some(Ok(rendered)) => self.send(d, rendered).await,
                Some(Err(err)) => Sent::Refused(format!("building the report: {err:#}")),
                None => Sent::Refused("no report".to_owned()),
            };
            match outcome {
                Sent::Accepted => {
                    outbox::mark_sent(&self.pool, d, ACTOR).await?;
                    tracing::info!(month = %d.month, delivery = d.id, "report email sent");
                    round.sent += 1;
                }
                Sent::Refused(why) => {
                    let wait = outbox::backoff(
                        d.attempts,
                        self.settings.retry_first,
                        self.settings.retry_max,
                    );
                    let next = Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                    outbox::mark_failed(&self.pool, d, next, &why).await?;
                    tracing::warn!(
                        month = %d.month,
                        delivery = d.id,
                        attempt = d.attempts,
                        retry_in_secs = wait.as_secs(),
                        error = %why,
                        "report email not sent; retried later"
                    );
                    round.failed += 1;
                }
                Sent::InDoubt(why) => {
                    outbox::mark_in_doubt(&self.pool, d, &why, ACTOR).await?;
                    tracing::error!(
                        month = %d.month,
                        delivery = d.id,
                        error = %why,
                        "report email IN DOUBT: the connection broke when it may have been \
                         transmitted; not sent again by itself"
                    );
                    round.in_doubt += 1;
                }
            }
        }
        Ok(round)
    }

    fn message_domain(&self) -> &str {
        self.settings.from.email.domain()
    }

    /// The month's report and its files, built once for all its recipients.
    async fn render(&self, month: YearMonth) -> anyhow::Result<Rendered> {
        let report = super::build(&self.pool, month)
            .await?
            .ok_or_else(|| anyhow::anyhow!("month {month} has no data to report"))?;
        Rendered::of(&report)
    }

    /// Sends one row's email; the crash points sit on both sides of the SMTP transaction.
    async fn send(&self, d: &ReportDelivery, rendered: &Rendered) -> Sent {
        let message = match self.message(d, rendered) {
            Ok(m) => m,
            Err(err) => return Sent::Refused(format!("building the email: {err:#}")),
        };
        failpoint::hit(failpoint::REPORT_BEFORE_SEND);
        let result = self.transport.send(message).await;
        match result {
            Ok(_) => {
                failpoint::hit(failpoint::REPORT_AFTER_SEND);
                Sent::Accepted
            }
            Err(err) => classify(&err),
        }
    }

    fn message(&self, d: &ReportDelivery, r: &Rendered) -> anyhow::Result<Message> {
        let month = d.month;
        let to: Mailbox = d
            .recipient
            .parse()
            .with_context(|| format!("recipient of delivery {}", d.id))?;
        let xlsx_type = ContentType::parse(XLSX_TYPE).context("XLSX content type")?;
        let pdf_type = ContentType::parse("application/pdf").context("PDF content type")?;
        Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(subject(month))
            .message_id(d.message_id.clone())
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(
                        r.text.clone(),
                        r.html.clone(),
                    ))
                    .singlepart(
                        Attachment::new(format!("pcn-report-{month}.xlsx"))
                            .body(r.xlsx.clone(), xlsx_type),
                    )
                    .singlepart(
                        Attachment::new(format!("pcn-report-{month}.pdf"))
                            .body(r.pdf.clone(), pdf_type),
                    ),
            )
            .context("building the email")
    }
}

/// The XLSX media type.
const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The subject of a month's report email.
pub fn subject(month: YearMonth) -> String {
    format!("PCN monthly report {month}")
}

/// A month's report, rendered for the email.
struct Rendered {
    text: String,
    html: String,
    xlsx: Vec<u8>,
    pdf: Vec<u8>,
}

impl Rendered {
    fn of(report: &MonthlyReport) -> anyhow::Result<Self> {
        let s = &report.summary;
        let text = format!(
            "Monthly report of the premium customer notifications, {}.\n\n\
             Customers monitored: {}\nQualified: {} ({}%)\nNotifications: {}\n\
             Delivered: {} ({}% of submitted)\n\n\
             The report with its charts is in this email (HTML) and attached as XLSX and PDF.\n",
            report.month,
            s.customers_monitored,
            s.qualified,
            s.qualification_rate,
            s.notifications,
            s.delivered,
            s.delivery_rate,
        );
        Ok(Self {
            text,
            html: super::export::html(report),
            xlsx: super::export::xlsx(report)?,
            pdf: super::export::pdf(report),
        })
    }
}

/// Which failures certainly left nothing with the server, and which may have.
fn classify(err: &lettre::transport::smtp::Error) -> Sent {
    let text = err.to_string();
    // A negative reply (4xx/5xx): the server did not take the message.
    if err.is_transient() || err.is_permanent() {
        return Sent::Refused(text);
    }
    // No session: the connection (or its TLS) was never established, or the message could not be
    // formed; nothing was transmitted.
    let connecting = format!("{err:?}").contains("kind: Connection");
    if connecting || err.is_tls() || err.is_client() {
        return Sent::Refused(text);
    }
    // A broken connection or an unreadable answer inside the session: the final "." may have been
    // transmitted and accepted.
    Sent::InDoubt(format!("SMTP session broke: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_month() {
        let month = YearMonth::parse("2026-11").unwrap();
        assert_eq!(subject(month), "PCN monthly report 2026-11");
    }

    #[test]
    fn the_email_holds_the_html_and_both_attachments() {
        let report = super::super::tests::sample();
        let rendered = Rendered::of(&report).unwrap();
        assert!(rendered.pdf.starts_with(b"%PDF-"));
        assert!(rendered.html.contains("<svg"));
        assert!(rendered.text.contains("Qualified: 900"));
    }
}
