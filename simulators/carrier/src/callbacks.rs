//! Delivery callbacks: one task per message sleeps until its callbacks are due (not at all for an
//! early one), then posts them in order (intermediate SENT, final, duplicate final, stale SENT),
//! each with retries, telling the waiting answer once the final one is through. HTTP sends
//! share one `reqwest::Client` and are bounded by a semaphore; a pause holds every due send until
//! resume.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::{Semaphore, oneshot, watch};

use crate::stats::{StatsCollector, bump};

/// Tries per callback (the first plus four retries).
pub(crate) const TRIES: u32 = 5;
/// Delay before the first retry; doubles after each.
pub(crate) const RETRY_BASE: Duration = Duration::from_millis(200);

/// A signed request body.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// Generic carrier: JSON with `X-Carrier-Signature`.
    Json {
        /// The raw body (what the signature covers).
        body: Bytes,
        /// `sha256=<hex>`.
        signature: String,
    },
    /// Twilio: form-encoded with `X-Twilio-Signature`.
    Form {
        /// The encoded form.
        body: Bytes,
        /// base64 HMAC-SHA1.
        signature: String,
    },
}

/// One POST to make.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) payload: Payload,
}

/// Everything one message will send back, in order.
#[derive(Debug)]
pub(crate) struct Script {
    /// After acceptance, when the final callback is due (the intermediate one goes at half).
    pub(crate) delay: Duration,
    pub(crate) intermediate: Option<Delivery>,
    pub(crate) final_status: Delivery,
    pub(crate) duplicate: bool,
    pub(crate) stale: Option<Delivery>,
    /// Told once the final callback was posted or given up (an early callback's answer waits
    /// on it).
    pub(crate) final_posted: Option<oneshot::Sender<()>>,
}

/// Runs the callback tasks.
pub(crate) struct Dispatcher {
    client: reqwest::Client,
    permits: Semaphore,
    paused: watch::Sender<bool>,
    closed: watch::Sender<bool>,
    in_flight: AtomicUsize,
    stats: Arc<StatsCollector>,
}

/// Decrements the in-flight count however the task ends (done, aborted by shutdown, panic).
struct InFlight(Arc<Dispatcher>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Dispatcher {
    pub(crate) fn new(
        client: reqwest::Client,
        concurrency: usize,
        stats: Arc<StatsCollector>,
    ) -> Self {
        Self {
            client,
            permits: Semaphore::new(concurrency.max(1)),
            paused: watch::Sender::new(false),
            closed: watch::Sender::new(false),
            in_flight: AtomicUsize::new(0),
            stats,
        }
    }

    /// The shared HTTP client (also used for inbound messages).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Starts the task for one message. Counted in flight from now until its last send ends.
    pub(crate) fn schedule(self: &Arc<Self>, script: Script) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(Arc::clone(self));
        let mut closed = self.closed.subscribe();
        tokio::spawn(async move {
            let this = Arc::clone(&guard.0);
            tokio::select! {
                _ = closed.wait_for(|c| *c) => {}
                () = this.run(script) => {}
            }
            drop(guard);
        });
    }

    async fn run(&self, mut script: Script) {
        match &script.intermediate {
            Some(first) => {
                let half = script.delay / 2;
                tokio::time::sleep(half).await;
                self.deliver(first).await;
                tokio::time::sleep(script.delay.saturating_sub(half)).await;
            }
            None => tokio::time::sleep(script.delay).await,
        }
        self.deliver(&script.final_status).await;
        if let Some(posted) = script.final_posted.take() {
            // The answer may have stopped waiting (bounded wait): nobody to tell.
            let _ = posted.send(());
        }
        if script.duplicate {
            self.deliver(&script.final_status).await;
        }
        if let Some(stale) = &script.stale {
            self.deliver(stale).await;
        }
    }

    /// Up to [`TRIES`] tries with doubling delays; counts the outcome.
    async fn deliver(&self, d: &Delivery) {
        let mut backoff = RETRY_BASE;
        for attempt in 1..=TRIES {
            self.wait_unpaused().await;
            let status = match self.permits.acquire().await {
                Ok(_permit) => self.post(d).await,
                // The semaphore is never closed.
                Err(_) => 0,
            };
            self.stats.record_callback_try(status);
            if (200..300).contains(&status) {
                bump(&self.stats.callbacks_sent);
                return;
            }
            if attempt < TRIES {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        bump(&self.stats.callbacks_failed);
        tracing::warn!(url = %d.url, "carrier simulator: callback given up after {TRIES} tries");
    }

    /// One POST; the HTTP status, or 0 when there was no answer.
    pub(crate) async fn post(&self, d: &Delivery) -> u16 {
        let req = self.client.post(&d.url);
        let req = match &d.payload {
            Payload::Json { body, signature } => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Carrier-Signature", signature)
                .body(body.clone()),
            Payload::Form { body, signature } => req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header("X-Twilio-Signature", signature)
                .body(body.clone()),
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // Read the body so the connection goes back to the pool.
                let _ = resp.bytes().await;
                status
            }
            Err(e) => {
                tracing::debug!(url = %d.url, error = %e, "carrier simulator: callback got no answer");
                0
            }
        }
    }

    async fn wait_unpaused(&self) {
        let mut rx = self.paused.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|paused| !*paused).await;
    }

    pub(crate) fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub(crate) fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub(crate) fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Resolves once callbacks are paused (at once if they are).
    pub(crate) async fn wait_paused(&self) {
        let mut rx = self.paused.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|paused| *paused).await;
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no callback task is left; `false` on timeout.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Ends every callback task (scheduled callbacks are dropped).
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }
}
