//! The command line (clap derive): global connection flags and one subcommand per RPC.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pcn_proto::v1::{NotificationStatus, QualificationReason, ReportFormat};

use crate::enums;
use crate::exit::AFTER_HELP;

/// Operate the Premium Customer Notification System through its control API (gRPC).
#[derive(Debug, Parser)]
#[command(name = "pcnctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Connection and output flags (accepted before or after the subcommand).
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Address of the control API (`pcn-worker api`); plaintext HTTP/2.
    #[arg(
        long,
        env = "PCN_API_ADDRESS",
        default_value = "http://127.0.0.1:50051",
        value_parser = clap::builder::NonEmptyStringValueParser::new(),
        global = true
    )]
    pub address: String,
    /// API token, sent as `authorization: Bearer <token>`; its role decides what is allowed.
    #[arg(long, env = "PCN_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<Token>,
    /// PEM file of the certificate authority that signed the API's certificate: `https://`
    /// addresses are verified against it (required for them).
    #[arg(long, env = "PCN_API_CA", global = true)]
    pub ca: Option<std::path::PathBuf>,
    /// Print the response as JSON (field names as in control.proto, enums without their prefix)
    /// instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for each call (an import is one call).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        global = true
    )]
    pub timeout: u64,
}

/// An API token; its `Debug` never shows the value.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The secret, for the authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_owned()))
    }
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, follow, pause, resume or cancel a month's run.
    #[command(subcommand)]
    Month(MonthCommand),
    /// List a month's qualification decisions.
    #[command(subcommand)]
    Qualifications(QualificationsCommand),
    /// Look up, import or opt out customers.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// List, retry or cancel a month's notifications.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// Show or export the monthly report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `pcnctl month ...`.
#[derive(Debug, Subcommand)]
pub enum MonthCommand {
    /// Start a month's run; a past month is backfilled at once (needs OPERATOR).
    Start(MonthArg),
    /// Show a month's phase, progress and counts.
    Get(MonthArg),
    /// Hold the month before its next day; a running sweep finishes (needs OPERATOR).
    Pause(MonthAction),
    /// Resume a paused or blocked month (needs OPERATOR).
    Resume(MonthAction),
    /// Cancel a running month; decisions and notifications made so far stay (needs OPERATOR).
    Cancel(MonthAction),
    /// Follow a month until it ends: exit 0 when COMPLETED, 8 when CANCELLED, FAILED or BLOCKED.
    ///
    /// On a terminal, a progress bar shows the days swept while MONITORING, then the final
    /// notifications while NOTIFYING; otherwise (or with --json) one line is printed per change.
    /// UNAVAILABLE or DEADLINE_EXCEEDED while polling is retried up to 10 times in a row.
    Watch {
        /// The month.
        #[command(flatten)]
        month: MonthArg,
        /// Seconds between two polls.
        #[arg(long, value_name = "SECS", default_value_t = 2,
              value_parser = clap::value_parser!(u64).range(1..=3_600))]
        interval_secs: u64,
    },
}

/// A month argument.
#[derive(Debug, Args)]
pub struct MonthArg {
    /// The month.
    #[arg(value_name = "YYYY-MM")]
    pub month: String,
}

/// A month and why something is done to it.
#[derive(Debug, Args)]
pub struct MonthAction {
    /// The month.
    #[arg(value_name = "YYYY-MM")]
    pub month: String,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reason: String,
}

/// Paging flags of the list commands.
#[derive(Debug, Args)]
pub struct Paging {
    /// Rows per page, 1..1000 (the server's default when omitted: 100).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub page_size: u32,
    /// Start at this page (the `next page` token a previous listing printed).
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "",
        hide_default_value = true
    )]
    pub page_token: String,
    /// Follow the pages to the end and print them as one listing.
    #[arg(long)]
    pub all: bool,
}

