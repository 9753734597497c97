//! One function per command group: build the request, make the call, print the response.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use pcn_proto::v1::{
    CancelNotificationRequest, ExportReportRequest, GetCustomerRequest, GetMonthRequest,
    GetReportRequest, ListAuditEntriesRequest, ListNotificationsRequest, ListQualificationsRequest,
    ListReportDeliveriesRequest, MonthActionRequest, ReportFormat, RetryNotificationRequest,
    SendReportRequest, SetOptOutRequest, StartMonthRequest,
};
use serde_json::json;
use tonic::Status;

use crate::api::Api;
use crate::args::{
    AuditCommand, Cli, Command, CustomerCommand, ExportFormat, MonthAction, MonthCommand,
    NotificationsCommand, Paging, QualificationsCommand, ReportCommand,
};
use crate::output::{self, Format};
use crate::{import, json, render, watch};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let api = Api::new(
        &cli.global.address,
        cli.global.token.as_ref(),
        Duration::from_secs(cli.global.timeout),
        cli.global.ca.as_deref(),
    )?;
    let format = if cli.global.json {
        Format::Json
    } else {
        Format::Text
    };
    match cli.command {
        Command::Month(command) => month(&api, format, command).await,
        Command::Qualifications(command) => qualifications(&api, format, command).await,
        Command::Customer(command) => customer(&api, format, command).await,
        Command::Notifications(command) => notifications(&api, format, command).await,
        Command::Report(command) => report(&api, format, command).await,
        Command::Audit(command) => audit(&api, format, command).await,
    }
}

async fn month(api: &Api, format: Format, command: MonthCommand) -> anyhow::Result<()> {
    match command {
        MonthCommand::Start(arg) => {
            let request = api.request(StartMonthRequest { month: arg.month });
            let r = api.call(api.client().start_month(request)).await?;
            output::print(format, || render::start_month(&r), || json::start_month(&r))?;
        }
        MonthCommand::Get(arg) => {
            let request = api.request(GetMonthRequest { month: arg.month });
            let m = api.call(api.client().get_month(request)).await?;
            output::print(format, || render::month(&m), || json::month(&m))?;
        }
        MonthCommand::Pause(action) => month_action(api, format, "pause", action).await?,
        MonthCommand::Resume(action) => month_action(api, format, "resume", action).await?,
        MonthCommand::Cancel(action) => month_action(api, format, "cancel", action).await?,
        MonthCommand::Watch {
            month,
            interval_secs,
        } => {
            let interval = Duration::from_secs(interval_secs);
            watch::run(api, format, &month.month, interval).await?;
        }
    }
    Ok(())
}

async fn month_action(
    api: &Api,
    format: Format,
    action: &str,
    args: MonthAction,
) -> anyhow::Result<()> {
    let request = api.request(MonthActionRequest {
        month: args.month,
        reason: args.reason,
    });
    let mut client = api.client();
    let r = match action {
        "pause" => api.call(client.pause_month(request)).await?,
        "resume" => api.call(client.resume_month(request)).await?,
        _ => api.call(client.cancel_month(request)).await?,
    };
    output::print(
        format,
        || render::month_action(action, &r),
        || json::month_action(&r),
    )?;
    Ok(())
}

/// Reads one page, or with `--all` every page from `--page-token` on, and returns the items and
/// the token of the page after them (empty at the end).
async fn pages<T, F, Fut>(paging: &Paging, mut page: F) -> anyhow::Result<(Vec<T>, String)>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut token = paging.page_token.clone();
    loop {
        let (mut batch, next) = page(token.clone()).await?;
        items.append(&mut batch);
        if !paging.all || next.is_empty() {
            return Ok((items, next));
        }
        if next == token {
            bail!("the server returned page token {next:?} twice; stopping");
        }
        token = next;
    }
}

