//! Repeated references: how many messages were accepted under each reference (generic
//! `messageId`, Twilio idempotency token), and per phone how many of them were repeats.
//!
//! A real carrier does not deduplicate, so a client that resubmits a reference it already sent
//! (a retry after a lost answer, a replayed activity) sends the SMS twice. These counts are how a
//! test sees such double sends.

use std::collections::HashMap;

use serde::Serialize;

/// Messages accepted per reference, and repeats per phone.
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    by_reference: HashMap<String, u64>,
    by_phone: HashMap<String, u64>,
    total: u64,
}

/// One phone's line in `GET /admin/repeats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PhoneRepeats {
    /// The full number (an admin endpoint of a test tool; logs mask it).
    pub(crate) phone: String,
    /// Accepted messages to it beyond the first for the same reference.
    pub(crate) repeated_references: u64,
}

/// One reference's line in `GET /admin/repeats` (only references with more than one message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ReferenceRepeats {
    /// The generic `messageId` or Twilio idempotency token.
    pub(crate) reference: String,
    /// Messages accepted under it.
    pub(crate) messages: u64,
}

impl Repeats {
    /// Notes one accepted message to `phone` under `reference` (none: a Twilio create without a
    /// token, which cannot repeat anything). `true` when the reference had been accepted before.
    pub(crate) fn record(&mut self, reference: Option<&str>, phone: &str) -> bool {
        let Some(reference) = reference else {
            return false;
        };
        let count = self.by_reference.entry(reference.to_owned()).or_insert(0);
        *count += 1;
        if *count == 1 {
            return false;
        }
        *self.by_phone.entry(phone.to_owned()).or_insert(0) += 1;
        self.total += 1;
        true
    }

    /// Accepted messages that repeated a reference.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Phone → accepted messages beyond the first for the same reference (phones with none are
    /// absent).
    pub(crate) fn by_phone(&self) -> &HashMap<String, u64> {
        &self.by_phone
    }

    /// Reference → messages accepted under it (every reference seen, repeated or not).
    pub(crate) fn by_reference(&self) -> &HashMap<String, u64> {
        &self.by_reference
    }

    /// The phones with repeats, sorted by number.
    pub(crate) fn phones(&self) -> Vec<PhoneRepeats> {
        let mut phones: Vec<PhoneRepeats> = self
            .by_phone
            .iter()
            .map(|(phone, &n)| PhoneRepeats {
                phone: phone.clone(),
                repeated_references: n,
            })
            .collect();
        phones.sort_by(|a, b| a.phone.cmp(&b.phone));
        phones
    }

    /// The references accepted more than once, sorted.
    pub(crate) fn repeated(&self) -> Vec<ReferenceRepeats> {
        let mut refs: Vec<ReferenceRepeats> = self
            .by_reference
            .iter()
            .filter(|&(_, &n)| n > 1)
            .map(|(reference, &messages)| ReferenceRepeats {
                reference: reference.clone(),
                messages,
            })
            .collect();
        refs.sort_by(|a, b| a.reference.cmp(&b.reference));
        refs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_second_and_later_messages_of_a_reference_are_repeats() {
        let mut r = Repeats::default();
        assert!(!r.record(Some("sms/2026-10/C1#1"), "+972501234567"));
        assert!(r.record(Some("sms/2026-10/C1#1"), "+972501234567"));
        assert!(r.record(Some("sms/2026-10/C1#1"), "+972501234567"));
        assert!(!r.record(Some("sms/2026-10/C1#2"), "+972501234567"));
        assert!(!r.record(Some("sms/2026-10/C2#1"), "+972500000002"));
        assert_eq!(r.total(), 2);
        assert_eq!(r.by_phone().get("+972501234567"), Some(&2));
        assert_eq!(r.by_phone().get("+972500000002"), None);
        assert_eq!(r.by_reference().get("sms/2026-10/C1#1"), Some(&3));
        assert_eq!(r.by_reference().get("sms/2026-10/C2#1"), Some(&1));
        assert_eq!(
            r.repeated(),
            [ReferenceRepeats {
                reference: "sms/2026-10/C1#1".into(),
                messages: 3
            }]
        );
        assert_eq!(
            r.phones(),
            [PhoneRepeats {
                phone: "+972501234567".into(),
                repeated_references: 2
            }]
        );
    }

    #[test]
    fn messages_without_a_reference_never_repeat() {
        let mut r = Repeats::default();
        assert!(!r.record(None, "+972501234567"));
        assert!(!r.record(None, "+972501234567"));
        assert_eq!(r.total(), 0);
        assert!(r.by_reference().is_empty());
    }
}
