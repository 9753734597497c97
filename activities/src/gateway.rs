//! The submission gateway: the `SubmitSms` local activities of every SMS workflow running in this
//! worker hand their attempt to one gateway task, which gathers them (up to `max_batch` messages
//! or `linger`, whichever comes first) and sends each gathering as **one carrier request** — a
//! real batch for the generic API, Twilio's per-message API with bounded concurrency — with the
//! database work of the whole batch done set-based (a handful of statements, not a handful per
//! message). Each workflow still gets its own answer.
//!
//! It is also the admission control of the SMS phase:
//! - its queue is bounded: a submission that finds it full is answered `Deferred` at once and the
//!   workflow comes back after a durable timer, so a burst of 40,000 workflows never piles up
//!   behind the database pool or the carrier inside local activities that outlive their
//!   workflow tasks (the collapse of the 100,000-customer month);
//! - the carrier's rate ([`crate::budget`], shared by every worker through Postgres) is taken
//!   per batch; what it does not cover is `Deferred` until the bucket refills; a 429 blocks the
//!   bucket for its `Retry-After` and defers the batch — never a failure, never a lost message.
//!
//! Exactly-once is unchanged: every send is claimed by a compare-and-set on its attempt row
//! before the carrier call ([`crate::attempts::claim_many`]); a batch the carrier certainly did
//! not take goes back to UNSENT; a batch whose outcome is unknown leaves its attempts in doubt,
//! resolved one by one by [`crate::in_doubt`] through the single-message path
//! ([`crate::sms_steps::submit`]), which also serves attempts already in doubt when they come back.

use std::sync::Arc;
use std::time::Duration;

use pcn_workflows::contracts::{NotificationKey, SubmitInput, SubmitResult};
use pcn_workflows::delivery::{FailureCategory, MessageRef};
use pcn_workflows::message::RenderedMessage;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::attempts::{self, AttemptStatus, NewAttempt};
use crate::breaker::{Admission, Outcome};
use crate::carrier::{AnyCarrier, CarrierError, OutboundSms, SmsCarrier, SubmitOutcome};
use crate::customers::{self, Recipient};
use crate::metrics::Metrics;
use crate::notifications::{self, Submitted};
use crate::sms_steps::{self as sms, SmsDeps};
use crate::{budget, delivery_events, failpoint};

/// How the gateway gathers and admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Most messages in one carrier request.
    pub max_batch: usize,
    /// A batch closes when no submission joined it for this long.
    pub linger: Duration,
    /// … and at the latest this long after its first submission: kept well inside the SMS
    /// workflows' task timeout, so a waiting submission never outlives its workflow task.
    pub max_wait: Duration,
    /// Submissions waiting for a batch at most; beyond it they are deferred.
    pub queue_limit: usize,
    /// Submissions already in doubt resolved at once (each may call the carrier).
    pub in_doubt_concurrency: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            max_batch: 500,
            linger: Duration::from_secs(1),
            max_wait: Duration::from_secs(4),
            queue_limit: 1_000,
            in_doubt_concurrency: 8,
        }
    }
}

/// One submission waiting for its batch.
struct Request {
    input: SubmitInput,
    reply: oneshot::Sender<anyhow::Result<SubmitResult>>,
}

/// A running gateway (cheap to clone).
#[derive(Clone)]
pub struct Gateway {
    tx: mpsc::Sender<Request>,
}

impl Gateway {
    /// Starts the gateway task (on the current Tokio runtime).
    pub fn spawn(pool: PgPool, deps: Arc<SmsDeps>, metrics: Metrics) -> Self {
        let settings = deps.gateway;
        deps.breakers.publish_to(metrics.carrier_breaker.clone());
        for carrier in std::iter::once(&deps.carrier).chain(&deps.secondary) {
            metrics.carrier_in_use(carrier.name().as_str());
        }
        deps.breakers.record_to(pool.clone());
        let (tx, rx) = mpsc::channel(settings.queue_limit.max(1));
        let worker = Worker {
            pool,
            deps,
            metrics,
            in_doubt: Arc::new(Semaphore::new(settings.in_doubt_concurrency.max(1))),
            settings,
        };
        tokio::spawn(worker.run(rx));
        Self { tx }
    }

