//! [`SimHandle`]: what tests hold to steer and inspect a running simulator.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::faults::Faults;
use crate::model::{Api, Outcome, SentMessage};
use crate::server::AppState;
use crate::stats::Stats;

/// How long [`SimHandle::shutdown`] lets in-flight requests finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    /// The address the server listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    pub(crate) fn new(
        addr: SocketAddr,
        state: Arc<AppState>,
        shutdown: oneshot::Sender<()>,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            addr,
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT` (a wildcard bind address is replaced by loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The configuration in force (faults included).
    pub fn config(&self) -> SimConfig {
        SimConfig::clone(&self.state.config())
    }

    /// Changes the configuration in place (applies to requests from now on; callbacks already
    /// scheduled keep their payloads and timing) and returns the result.
    pub fn update_config(&self, change: impl FnOnce(&mut SimConfig)) -> SimConfig {
        self.state.update_config(change)
    }

    /// Replaces the plan of `phone`: the next new submissions to it get these outcomes, one
    /// each, in order; after that the mix decides again. An empty plan removes it.
    pub fn set_plan(&self, phone: &str, outcomes: Vec<Outcome>) {
        let mut store = self.state.store();
        if outcomes.is_empty() {
            store.plans.remove(phone);
        } else {
            store.plans.insert(phone.to_owned(), outcomes.into());
        }
    }

    /// Removes every plan.
    pub fn clear_plans(&self) {
        self.state.store().plans.clear();
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.state.config().faults.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state.update_config(|c| c.faults = faults);
    }

    /// Changes some fault settings in place and returns the result.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Faults {
        self.state.update_config(|c| change(&mut c.faults)).faults
    }

    /// Every submit and status request gets a 503 for the next `duration` (wall clock).
    pub fn start_outage(&self, duration: Duration) {
        let until = Utc::now() + TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        self.update_faults(|f| f.outage_until = Some(until));
    }

    /// Ends any outage (both the flag and the deadline).
    pub fn end_outage(&self) {
        self.update_faults(|f| {
            f.outage = false;
            f.outage_until = None;
        });
    }

    /// Every accepted message, in acceptance order.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.state
            .store()
            .messages
            .iter()
            .map(|r| r.msg.clone())
            .collect()
    }

    /// The accepted messages to `phone`, in acceptance order.
    pub fn messages_to(&self, phone: &str) -> Vec<SentMessage> {
        self.state
            .store()
            .messages
            .iter()
            .filter(|r| r.msg.to == phone)
            .map(|r| r.msg.clone())
            .collect()
    }

    /// Accepted messages per phone.
    pub fn message_counts_by_phone(&self) -> HashMap<String, u64> {
        self.state.store().counts_by_phone()
    }

    /// Phone → accepted messages beyond the first for the same reference (generic `messageId`,
    /// Twilio idempotency token): the double sends per phone. Phones without any are absent;
    /// always empty with [`SimConfig::dedup_references`] on.
    pub fn repeated_references_by_phone(&self) -> HashMap<String, u64> {
        self.state.store().repeats.by_phone().clone()
    }

    /// Reference (generic `messageId`, Twilio idempotency token) → messages accepted under it.
    /// Twilio messages created without a token have no reference and are not counted.
    pub fn messages_by_reference(&self) -> HashMap<String, u64> {
        self.state.store().repeats.by_reference().clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats.snapshot()
    }

    /// Forgets every message, reference (dedup cache and repeat counts) and plan, and zeroes the
    /// counters. Callbacks
    /// already scheduled still go out (and are counted).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Holds every callback that falls due (and every retry) until [`resume_callbacks`].
    ///
    /// [`resume_callbacks`]: Self::resume_callbacks
    pub fn pause_callbacks(&self) {
        self.state.dispatcher.pause();
    }

    /// Sends the held callbacks and lets new ones go out when due.
    pub fn resume_callbacks(&self) {
        self.state.dispatcher.resume();
    }

    /// Messages whose callbacks are scheduled, held or being sent (not yet finished).
    pub fn callbacks_in_flight(&self) -> usize {
        self.state.dispatcher.in_flight()
    }

    /// Waits until [`callbacks_in_flight`](Self::callbacks_in_flight) is 0; `false` if
    /// `timeout` passed first.
    pub async fn wait_callbacks_idle(&self, timeout: Duration) -> bool {
        self.state.dispatcher.wait_idle(timeout).await
    }

    /// Posts a signed inbound message (e.g. a "STOP" reply) from `from` to the configured
    /// `inbound_generic_url` / `inbound_twilio_url`; returns the HTTP status our webhook
    /// answered. Errors when no URL is configured or nothing answered.
    pub async fn send_inbound(&self, api: Api, from: &str, body: &str) -> anyhow::Result<u16> {
        self.state.send_inbound(api, from, body).await
    }

    /// Stops accepting connections, drops every scheduled callback, lets in-flight requests
    /// finish (up to 5 s), and waits.
    pub async fn shutdown(mut self) {
        self.state.dispatcher.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!(
                "carrier simulator: in-flight requests still running after the grace period, aborting"
            );
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.dispatcher.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
