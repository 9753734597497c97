//! Fan-out as a tree of child workflows against the fan-out we run (client starts from an
//! activity), same N, same server, back to back (`fanout_children_tree_per_s`).
//!
//! - **Client starts** (what `pcn_activities::fanout::start_page` does): N workflows started by the
//!   client with 32 starts in flight, until the last one ran.
//! - **Tree of children** (what the design card sketched): one root workflow starts ⌈N / 1,000⌉
//!   batch children (`ParentClosePolicy::Abandon`, the root completes once they started); each
//!   batch starts its ≤ 1,000 leaves as children in windows of 250 (`Abandon`; it waits for each
//!   window to be *started*, never for a leaf to end) and completes. A batch stays inside
//!   Temporal's limits (≤ 2,000 pending children, ≈ 3 events per child: no continue-as-new needed).
//!
//! Both sides start trivial leaves, so the figure compares the start mechanisms alone: a real
//! SMS leaf costs the same server work either way, and a month's batch child would add one
//! activity per 1,000 customers to read its page (negligible beside 1,000 starts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowResult, join_all,
};

use crate::harness::wait_count;

/// Children a batch workflow starts (Temporal advises ≤ 500–1,000 pending per parent).
pub const BATCH: u64 = 1_000;
/// Child starts a batch has in flight at once.
const WINDOW: u64 = 250;
/// Client starts in flight (the fan-out activity's default).
const START_CONCURRENCY: usize = 32;

/// Leaves whose first task ran (not replaying), by either mechanism.
static LEAVES_RAN: AtomicU64 = AtomicU64::new(0);

/// A leaf: counts itself, completes.
#[workflow]
#[derive(Default)]
pub struct BenchLeafWorkflow {
    _nothing: (),
}

#[workflow_methods]
impl BenchLeafWorkflow {
    /// Counts its first run, returns.
    #[run(name = "BenchLeaf")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        if !ctx.is_replaying() {
            LEAVES_RAN.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Input of a tree node: leaves `first .. first + count`, ids tagged with `tag`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeInput {
    /// Makes the workflow ids of this run unique.
    pub tag: String,
    /// First leaf number.
    pub first: u64,
    /// Leaves under this node.
    pub count: u64,
    /// The task queue of every node and leaf.
    pub task_queue: String,
}

/// The root: one batch child per [`BATCH`] leaves, then completes.
#[workflow]
#[derive(Default)]
pub struct BenchTreeRootWorkflow {
    _nothing: (),
}

#[workflow_methods]
impl BenchTreeRootWorkflow {
    /// Starts the batches (abandoned), waits until each started.
    #[run(name = "BenchTreeRoot")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: TreeInput) -> WorkflowResult<()> {
        let starts = (0..input.count.div_ceil(BATCH)).map(|b| {
            let first = input.first + b * BATCH;
            let child = TreeInput {
                tag: input.tag.clone(),
                first,
                count: BATCH.min(input.first + input.count - first),
                task_queue: input.task_queue.clone(),
            };
            let options = ChildWorkflowOptions::builder()
                .workflow_id(format!("bench-tree-{}-batch-{b}", input.tag))
                .task_queue(input.task_queue.clone())
                .parent_close_policy(ParentClosePolicy::Abandon)
                .build();
            ctx.start_child_workflow(BenchTreeBatchWorkflow::run, child, options)
        });
        for started in join_all(starts).await {
            started?;
        }
        Ok(())
    }
}

/// A batch: starts its leaves as abandoned children, [`WINDOW`] at a time, then completes.
#[workflow]
#[derive(Default)]
pub struct BenchTreeBatchWorkflow {
    _nothing: (),
}

#[workflow_methods]
impl BenchTreeBatchWorkflow {
    /// Starts the leaves; never waits for one to end.
    #[run(name = "BenchTreeBatch")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: TreeInput) -> WorkflowResult<()> {
        let end = input.first + input.count;
        let mut next = input.first;
        while next < end {
            let window_end = end.min(next + WINDOW);
            let starts = (next..window_end).map(|i| {
                let options = ChildWorkflowOptions::builder()
                    .workflow_id(format!("bench-tree-{}-leaf-{i}", input.tag))
                    .task_queue(input.task_queue.clone())
                    .parent_close_policy(ParentClosePolicy::Abandon)
                    .build();
                ctx.start_child_workflow(BenchLeafWorkflow::run, (), options)
            });
            for started in join_all(starts).await {
                started?;
            }
            next = window_end;
        }
        Ok(())
    }
}

/// Rates (leaves per second) of the two mechanisms for `n` leaves: (client starts, tree).
pub async fn compare(
    client: Client,
    task_queue: String,
    tag: String,
    n: u64,
) -> anyhow::Result<(f64, f64)> {
    println!(
        "fan-out mechanisms, {n} leaves each: client starts ({START_CONCURRENCY} in flight)..."
    );
    LEAVES_RAN.store(0, Ordering::Relaxed);
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let options =
                WorkflowStartOptions::new(task_queue.clone(), format!("bench-client-{tag}-{i}"))
                    .build();
            client.start_workflow(BenchLeafWorkflow::run, (), options)
        })
        .buffer_unordered(START_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("starting a leaf from the client")?;
    wait_count(&LEAVES_RAN, n, "leaves ran (client starts)").await?;
    let client_secs = started.elapsed().as_secs_f64();
    println!("  {n} ran in {client_secs:.1} s");

    println!(
        "  tree of children: 1 root, {} batches of <= {BATCH}...",
        n.div_ceil(BATCH)
    );
    LEAVES_RAN.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let root = client
        .start_workflow(
            BenchTreeRootWorkflow::run,
            TreeInput {
                tag: tag.clone(),
                first: 0,
                count: n,
                task_queue: task_queue.clone(),
            },
            WorkflowStartOptions::new(task_queue, format!("bench-tree-{tag}-root")).build(),
        )
        .await
        .context("starting the tree's root")?;
    wait_count(&LEAVES_RAN, n, "leaves ran (tree of children)").await?;
    let tree_secs = started.elapsed().as_secs_f64();
    root.get_result(WorkflowGetResultOptions::default())
        .await
        .context("the tree's root")?;
    println!("  {n} ran in {tree_secs:.1} s");
    Ok((n as f64 / client_secs, n as f64 / tree_secs))
}