async fn qualifications(
    api: &Api,
    format: Format,
    command: QualificationsCommand,
) -> anyhow::Result<()> {
    let QualificationsCommand::List {
        month,
        qualified,
        reason,
        paging,
    } = command;
    let (items, next) = pages(&paging, |page_token| {
        let request = api.request(ListQualificationsRequest {
            month: month.clone(),
            qualified,
            reason: reason.map_or(0, |r| r as i32),
            page_size: paging.page_size,
            page_token,
        });
        async move {
            let r = api.call(api.client().list_qualifications(request)).await?;
            Ok((r.qualifications, r.next_page_token))
        }
    })
    .await?;
    output::print(
        format,
        || render::qualifications(&items, &next),
        || json::qualifications(&items, &next),
    )?;
    Ok(())
}

async fn customer(api: &Api, format: Format, command: CustomerCommand) -> anyhow::Result<()> {
    match command {
        CustomerCommand::Get { customer_id, month } => {
            let request = api.request(GetCustomerRequest { customer_id, month });
            let r = api.call(api.client().get_customer(request)).await?;
            output::print(
                format,
                || render::customer_details(&r),
                || json::customer_details(&r),
            )?;
        }
        CustomerCommand::Import { file } => import::run(api, format, &file).await?,
        CustomerCommand::OptOut(args) => {
            set_opt_out(api, format, args.customer_id, true, args.reason).await?;
        }
        CustomerCommand::OptIn(args) => {
            set_opt_out(api, format, args.customer_id, false, args.reason).await?;
        }
    }
    Ok(())
}

async fn set_opt_out(
    api: &Api,
    format: Format,
    customer_id: String,
    opted_out: bool,
    reason: String,
) -> anyhow::Result<()> {
    let request = api.request(SetOptOutRequest {
        customer_id,
        opted_out,
        reason,
    });
    let c = api.call(api.client().set_opt_out(request)).await?;
    output::print(format, || render::customer(&c), || json::customer(&c))?;
    Ok(())
}

/// A request id unlikely to repeat: milliseconds since the epoch and the process id.
fn fresh_request_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("pcnctl-{millis}-{}", std::process::id())
}

async fn notifications(
    api: &Api,
    format: Format,
    command: NotificationsCommand,
) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List {
            month,
            status,
            paging,
        } => {
            let (items, next) = pages(&paging, |page_token| {
                let request = api.request(ListNotificationsRequest {
                    month: month.clone(),
                    status: status.map_or(0, |s| s as i32),
                    page_size: paging.page_size,
                    page_token,
                });
                async move {
                    let r = api.call(api.client().list_notifications(request)).await?;
                    Ok((r.notifications, r.next_page_token))
                }
            })
            .await?;
            output::print(
                format,
                || render::notifications(&items, &next),
                || json::notifications(&items, &next),
            )?;
        }
        NotificationsCommand::Retry {
            month,
            customer_id,
            request_id,
            reason,
        } => {
            let request_id = request_id.unwrap_or_else(|| {
                let id = fresh_request_id();
                // Before the call: if it times out, the same id repeats it safely.
                eprintln!("request id: {id} (repeat with --request-id {id})");
                id
            });
            let request = api.request(RetryNotificationRequest {
                month,
                customer_id,
                request_id: request_id.clone(),
                reason,
            });
            let r = api.call(api.client().retry_notification(request)).await?;
            output::print(
                format,
                || render::retry(&request_id, &r),
                || json::retry(&r),
            )?;
        }
        NotificationsCommand::Cancel {
            month,
            customer_id,
            reason,
        } => {
            let request = api.request(CancelNotificationRequest {
                month,
                customer_id,
                reason,
            });
            let n = api.call(api.client().cancel_notification(request)).await?;
            output::print(
                format,
                || render::notification(&n),
                || json::notification(&n),
            )?;
        }
    }
    Ok(())
}

