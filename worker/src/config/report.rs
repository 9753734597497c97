//! `ReportArgs`: the monthly report by email (recipients, SMTP server, retries).

use super::*;

/// The monthly report by email: who gets it, and the SMTP server it goes through.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Addresses the monthly report is mailed to when a month completes (and on demand through
    /// `SendReport`), comma-separated. Empty: the report is not mailed.
    #[arg(long, env = "PCN_REPORT_RECIPIENTS", default_value = "")]
    pub report_recipients: String,
    /// The sender (`From`) of the report emails; its domain also names their Message-IDs.
    #[arg(
        long,
        env = "PCN_REPORT_FROM",
        default_value = "PCN reports <pcn-reports@localhost>"
    )]
    pub report_from: String,
    /// The SMTP server: `smtp://host:25` (plain: local relays and tests), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://host:465` (TLS).
    #[arg(long, env = "PCN_SMTP_URL", default_value = "smtp://127.0.0.1:25")]
    pub smtp_url: String,
    /// SMTP user name (with `PCN_SMTP_PASSWORD`); unset: no authentication.
    #[arg(long, env = "PCN_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password (never printed).
    #[arg(long, env = "PCN_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// File holding the SMTP password (instead of `PCN_SMTP_PASSWORD`).
    #[arg(long, env = "PCN_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// First wait after a failed SMTP attempt, seconds (doubles per attempt, at most an hour).
    #[arg(long, env = "PCN_REPORT_RETRY_SECS", default_value_t = 30)]
    pub report_retry_secs: u64,
    /// How often the mailer looks for due emails, milliseconds.
    #[arg(long, env = "PCN_REPORT_POLL_MS", default_value_t = 5_000)]
    pub report_poll_ms: u64,
    /// How long an email may stay SENDING before it is taken as left by a stopped mailer (IN_DOUBT,
    /// never sent again by itself), seconds. Keep it above the SMTP timeout (60 s) when several
    /// workers run.
    #[arg(long, env = "PCN_REPORT_SENDING_GRACE_SECS", default_value_t = 300)]
    pub report_sending_grace_secs: u64,
}

impl ReportArgs {
    /// The recipients, each a valid address (an invalid one is refused with its position).
    pub fn recipients(&self) -> Result<Vec<String>, DomainError> {
        parse_recipients(&self.report_recipients)
    }

    /// The validated mailer settings.
    pub fn parse(&self) -> Result<crate::report::mail::MailSettings, DomainError> {
        let recipients = self.recipients()?;
        let from: lettre::message::Mailbox = self.report_from.trim().parse().map_err(|_| {
            DomainError::new(
                "report_from",
                "expected an address, e.g. PCN <pcn@bank.example>",
            )
        })?;
        let url = Url::parse(self.smtp_url.trim()).map_err(|_| {
            DomainError::new("smtp_url", "expected smtp://host:port or smtps://host:port")
        })?;
        if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
            return Err(DomainError::new(
                "smtp_url",
                "expected smtp://host:port or smtps://host:port",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DomainError::new(
                "smtp_url",
                "must not hold credentials: use PCN_SMTP_USERNAME and PCN_SMTP_PASSWORD",
            ));
        }
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v);
        if tls.is_some_and(|tls| !matches!(tls.as_ref(), "required" | "opportunistic")) {
            return Err(DomainError::new(
                "smtp_url",
                "tls= must be required or opportunistic",
            ));
        }
        // Optional (no authentication when unset), so no development value: any profile.
        let password = match (&self.smtp_password, &self.smtp_password_file) {
            (None, None) => None,
            (value, file) => Some(secret(
                "smtp_password",
                "PCN_SMTP_PASSWORD",
                value.as_deref(),
                file.as_deref(),
                "",
                Profile::Development,
            )?),
        };
        let credentials = match (&self.smtp_username, &password) {
            (None, None) => None,
            (Some(user), Some(password)) if !user.is_empty() => {
                Some((user.clone(), Secret::new(password.clone())))
            }
            _ => {
                return Err(DomainError::new(
                    "smtp_username",
                    "needs smtp_password (both or neither)",
                ));
            }
        };
        in_range("report_retry_secs", self.report_retry_secs, 1..=3_600)?;
        in_range("report_poll_ms", self.report_poll_ms, 50..=600_000)?;
        in_range(
            "report_sending_grace_secs",
            self.report_sending_grace_secs,
            1..=86_400,
        )?;
        Ok(crate::report::mail::MailSettings {
            recipients,
            from,
            smtp_url: url.to_string(),
            credentials,
            retry_first: Duration::from_secs(self.report_retry_secs),
            retry_max: Duration::from_secs(3_600),
            poll_every: Duration::from_millis(self.report_poll_ms),
            sending_grace: Duration::from_secs(self.report_sending_grace_secs),
        })
    }
}

/// Comma-separated e-mail addresses, each parsed (duplicates dropped, order kept).
pub fn parse_recipients(spec: &str) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in spec.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let address: lettre::Address = item.parse().map_err(|_| {
            DomainError::new(
                "report_recipients",
                format!("entry {} is not an e-mail address", i + 1),
            )
        })?;
        let address = address.to_string();
        if !out.contains(&address) {
            out.push(address);
        }
    }
    Ok(out)
}