/// `pcnctl qualifications ...`.
#[derive(Debug, Subcommand)]
pub enum QualificationsCommand {
    /// A month's decisions, by customer id.
    List {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// Only qualified (true) or only not qualified (false) customers.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        qualified: Option<bool>,
        /// Only this reason.
        #[arg(long, ignore_case = true, value_parser = enums::parser::<QualificationReason>())]
        reason: Option<QualificationReason>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
}

/// `pcnctl customer ...`.
#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// A customer's masked profile, daily checks of a month, decisions and notifications.
    Get {
        /// Customer id.
        #[arg(value_name = "ID")]
        customer_id: String,
        /// Month of the daily checks (default: the latest month with checks).
        #[arg(
            long,
            value_name = "YYYY-MM",
            default_value = "",
            hide_default_value = true
        )]
        month: String,
    },
    /// Insert or update customers from a CSV file (needs ADMIN).
    ///
    /// The header names the columns, in any order (quoted fields allowed):
    ///
    ///   customer_id,account_id,first_name,phone,language,monitored_since[,opted_out][,active]
    ///
    /// The rows are streamed as they are read and validated by the server: each bad row is
    /// reported as `line N (customer X): field: message` and not imported; the good rows are.
    Import {
        /// The CSV file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Stop sending SMS to a customer (needs ADMIN).
    OptOut(OptOutArgs),
    /// Send SMS to an opted-out customer again (needs ADMIN).
    OptIn(OptOutArgs),
}

/// A customer and why their opt-out changes.
#[derive(Debug, Args)]
pub struct OptOutArgs {
    /// Customer id.
    #[arg(value_name = "ID")]
    pub customer_id: String,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reason: String,
}

/// `pcnctl notifications ...`.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// A month's notifications, by customer id.
    List {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// Only this status.
        #[arg(long, ignore_case = true, value_parser = enums::parser::<NotificationStatus>())]
        status: Option<NotificationStatus>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
    /// One more attempt of a FAILED or UNDELIVERABLE notification (needs OPERATOR).
    ///
    /// Idempotent per request id: repeating a request (same --request-id) returns the first
    /// answer and sends nothing. Without --request-id a fresh one is made and printed on stderr
    /// before the call, so a timed-out retry can be repeated safely.
    Retry {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// Customer id.
        #[arg(value_name = "CUSTOMER")]
        customer_id: String,
        /// Idempotency key, 1..64 of [A-Za-z0-9._:-].
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Cancel a notification that is not final yet (needs OPERATOR).
    Cancel {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// Customer id.
        #[arg(value_name = "CUSTOMER")]
        customer_id: String,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
}

/// `pcnctl report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The monthly report, section by section.
    Show(MonthArg),
    /// Mail the monthly report to the configured recipients (the worker's mailer sends it; an
    /// email already sent is not sent again) and show the month's report emails.
    Send {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// Also send again the emails in doubt (the mailer stopped while sending them: they may
        /// have arrived).
        #[arg(long)]
        resend_in_doubt: bool,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// Where the month's report emails stand, by recipient (changes nothing).
    Deliveries(MonthArg),
    /// Save the monthly report as a CSV, XLSX, HTML or PDF file.
    Export {
        /// The month.
        #[arg(value_name = "YYYY-MM")]
        month: String,
        /// File format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Where to write it (default: the file name the server suggests, in the current
        /// directory; `-` for stdout).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Formats of `report export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values.
    Csv,
    /// Excel workbook.
    Xlsx,
    /// A web page with charts.
    Html,
    /// A printable A4 document with the charts.
    Pdf,
}

impl From<ExportFormat> for ReportFormat {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Csv => Self::Csv,
            ExportFormat::Xlsx => Self::Xlsx,
            ExportFormat::Html => Self::Html,
            ExportFormat::Pdf => Self::Pdf,
        }
    }
}

/// `pcnctl audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit entries, newest first.
    List {
        /// Only this subject type (month, customer, notification, ...).
        #[arg(long, default_value = "", hide_default_value = true)]
        subject_type: String,
        /// Only this subject id.
        #[arg(long, default_value = "", hide_default_value = true)]
        subject_id: String,
        /// Only this actor (`api:<token name>`, `workflow:<id>`, `carrier:<name>`, `system`).
        #[arg(long, default_value = "", hide_default_value = true)]
        actor: String,
        /// Only this action.
        #[arg(long, default_value = "", hide_default_value = true)]
        action: String,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn filters_take_enum_names_without_prefix_in_any_case() {
        let cli = Cli::parse_from([
            "pcnctl",
            "notifications",
            "list",
            "2026-10",
            "--status",
            "failed",
            "--json",
        ]);
        assert!(cli.global.json);
        match cli.command {
            Command::Notifications(NotificationsCommand::List { status, .. }) => {
                assert_eq!(status, Some(NotificationStatus::Failed));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "pcnctl",
                "notifications",
                "list",
                "2026-10",
                "--status",
                "X"
            ])
            .is_err()
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let cli = Cli::parse_from(["pcnctl", "--token", "s3cret", "month", "get", "2026-10"]);
        assert!(!format!("{cli:?}").contains("s3cret"));
    }
}
