//! The fan-out: `StartNotifications` starts one SMS workflow per qualified customer of a page,
//! after creating its notification row, and the options every SMS workflow start uses (the
//! manual retry's too). A second start of a customer-month is refused by the server.

use std::sync::Arc;

use anyhow::Context as _;
use futures::{StreamExt, stream};
use pcn_workflows::contracts::{StartNotificationsInput, StartNotificationsOutput};
use pcn_workflows::sms::{self, NotificationState, SmsInput, SmsNotificationWorkflow};
use pcn_workflows::{search, web_ui};
use sqlx::PgPool;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{Client, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;

use crate::{notifications, qualify};

/// What the fan-out needs.
#[derive(Clone)]
pub struct FanoutDeps {
    /// Temporal client the SMS workflows are started with.
    pub client: Client,
    /// Starts in flight at once (more only adds latency on a small server).
    pub concurrency: usize,
}

/// Workflow task timeout of the SMS workflows: a submission waits in the gateway for its batch
/// (at most `max_wait`, 4 s by default, and as long again for the carrier's rate) and for the
/// carrier's answer inside its workflow task; 30 s keeps that inside the task (the server's
/// default is 10 s).
pub const SMS_TASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Options of the SMS workflow start of `input`: business id, reuse rejected (a second start of
/// the same customer-month — even after the first finished — is refused by the server), search
/// attributes, the Web UI's one-line summary, the task timeout of [`SMS_TASK_TIMEOUT`].
pub fn sms_start_options(task_queue: &str, input: &SmsInput) -> WorkflowStartOptions {
    let (month, customer) = (input.month, &input.customer);
    let attributes = input.settings.search_attributes.then(|| {
        SearchAttributes::new([
            search::MONTH.value_set(month.to_string()),
            search::CUSTOMER.value_set(customer.as_str().to_owned()),
            search::NOTIFICATION_STATUS.value_set(NotificationState::Pending.as_str().to_owned()),
        ])
    });
    WorkflowStartOptions::new(task_queue, sms::workflow_id(month, customer))
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .maybe_search_attributes(attributes)
        .static_summary(web_ui::sms_summary(
            month,
            customer.as_str(),
            input.first_attempt,
            input.settings.max_attempts,
        ))
        .task_timeout(SMS_TASK_TIMEOUT)
        .build()
}

/// `StartNotifications`: one page of qualified customers → notification rows → SMS workflows.
/// `progress` is called every few starts (the activity heartbeat).
pub async fn start_page<F: std::future::Future<Output = ()>>(
    pool: &PgPool,
    deps: &FanoutDeps,
    input: &StartNotificationsInput,
    progress: impl Fn(u64) -> F,
) -> anyhow::Result<StartNotificationsOutput> {
    let customers =
        qualify::qualified_page(pool, input.month, input.after.as_ref(), input.limit).await?;
    notifications::create_page(pool, input.month, &customers).await?;
    let client = Arc::new(deps.client.clone());
    let mut results = stream::iter(customers.iter().cloned())
        .map(|customer| {
            let client = Arc::clone(&client);
            let workflow_input = SmsInput {
                month: input.month,
                customer,
                settings: input.settings.clone(),
                first_attempt: 1,
            };
            let options = sms_start_options(&input.task_queue, &workflow_input);
            async move {
                match client
                    .start_workflow(SmsNotificationWorkflow::run, workflow_input, options)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                    Err(err) => Err(anyhow::Error::new(err)),
                }
            }
        })
        .buffer_unordered(deps.concurrency.max(1));
    let mut out = StartNotificationsOutput {
        seen: u64::try_from(customers.len()).unwrap_or_default(),
        last: customers.last().cloned(),
        done: customers.len() < usize::try_from(input.limit).unwrap_or(usize::MAX),
        ..Default::default()
    };
    while let Some(result) = results.next().await {
        if result.context("starting an SMS workflow")? {
            out.started += 1;
        } else {
            out.already_started += 1;
        }
        let handled = out.started + out.already_started;
        if handled.is_multiple_of(50) {
            progress(handled).await;
        }
    }
    Ok(out)
}
