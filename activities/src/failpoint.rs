//! Named crash points: the process aborts (like `kill -9`, no unwinding, no cleanup) the first
//! time it reaches the point named in `PCN_FAILPOINT`. The crash tests start the real worker with
//! one armed, restart it without, and check that nothing was lost or doubled.
//!
//! The variable is read once, at the first check; unset (production) every check is one load of
//! an initialised `OnceLock`. Points of the SMS submission, in order:
//!
//! | name | where |
//! | --- | --- |
//! | `submit.after_attempt_row` | the attempt row is written, the carrier not yet called |
//! | `submit.after_carrier_accept` | the carrier accepted, its id not yet stored |
//! | `submit.after_id_stored` | the id is stored, the workflow has not recorded the result |
//! | `record.before_audit` | the final state is written (same transaction), its audit entry not |
//!
//! Points of the monthly report's email (the mailer in `pcn-worker run`):
//!
//! | name | where |
//! | --- | --- |
//! | `report.before_send` | the delivery row is SENDING, the SMTP transaction not started |
//! | `report.after_send` | the SMTP server accepted the email (250), the row not yet SENT |
//!
//! Points of `pcn-worker rotate-keys`:
//!
//! | name | where |
//! | --- | --- |
//! | `rotate.after_batch` | a batch of re-sealed numbers is committed, the next not started |

use std::sync::OnceLock;

/// The attempt row is written; the carrier has not been called.
pub const SUBMIT_AFTER_ATTEMPT_ROW: &str = "submit.after_attempt_row";
/// The carrier accepted the message; its id is not stored yet.
pub const SUBMIT_AFTER_CARRIER_ACCEPT: &str = "submit.after_carrier_accept";
/// The carrier id is stored; the workflow has not recorded the submission.
pub const SUBMIT_AFTER_ID_STORED: &str = "submit.after_id_stored";
/// The notification's final state is written (not committed); its audit entry is not.
pub const RECORD_BEFORE_AUDIT: &str = "record.before_audit";

/// The report email's row is SENDING; the SMTP transaction has not started.
pub const REPORT_BEFORE_SEND: &str = "report.before_send";
/// The SMTP server accepted the report email; its row is not SENT yet.
pub const REPORT_AFTER_SEND: &str = "report.after_send";

/// `rotate-keys` committed a batch; the next has not started.
pub const ROTATE_AFTER_BATCH: &str = "rotate.after_batch";

/// Every point, for validation of the variable.
pub const ALL: [&str; 7] = [
    SUBMIT_AFTER_ATTEMPT_ROW,
    SUBMIT_AFTER_CARRIER_ACCEPT,
    SUBMIT_AFTER_ID_STORED,
    RECORD_BEFORE_AUDIT,
    REPORT_BEFORE_SEND,
    REPORT_AFTER_SEND,
    ROTATE_AFTER_BATCH,
];

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var("PCN_FAILPOINT")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .as_deref()
}

/// Checks `PCN_FAILPOINT` at start-up: an unknown name is a typo that would silently test nothing.
pub fn validate() -> anyhow::Result<()> {
    match armed() {
        Some(name) if !ALL.contains(&name) => anyhow::bail!(
            "PCN_FAILPOINT={name:?} names no crash point; known: {}",
            ALL.join(", ")
        ),
        Some(name) => {
            tracing::warn!(
                failpoint = name,
                "crash point armed: this process will abort there"
            );
            Ok(())
        }
        None => Ok(()),
    }
}

/// Aborts the process here when `name` is the armed point.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name}: aborting the process");
        std::process::abort();
    }
}