async fn report(api: &Api, format: Format, command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Show(arg) => {
            let request = api.request(GetReportRequest { month: arg.month });
            let r = api.call(api.client().get_report(request)).await?;
            output::print(format, || render::report(&r), || json::report(&r))?;
        }
        ReportCommand::Send {
            month,
            resend_in_doubt,
            reason,
        } => {
            let request = api.request(SendReportRequest {
                month,
                resend_in_doubt,
                reason,
            });
            let r = api.call(api.client().send_report(request)).await?;
            output::print(format, || render::send_report(&r), || json::send_report(&r))?;
        }
        ReportCommand::Deliveries(arg) => {
            let request = api.request(ListReportDeliveriesRequest { month: arg.month });
            let r = api
                .call(api.client().list_report_deliveries(request))
                .await?;
            output::print(
                format,
                || render::report_deliveries(&r.deliveries),
                || json::report_deliveries(&r.deliveries),
            )?;
        }
        ReportCommand::Export {
            month,
            format: file_format,
            output: path,
        } => {
            let request = api.request(ExportReportRequest {
                month: month.clone(),
                format: ReportFormat::from(file_format) as i32,
            });
            let r = api.call(api.client().export_report(request)).await?;
            if path.as_deref() == Some(Path::new("-")) {
                output::write(&r.content)?;
                return Ok(());
            }
            let path = path.unwrap_or_else(|| default_file_name(&r.filename, &month, file_format));
            std::fs::write(&path, &r.content)
                .with_context(|| format!("writing {}", path.display()))?;
            output::print(
                format,
                || {
                    format!(
                        "wrote {} ({} bytes, {})\n",
                        path.display(),
                        r.content.len(),
                        r.content_type
                    )
                },
                || {
                    json!({
                        "filename": r.filename,
                        "content_type": r.content_type,
                        "bytes": r.content.len(),
                        "path": path.display().to_string(),
                    })
                },
            )?;
        }
    }
    Ok(())
}

/// The server's file name, reduced to a bare name in the current directory (never a path the
/// server chose), or `pcn-report-<month>.<ext>` if it gave none.
fn default_file_name(suggested: &str, month: &str, format: ExportFormat) -> PathBuf {
    match Path::new(suggested).file_name() {
        Some(name) if !name.is_empty() => PathBuf::from(name),
        _ => {
            let ext = match format {
                ExportFormat::Csv => "csv",
                ExportFormat::Xlsx => "xlsx",
                ExportFormat::Html => "html",
                ExportFormat::Pdf => "pdf",
            };
            PathBuf::from(format!("pcn-report-{month}.{ext}"))
        }
    }
}

async fn audit(api: &Api, format: Format, command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        subject_type,
        subject_id,
        actor,
        action,
        paging,
    } = command;
    let (items, next) = pages(&paging, |page_token| {
        let request = api.request(ListAuditEntriesRequest {
            subject_type: subject_type.clone(),
            subject_id: subject_id.clone(),
            actor: actor.clone(),
            action: action.clone(),
            page_size: paging.page_size,
            page_token,
        });
        async move {
            let r = api.call(api.client().list_audit_entries(request)).await?;
            Ok((r.entries, r.next_page_token))
        }
    })
    .await?;
    output::print(
        format,
        || render::audit_entries(&items, &next),
        || json::audit_entries(&items, &next),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_file_name_never_leaves_the_current_directory() {
        assert_eq!(
            default_file_name(
                "../../etc/pcn-report-2026-10.xlsx",
                "2026-10",
                ExportFormat::Xlsx
            ),
            PathBuf::from("pcn-report-2026-10.xlsx")
        );
        assert_eq!(
            default_file_name("", "2026-10", ExportFormat::Html),
            PathBuf::from("pcn-report-2026-10.html")
        );
    }

    #[test]
    fn a_fresh_request_id_uses_only_allowed_characters() {
        let id = fresh_request_id();
        assert!(id.len() <= 64);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
        );
    }
}
