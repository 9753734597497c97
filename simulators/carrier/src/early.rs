//! When a submission's answer leaves: a carrier slow to answer
//! ([`SimConfig::answer_delay`]) and callbacks that overtake the answer
//! ([`SimConfig::early_callback_ppm`]).
//!
//! Real carriers answer the submit request from one system and post delivery callbacks from
//! another; nothing orders the two. A client must cope with a callback for a message it has not
//! yet heard accepted (the generic callback carries our `messageId`; the Twilio one our `ref` in
//! the callback URL), and with an answer that comes after the message was already sent.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::callbacks::Dispatcher;
use crate::config::SimConfig;
use crate::hash::{chance_ppm, message_key, mix, tag};
use crate::model::SentMessage;

/// Longest an answer waits for its early callbacks (a callback given up after every retry takes
/// about 3 s of backoff; one that is slow to answer is not waited for beyond this).
pub(crate) const EARLY_CALLBACK_WAIT: Duration = Duration::from_secs(5);

/// Whether `m`'s final callback goes out before its submission is answered: a seeded draw on
/// its reference, like duplicates and stale callbacks.
pub(crate) fn is_early(cfg: &SimConfig, m: &SentMessage) -> bool {
    cfg.early_callback_ppm > 0
        && chance_ppm(
            mix(&[cfg.seed, tag::EARLY, message_key(m)]),
            cfg.early_callback_ppm,
        )
}

/// Holds a processed submission's answer: until every early final callback was posted (or given
/// up, or [`EARLY_CALLBACK_WAIT`] passed), and until `answer_delay` after `processed_at`.
///
/// While callbacks are paused the early ones are held like every other, so the answer does not
/// wait for them: a test that pauses callbacks wants the answers.
pub(crate) async fn hold_answer(
    dispatcher: &Dispatcher,
    cfg: &SimConfig,
    early: Vec<oneshot::Receiver<()>>,
    processed_at: Instant,
) {
    if !early.is_empty() {
        let all_posted = async {
            for posted in early {
                // An error means the task ended without posting (shutdown): nothing to wait for.
                let _ = posted.await;
            }
        };
        tokio::select! {
            () = all_posted => {}
            () = tokio::time::sleep(EARLY_CALLBACK_WAIT) => {
                tracing::debug!("carrier simulator: answering before the early callbacks were posted");
            }
            () = dispatcher.wait_paused() => {}
        }
    }
    tokio::time::sleep(cfg.answer_delay.saturating_sub(processed_at.elapsed())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Api, Outcome};

    fn message(reference: &str) -> SentMessage {
        SentMessage {
            carrier_id: "TRK1".into(),
            api: Api::Generic,
            idempotency_key: Some(reference.into()),
            to: "+972501234567".into(),
            from: None,
            body: "x".into(),
            callback_url: Some("http://127.0.0.1:9/cb".into()),
            accepted_at: chrono::Utc::now(),
            outcome: Outcome::Delivered,
        }
    }

    #[test]
    fn early_callbacks_follow_the_seed_and_the_reference_at_the_configured_share() {
        let cfg = SimConfig {
            early_callback_ppm: 100_000,
            ..SimConfig::default()
        };
        let early = (0..10_000)
            .filter(|i| is_early(&cfg, &message(&format!("sms/2026-10/C{i}#1"))))
            .count();
        assert!(early.abs_diff(1_000) < 150, "{early}");
        let m = message("sms/2026-10/C7#1");
        assert_eq!(is_early(&cfg, &m), is_early(&cfg, &m));
        let never = SimConfig {
            early_callback_ppm: 0,
            ..cfg
        };
        assert!((0..1_000).all(|i| !is_early(&never, &message(&format!("r{i}")))));
    }

    #[test]
    fn an_early_message_has_its_final_status_at_acceptance() {
        let cfg = SimConfig {
            early_callback_ppm: 1_000_000,
            ..SimConfig::default()
        };
        assert_eq!(cfg.final_delay(&message("r")), Duration::ZERO);
        let late = SimConfig {
            early_callback_ppm: 0,
            ..cfg
        };
        assert!(late.final_delay(&message("r")) >= late.callback_delay);
    }
}