    /// Submits one attempt through the next batch; answers for it alone.
    pub async fn submit(&self, input: SubmitInput) -> anyhow::Result<SubmitResult> {
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Request { input, reply }) {
            Ok(()) => answer
                .await
                .map_err(|_| anyhow::anyhow!("the submission gateway stopped"))?,
            Err(mpsc::error::TrySendError::Full(_)) => Ok(SubmitResult::Deferred {
                retry_secs: jitter(5, 20),
            }),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                anyhow::bail!("the submission gateway stopped")
            }
        }
    }
}

/// A wait in `lo..=hi` seconds, different for each caller: deferred workflows must not all come
/// back at the same instant.
fn jitter(lo: u64, hi: u64) -> u64 {
    lo + rand_u64() % (hi.saturating_sub(lo) + 1)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

struct Worker {
    pool: PgPool,
    deps: Arc<SmsDeps>,
    metrics: Metrics,
    in_doubt: Arc<Semaphore>,
    settings: GatewaySettings,
}

/// A submission of the batch that will be claimed and sent.
struct Send {
    request: Request,
    reference: MessageRef,
    recipient: Recipient,
    message: RenderedMessage,
    /// The attempt row exists as UNSENT (else: a first send).
    unsent: bool,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Request>) {
        let this = Arc::new(self);
        loop {
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            let latest = tokio::time::Instant::now() + this.settings.max_wait;
            while batch.len() < this.settings.max_batch {
                let quiet = tokio::time::Instant::now() + this.settings.linger;
                match tokio::time::timeout_at(quiet.min(latest), rx.recv()).await {
                    Ok(Some(request)) => batch.push(request),
                    Ok(None) | Err(_) => break,
                }
            }
            // Workflows whose activity gave up meanwhile are not sent for.
            batch.retain(|r| !r.reply.is_closed());
            if let Err(err) = Arc::clone(&this).process(batch).await {
                tracing::warn!(error = %format!("{err:#}"), "SMS batch not processed; its submissions retry");
            }
        }
    }

    /// Everything a batch needs, with errors going to every submission still unanswered.
    async fn process(self: Arc<Self>, batch: Vec<Request>) -> anyhow::Result<()> {
        let keys: Vec<&NotificationKey> = batch.iter().map(|r| &r.input.key).collect();
        let references: Vec<String> = batch
            .iter()
            .map(|r| r.input.key.attempt(r.input.attempt).to_string())
            .collect();
        let customers: Vec<String> = keys
            .iter()
            .map(|k| k.customer.as_str().to_owned())
            .collect();
        let loaded = async {
            notifications::ensure_many(&self.pool, &keys).await?;
            let rows = attempts::load_many(&self.pool, &self.deps.phones, &references).await?;
            let recipients =
                customers::recipients(&self.pool, &self.deps.phones, &customers).await?;
            anyhow::Ok((rows, recipients))
        }
        .await;
        let (rows, mut recipients) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                fail_all(batch, &err);
                return Err(err);
            }
        };
        let mut sends = Vec::new();
        for (request, reference) in batch.into_iter().zip(references) {
            let row = rows.get(&reference);
            if let Some(row) = row {
                if let Some(id) = &row.carrier_message_id {
                    answer(
                        request,
                        SubmitResult::Submitted {
                            carrier: row.carrier.clone(),
                            carrier_message_id: id.clone(),
                        },
                    );
                    continue;
                }
                match row.status {
                    AttemptStatus::Rejected => {
                        let code = row.error_code.clone();
                        answer(
                            request,
                            SubmitResult::Rejected {
                                category: FailureCategory::from_code(code.as_deref()),
                                code: code.unwrap_or_default(),
                            },
                        );
                        continue;
                    }
                    // Sent only once and certainly not taken: may go through any carrier.
                    AttemptStatus::Unsent if row.submissions == 1 => {}
                    _ => {
                        // In doubt, or resent after a doubt: resolved alone, by evidence, at
                        // the carrier that may have it (rare).
                        Arc::clone(&self).resolve_alone(request);
                        continue;
                    }
                }
            }
            let customer = request.input.key.customer.as_str();
            let Some(recipient) = recipients.remove(customer) else {
                answer(request, SubmitResult::UnknownCustomer);
                continue;
            };
            // Consent, read for this batch: a STOP that came before it wins.
            if recipient.opted_out {
                answer(request, SubmitResult::OptedOut);
                continue;
            }
            let message = self.deps.templates.render(
                recipient.language,
                &recipient.first_name,
                request.input.key.month,
            );
            let reference = request.input.key.attempt(request.input.attempt);
            sends.push(Send {
                request,
                reference,
                recipient,
                message,
                unsent: row.is_some(),
            });
        }
        if sends.is_empty() {
            return Ok(());
        }
        self.send(sends).await
    }

    /// An attempt already in doubt goes through the single-message path and its resolution rule.
    fn resolve_alone(self: Arc<Self>, request: Request) {
        tokio::spawn(async move {
            let Ok(_permit) = self.in_doubt.acquire().await else {
                return;
            };
            let result = sms::submit(&self.pool, &self.deps, &self.metrics, &request.input).await;
            let _ = request.reply.send(result);
        });
    }

    /// The carrier this batch goes through: the primary while its breaker lets it, else the
    /// secondary (when configured and its own breaker lets it); `Err(wait)` when neither does.
    fn route(&self) -> Result<&AnyCarrier, Duration> {
        let primary = &self.deps.carrier;
        let wait = match self.deps.breakers.admit(primary.name().as_str()) {
            Admission::Refused(wait) => wait,
            _ => return Ok(primary),
        };
        match &self.deps.secondary {
            Some(secondary) => match self.deps.breakers.admit(secondary.name().as_str()) {
                Admission::Refused(other) => Err(wait.min(other)),
                _ => Ok(secondary),
            },
            None => Err(wait),
        }
    }

    /// Sends the batch within the carrier's rate: what the shared budget allows now goes at
    /// once; the rest waits for tokens up to `max_wait` more (slice by slice), and what is still
    /// left then is deferred — told when its turn should come. While no carrier's breaker lets
    /// a request through, the whole batch is deferred until one may.
    async fn send(&self, sends: Vec<Send>) -> anyhow::Result<()> {
        let via = match self.route() {
            Ok(via) => via,
            Err(wait) => {
                for s in sends {
                    self.metrics
                        .sms_deferred
                        .with_label_values(&["breaker"])
                        .inc();
                    answer(
                        s.request,
                        SubmitResult::Deferred {
                            retry_secs: wait.as_secs().max(1) + jitter(0, 10),
                        },
                    );
                }
                return Ok(());
            }
        };
        let carrier = via.name().as_str();
        let deadline = tokio::time::Instant::now() + self.settings.max_wait;
        let mut rest = sends;
        loop {
            let grant = match budget::take(&self.pool, carrier, rest.len()).await {
                Ok(grant) => grant,
                Err(err) => {
                    fail_all(rest.into_iter().map(|s| s.request).collect(), &err);
                    return Err(err);
                }
            };
            let later = rest.split_off(grant.granted.min(rest.len()));
            if !rest.is_empty() {
                self.send_now(via, rest).await?;
            }
            if later.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + grant.retry_after > deadline {
                // Their turn comes when the tokens for everyone before them have come in.
                let wait = grant.turn_of(later.len());
                for s in later {
                    self.metrics.sms_deferred.with_label_values(&["rate"]).inc();
                    answer(
                        s.request,
                        SubmitResult::Deferred {
                            retry_secs: wait + jitter(0, wait.min(30)),
                        },
                    );
                }
                return Ok(());
            }
            tokio::time::sleep(grant.retry_after).await;
            rest = later;
        }
    }

    /// Claims, sends one carrier request, stores the answers, replies.
    async fn send_now(&self, via: &AnyCarrier, sends: Vec<Send>) -> anyhow::Result<()> {
        let carrier = via.name().as_str();
        // Claim every send: exactly one execution sends each attempt.
        let new: Vec<NewAttempt<'_>> = sends
            .iter()
            .filter(|s| !s.unsent)
            .map(|s| NewAttempt {
                reference: &s.reference,
                carrier,
                phone: &s.recipient.phone,
                body: &s.message.text,
            })
            .collect();
        let unsent: Vec<String> = sends
            .iter()
            .filter(|s| s.unsent)
            .map(|s| s.reference.to_string())
            .collect();
        let claimed =
            match attempts::claim_many(&self.pool, &self.deps.phones, carrier, &new, &unsent).await
            {
                Ok(claimed) => claimed,
                Err(err) => {
                    fail_all(sends.into_iter().map(|s| s.request).collect(), &err);
                    return Err(err);
                }
            };
        drop(new);
        let (mine, theirs): (Vec<Send>, Vec<Send>) = sends
            .into_iter()
            .partition(|s| claimed.contains_key(&s.reference.to_string()));
        for s in theirs {
            // Another execution claimed it a moment ago and is sending: look again soon.
            answer(s.request, SubmitResult::InDoubt { recheck_secs: 5 });
        }
        if mine.is_empty() {
            return Ok(());
        }
        failpoint::hit(failpoint::SUBMIT_AFTER_ATTEMPT_ROW);

        let outbound: Vec<OutboundSms> = mine
            .iter()
            .map(|s| OutboundSms {
                reference: s.reference.clone(),
                to: s.recipient.phone.clone(),
                body: s.message.text.clone(),
            })
            .collect();
        self.metrics.sms_batches.inc();
        self.metrics.sms_batch_size.observe(outbound.len() as f64);
        let started = std::time::Instant::now();
        let answer_of = via.submit(&outbound).await;
        self.metrics
            .carrier_requests
            .with_label_values(&[carrier])
            .observe(started.elapsed().as_secs_f64());
        let (outcome, kind) = match &answer_of {
            Ok(outcomes) if outcomes.len() == mine.len() => (Outcome::Success, "ok"),
            Ok(_) => (Outcome::Failure, "failed"),
            Err(CarrierError::RateLimited { .. }) => (Outcome::Neutral, "rate_limited"),
            Err(CarrierError::Unauthorized) => (Outcome::Neutral, "unauthorized"),
            Err(CarrierError::Refused(_)) => (Outcome::Success, "refused"),
            Err(_) => (Outcome::Failure, "failed"),
        };
        self.metrics
            .carrier_answers
            .with_label_values(&[carrier, kind])
            .inc();
        self.deps.breakers.record(carrier, outcome);
        let submission_of = |s: &Send| claimed.get(&s.reference.to_string()).copied().unwrap_or(1);
        let outcomes = match answer_of {
            Ok(outcomes) if outcomes.len() == mine.len() => outcomes,
            Ok(outcomes) => {
                // A batch answered with the wrong number of results: nobody knows which
                // messages went out. Every one is in doubt.
                tracing::warn!(
                    sent = mine.len(),
                    answers = outcomes.len(),
                    "carrier answered a batch with the wrong number of results: in doubt"
                );
                return self.in_doubt_all(mine);
            }
            Err(err) if err.certainly_not_taken() => {
                let sends: Vec<(String, i16)> = mine
                    .iter()
                    .map(|s| (s.reference.to_string(), submission_of(s)))
                    .collect();
                attempts::mark_unsent_many(&self.pool, &sends).await?;
                if let CarrierError::RateLimited { retry_after } = &err {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    budget::block(&self.pool, carrier, wait).await?;
                    for s in mine {
                        self.metrics.sms_deferred.with_label_values(&["429"]).inc();
                        answer(
                            s.request,
                            SubmitResult::Deferred {
                                retry_secs: wait.as_secs().max(1) + jitter(0, 5),
                            },
                        );
                    }
                    return Ok(());
                }
                let err = anyhow::anyhow!("carrier did not take the batch: {err}");
                fail_all(mine.into_iter().map(|s| s.request).collect(), &err);
                return Ok(());
            }
            Err(err) => {
                tracing::warn!(error = %err, messages = mine.len(), "SMS batch in doubt: the carrier may have it; resolving by evidence, not by sending again");
                return self.in_doubt_all(mine);
            }
        };
        self.store(carrier, mine, outcomes).await
    }

    /// Every send of the batch is in doubt: answered so, resolved later by evidence.
    fn in_doubt_all(&self, sends: Vec<Send>) -> anyhow::Result<()> {
        for s in sends {
            self.metrics.sms_in_doubt.inc();
            let recheck_secs = s.request.input.reconcile_secs.max(1);
            answer(s.request, SubmitResult::InDoubt { recheck_secs });
        }
        Ok(())
    }

    /// Stores the carrier's answers in one transaction and answers each workflow.
    async fn store(
        &self,
        carrier: &str,
        mine: Vec<Send>,
        outcomes: Vec<SubmitOutcome>,
    ) -> anyhow::Result<()> {
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for (s, outcome) in mine.iter().zip(&outcomes) {
            match outcome {
                SubmitOutcome::Accepted { carrier_message_id } => {
                    accepted.push((s.reference.to_string(), carrier_message_id.clone()));
                }
                SubmitOutcome::Rejected { code, category, .. } => {
                    rejected.push((s.reference.to_string(), code.clone(), *category));
                }
            }
        }
        if !accepted.is_empty() {
            failpoint::hit(failpoint::SUBMIT_AFTER_CARRIER_ACCEPT);
        }
        let marks: Vec<Submitted<'_>> = mine
            .iter()
            .zip(&outcomes)
            .map(|(s, outcome)| Submitted {
                key: &s.request.input.key,
                attempt: s.request.input.attempt,
                accepted: matches!(outcome, SubmitOutcome::Accepted { .. }),
                language: s.recipient.language.code(),
                encoding: s.message.segments.encoding.as_str(),
                segments: s.message.segments.segments,
            })
            .collect();
        let stored = async {
            let mut tx = self.pool.begin().await?;
            let stored = attempts::store_accepted_many(&mut tx, &accepted).await?;
            attempts::store_rejected_many(&mut tx, &rejected).await?;
            notifications::mark_submitted_many(&mut tx, &marks).await?;
            delivery_events::flag_others_foreign_many(&mut tx, carrier, &accepted).await?;
            tx.commit().await?;
            anyhow::Ok(stored)
        }
        .await;
        drop(marks);
        let stored = match stored {
            Ok(stored) => stored,
            Err(err) => {
                // The carrier has the accepted ones; their ids are lost with this transaction.
                // In doubt: the rule adopts them from callbacks or the lookup.
                tracing::warn!(error = %format!("{err:#}"), "storing a batch's answers failed: in doubt");
                return self.in_doubt_all(mine);
            }
        };
        failpoint::hit(failpoint::SUBMIT_AFTER_ID_STORED);
        for (s, outcome) in mine.into_iter().zip(outcomes) {
            let reference = s.reference.to_string();
            let result = match outcome {
                SubmitOutcome::Accepted { carrier_message_id } => {
                    if stored.contains(&reference) {
                        SubmitResult::Submitted {
                            carrier: carrier.to_owned(),
                            carrier_message_id,
                        }
                    } else {
                        // Another execution stored an id first: the next look answers from it.
                        SubmitResult::InDoubt { recheck_secs: 1 }
                    }
                }
                SubmitOutcome::Rejected { code, category, .. } => {
                    SubmitResult::Rejected { category, code }
                }
            };
            answer(s.request, result);
        }
        Ok(())
    }
}

fn answer(request: Request, result: SubmitResult) {
    let _ = request.reply.send(Ok(result));
}

fn fail_all(requests: Vec<Request>, err: &anyhow::Error) {
    for request in requests {
        let _ = request
            .reply
            .send(Err(anyhow::anyhow!("SMS batch failed: {err:#}")));
    }
}
