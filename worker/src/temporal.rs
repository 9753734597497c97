//! Temporal: client connection, the worker, and search-attribute registration.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::Context as _;
use pcn_activities::PcnActivities;
use pcn_workflows::month::{MonthlyQualificationWorkflow, ScheduledMonthStart};
use pcn_workflows::sms::SmsNotificationWorkflow;
use temporalio_client::NamespacedClient as _;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionResponse,
};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Worker, WorkerOptions};
use url::Url;

use crate::codec::PayloadEncryption;

/// Connects a client to `address` (`host:port` or a URL) in `namespace`, encrypting every payload
/// it sends and decrypting those it reads with `codec` (a worker built on this client does the
/// same for its workflows and activities: the SDK takes the client's data converter).
pub async fn connect(
    address: &str,
    namespace: &str,
    codec: &PayloadEncryption,
) -> anyhow::Result<Client> {
    let url = if address.contains("://") {
        Url::from_str(address)
    } else {
        Url::from_str(&format!("http://{address}"))
    }
    .with_context(|| format!("invalid temporal_address {address:?}"))?;
    let connection = Connection::connect(
        ConnectionOptions::new(url)
            .identity(format!("pcn-worker@{}", std::process::id()))
            .build(),
    )
    .await
    .with_context(|| format!("connecting to Temporal at {address}"))?;
    Client::new(
        connection,
        ClientOptions::new(namespace)
            .data_converter(codec.data_converter())
            .build(),
    )
    .context("building the Temporal client")
}

/// [`connect`], tried again every 2 s for up to `wait` (a clear error naming the address and the
/// last failure after that).
pub async fn connect_patiently(
    address: &str,
    namespace: &str,
    codec: &PayloadEncryption,
    wait: std::time::Duration,
) -> anyhow::Result<Client> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match connect(address, namespace, codec).await {
            Ok(client) => return Ok(client),
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %format!("{err:#}"), "Temporal not reachable yet; trying again in 2 s");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(err) => {
                return Err(err.context(format!(
                    "Temporal at {address} was not reachable within {wait:?}"
                )));
            }
        }
    }
}

/// Workflow runs a worker keeps in memory by default (`PCN_WORKFLOW_CACHE`). A run that is not
/// cached is replayed from its whole history at its next task, which the server pays for: with
/// the SDK's 1,000, 2,000 SMS workflows woken by their delivery signals took 23 s to finish
/// instead of 17–19 s with all of them cached, for ≈ 10 MB of worker memory per 1,000 more runs
/// (`make bench`).
pub const DEFAULT_WORKFLOW_CACHE: usize = 4_000;

/// Workflow tasks a worker holds at once by default (`PCN_WORKFLOW_TASK_SLOTS`). A task's timeout
/// runs on the server from the moment the worker takes it, so a worker should never hold more
/// than it can finish within that timeout when the server slows down: tasks held ≈ task latency ×
/// throughput. The Temporal server is the bottleneck here (a burst of 1,000 SMS workflows costs it
/// ≈ 18 s of CPU against ≈ 6 s for the worker, the simulators and the database client together).
/// With 1,000, that burst timed out 15 tasks in a loaded CI run and 9 beside six CPU hogs on
/// 2 cores; with 500, 0, 0 and 2 in three runs beside six hogs (`scale::a_burst…`). 500 is also
/// the largest gateway batch (`PCN_SMS_BATCH_MAX`), so batches are not cut (at 100,000 customers
/// they averaged 193), and a month of 10,000 customers ran its SMS phase in 88.0 s with 500
/// against 86.6 s with 1,000 (release, same day).
pub const DEFAULT_WORKFLOW_TASK_SLOTS: usize = 500;

/// How much a worker keeps in memory and in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerCapacity {
    /// Workflow runs kept in memory (the sticky cache).
    pub workflow_cache: usize,
    /// Workflow tasks held at once.
    pub workflow_task_slots: usize,
}

impl Default for WorkerCapacity {
    fn default() -> Self {
        Self {
            workflow_cache: DEFAULT_WORKFLOW_CACHE,
            workflow_task_slots: DEFAULT_WORKFLOW_TASK_SLOTS,
        }
    }
}

/// The worker serving both workflows and the activities on `task_queue`, with the default
/// capacity.
pub fn build_worker(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    task_queue: &str,
    activities: PcnActivities,
) -> anyhow::Result<Worker> {
    build_worker_with(
        runtime,
        client,
        task_queue,
        activities,
        WorkerCapacity::default(),
    )
}

/// [`build_worker`] with the given `capacity`.
pub fn build_worker_with(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    task_queue: &str,
    activities: PcnActivities,
    capacity: WorkerCapacity,
) -> anyhow::Result<Worker> {
    let options = WorkerOptions::new(task_queue)
        // One workflow poller (the default) halves throughput on this server; see TEMPORAL_NOTES.
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(20))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(10))
        .max_cached_workflows(capacity.workflow_cache)
        // Local activities in flight: the SMS submissions of every running workflow wait in the
        // gateway (bounded itself, it defers the rest), never in the SDK's queue, where their time
        // would count against their workflow tasks.
        .tuner(
            TunerHolder::builder()
                // Workflow tasks in flight: a submission waiting for its batch keeps its workflow
                // task open, so the batch can only be as large as this.
                .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
                    capacity.workflow_task_slots,
                ))
                .activity_task_slot_supplier(FixedSizeSlotSupplier::new(100))
                .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(2_000))
                .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(10))
                .build(),
        )
        .register_activities(activities)
        .register_workflow::<MonthlyQualificationWorkflow>()?
        .register_workflow::<ScheduledMonthStart>()?
        .register_workflow::<SmsNotificationWorkflow>()?
        .build();
    Worker::new(runtime, client, options).context("building the worker")
}

/// Registers our custom search attributes on the namespace; those already there are left alone.
pub async fn register_search_attributes(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let existing = client
        .connection()
        .operator_service()
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .context("listing search attributes")?
        .into_inner()
        .custom_attributes;
    let missing: HashMap<String, i32> = pcn_workflows::search::ALL
        .iter()
        .filter(|(name, _)| !existing.contains_key(*name))
        .map(|(name, _)| ((*name).to_owned(), IndexedValueType::Keyword as i32))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    client
        .connection()
        .operator_service()
        .add_search_attributes(tonic::Request::new(AddSearchAttributesRequest {
            search_attributes: missing,
            namespace: namespace.to_owned(),
        }))
        .await
        .context("adding search attributes")?;
    Ok(())
}

/// `DescribeWorkflowExecution` of the latest run of `workflow_id`, as the server answers it
/// (status, run id and search attributes are never encrypted).
///
/// Not the SDK's `WorkflowHandle::describe`: in 1.1.1 it decodes the static summary and details
/// without the payload codec, so it fails on every run whose summary was encrypted — any child a
/// workflow starts, such as the month run the Schedule's `ScheduledMonthStart` starts.
pub async fn describe_raw(
    client: &Client,
    workflow_id: &str,
) -> Result<DescribeWorkflowExecutionResponse, tonic::Status> {
    let request = DescribeWorkflowExecutionRequest {
        namespace: client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_owned(),
            run_id: String::new(),
        }),
    };
    client
        .connection()
        .workflow_service()
        .describe_workflow_execution(tonic::Request::new(request))
        .await
        .map(tonic::Response::into_inner)
}
