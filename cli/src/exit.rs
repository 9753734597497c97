//! Exit codes, and how an error becomes one and a line on stderr.
//!
//! Scripts branch on the exit code, so each gRPC code maps to the action a caller would take:
//! fix the credentials (3), the name (4), the arguments (5), the state (6), or wait and try again
//! (7).

use std::fmt;

use tonic::{Code, Status};

/// Success.
pub const OK: u8 = 0;
/// Any other error (INTERNAL, UNKNOWN, an unreadable file, ...).
pub const FAILURE: u8 = 1;
/// Bad command line; clap exits with it on its own.
pub const USAGE: u8 = 2;
/// UNAUTHENTICATED or PERMISSION_DENIED: fix the token or its role.
pub const AUTH: u8 = 3;
/// NOT_FOUND.
pub const NOT_FOUND: u8 = 4;
/// INVALID_ARGUMENT or OUT_OF_RANGE (or an input file pcnctl cannot read as CSV).
pub const INVALID: u8 = 5;
/// FAILED_PRECONDITION, ALREADY_EXISTS or ABORTED: the state does not allow the request.
pub const REFUSED: u8 = 6;
/// UNAVAILABLE or DEADLINE_EXCEEDED: try again later.
pub const RETRY_LATER: u8 = 7;
/// `month watch` saw the month end CANCELLED or FAILED, or stop BLOCKED.
pub const MONTH_NOT_COMPLETED: u8 = 8;

/// The exit codes as `pcnctl --help` lists them; a test checks every constant appears.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  ok
  1  other error
  2  usage error
  3  UNAUTHENTICATED or PERMISSION_DENIED
  4  NOT_FOUND
  5  INVALID_ARGUMENT or OUT_OF_RANGE (or an unusable input file)
  6  FAILED_PRECONDITION, ALREADY_EXISTS or ABORTED
  7  UNAVAILABLE or DEADLINE_EXCEEDED (try again later)
  8  month watch: the month ended CANCELLED or FAILED, or is BLOCKED

Errors are printed to stderr as `error: <grpc code>: <server message>`.";

/// `month watch` stopped because the month will not complete on its own.
#[derive(Debug)]
pub struct MonthNotCompleted {
    /// "YYYY-MM".
    pub month: String,
    /// Phase name without prefix: CANCELLED, FAILED or BLOCKED.
    pub phase: String,
    /// Why it is blocked (empty otherwise).
    pub reason: String,
}

impl fmt::Display for MonthNotCompleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.phase == "BLOCKED" {
            write!(f, "month {} is BLOCKED: {}", self.month, self.reason)?;
            write!(f, " (resume it with `pcnctl month resume {}`)", self.month)
        } else {
            write!(f, "month {} ended {}", self.month, self.phase)
        }
    }
}

impl std::error::Error for MonthNotCompleted {}

/// Input pcnctl refuses before calling the server (e.g. a CSV file without a required column).
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// The exit code of a gRPC status code.
pub fn for_code(code: Code) -> u8 {
    match code {
        Code::Ok => OK,
        Code::Unauthenticated | Code::PermissionDenied => AUTH,
        Code::NotFound => NOT_FOUND,
        Code::InvalidArgument | Code::OutOfRange => INVALID,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => REFUSED,
        Code::Unavailable | Code::DeadlineExceeded => RETRY_LATER,
        Code::Cancelled
        | Code::Unknown
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => FAILURE,
    }
}

/// The exit code of an error returned by a command.
pub fn for_error(err: &anyhow::Error) -> u8 {
    if let Some(status) = err.downcast_ref::<Status>() {
        for_code(status.code())
    } else if err.is::<MonthNotCompleted>() {
        MONTH_NOT_COMPLETED
    } else if err.is::<InvalidInput>() {
        INVALID
    } else {
        FAILURE
    }
}

/// The line printed after `error: `: `<GRPC_CODE>: <server message>` for a gRPC error, the cause
/// chain otherwise.
pub fn describe(err: &anyhow::Error) -> String {
    match err.downcast_ref::<Status>() {
        Some(status) => format!("{}: {}", code_name(status.code()), status.message()),
        None => format!("{err:#}"),
    }
}

/// The canonical gRPC name of a code (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_grpc_code_maps_to_the_documented_exit_code() {
        let cases = [
            (Code::Unauthenticated, 3),
            (Code::PermissionDenied, 3),
            (Code::NotFound, 4),
            (Code::InvalidArgument, 5),
            (Code::OutOfRange, 5),
            (Code::FailedPrecondition, 6),
            (Code::AlreadyExists, 6),
            (Code::Aborted, 6),
            (Code::Unavailable, 7),
            (Code::DeadlineExceeded, 7),
            (Code::Internal, 1),
            (Code::Unknown, 1),
            (Code::Cancelled, 1),
        ];
        for (code, exit) in cases {
            assert_eq!(for_code(code), exit, "{code:?}");
        }
    }

    #[test]
    fn a_status_inside_anyhow_keeps_its_exit_code_and_prints_code_and_message() {
        let err = anyhow::Error::new(Status::not_found("month 2026-10 has no run"));
        assert_eq!(for_error(&err), NOT_FOUND);
        assert_eq!(describe(&err), "NOT_FOUND: month 2026-10 has no run");
    }

    #[test]
    fn a_blocked_month_exits_8_and_names_the_reason() {
        let err = anyhow::Error::new(MonthNotCompleted {
            month: "2026-10".into(),
            phase: "BLOCKED".into(),
            reason: "bank answered 401".into(),
        });
        assert_eq!(for_error(&err), MONTH_NOT_COMPLETED);
        assert!(describe(&err).contains("bank answered 401"));
    }

    #[test]
    fn other_errors_exit_1_and_invalid_input_exits_5() {
        assert_eq!(for_error(&anyhow::anyhow!("disk full")), FAILURE);
        let err = anyhow::Error::new(InvalidInput("missing column phone".into()));
        assert_eq!(for_error(&err), INVALID);
    }

    #[test]
    fn the_help_text_lists_every_exit_code() {
        for code in [
            OK,
            FAILURE,
            USAGE,
            AUTH,
            NOT_FOUND,
            INVALID,
            REFUSED,
            RETRY_LATER,
            MONTH_NOT_COMPLETED,
        ] {
            assert!(AFTER_HELP.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
