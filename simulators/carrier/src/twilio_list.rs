//! `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: Twilio's message list, the lookup a
//! client uses to find out whether a message it lost the answer to was created after all.
//!
//! As on Twilio: filters `To`, `From`, `DateSent` (that UTC day), `DateSent<` (on or before) and
//! `DateSent>` (on or after) — in a URL `DateSent%3E=2026-11-01`, the parameter *name* carries
//! the `<`/`>`; dates are `YYYY-MM-DD`, or an RFC 3339 instant to the second. A message without
//! a `date_sent` yet (still queued) matches no `DateSent` filter. Newest first, `PageSize`
//! messages a page (default 50, at most 1000), and pages after the first only through the
//! `PageToken` of `next_page_uri` / `previous_page_uri` (`PA<sid>`: after that message,
//! `PB<sid>`: before it), so a page does not shift when newer messages arrive.

use std::ops::Range;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::model::{Api, SentMessage};
use crate::server::{AppState, Record, gate, json_response};
use crate::stats::bump;
use crate::twilio;

/// Messages a page unless `PageSize` says otherwise.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;

/// The largest page; a larger `PageSize` is cut to it (and `page_size` says so).
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// The error code of a list request with an unusable parameter (answered 400).
const INVALID_PARAMETER: u32 = 20001;

/// A `DateSent` bound: a whole UTC day, or an instant (to the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Day(NaiveDate),
    At(DateTime<Utc>),
}

impl When {
    fn parse(s: &str) -> Option<Self> {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(Self::Day(day));
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Self::At(t.with_timezone(&Utc)))
    }

    /// `sent` in whole seconds, as the resource's RFC 2822 `date_sent` shows it.
    fn seconds(sent: DateTime<Utc>) -> DateTime<Utc> {
        DateTime::from_timestamp(sent.timestamp(), 0).unwrap_or(sent)
    }

    fn same(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() == day,
            Self::At(t) => Self::seconds(sent) == t,
        }
    }

    fn on_or_before(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() <= day,
            Self::At(t) => Self::seconds(sent) <= t,
        }
    }

    fn on_or_after(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() >= day,
            Self::At(t) => Self::seconds(sent) >= t,
        }
    }
}

/// Where a page starts, from `PageToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PageToken {
    /// `PA<sid>`: the messages after this one.
    After(String),
    /// `PB<sid>`: the messages before this one.
    Before(String),
}

impl PageToken {
    fn parse(s: &str) -> Option<Self> {
        if let Some(sid) = s.strip_prefix("PA").filter(|sid| !sid.is_empty()) {
            Some(Self::After(sid.to_owned()))
        } else {
            s.strip_prefix("PB")
                .filter(|sid| !sid.is_empty())
                .map(|sid| Self::Before(sid.to_owned()))
        }
    }

    fn as_param(&self) -> String {
        match self {
            Self::After(sid) => format!("PA{sid}"),
            Self::Before(sid) => format!("PB{sid}"),
        }
    }
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListQuery {
    to: Option<String>,
    from: Option<String>,
    date_sent: Option<When>,
    sent_before: Option<When>,
    sent_after: Option<When>,
    /// The filters exactly as given, repeated in the page URIs.
    filters: Vec<(String, String)>,
    page_size: usize,
    page: usize,
    token: Option<PageToken>,
}

impl ListQuery {
    /// Parses the raw query string; `Err` is the 400's message. Unknown parameters are ignored,
    /// empty ones count as absent.
    fn parse(raw: &str) -> Result<Self, String> {
        let mut q = Self {
            to: None,
            from: None,
            date_sent: None,
            sent_before: None,
            sent_after: None,
            filters: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
            page: 0,
            token: None,
        };
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            let date = || When::parse(&value).ok_or_else(|| format!("Invalid {name}: {value}"));
            match &*name {
                "To" => q.to = Some(value.to_string()),
                "From" => q.from = Some(value.to_string()),
                "DateSent" => q.date_sent = Some(date()?),
                "DateSent<" => q.sent_before = Some(date()?),
                "DateSent>" => q.sent_after = Some(date()?),
                "PageSize" => {
                    let size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("Invalid PageSize: {value}"))?;
                    q.page_size = size.min(MAX_PAGE_SIZE);
                    continue;
                }
                "Page" => {
                    q.page = value
                        .parse()
                        .map_err(|_| format!("Invalid Page: {value}"))?;
                    continue;
                }
                "PageToken" => {
                    q.token = Some(
                        PageToken::parse(&value)
                            .ok_or_else(|| format!("Invalid PageToken: {value}"))?,
                    );
                    continue;
                }
                _ => continue,
            }
            q.filters.push((name.into_owned(), value.into_owned()));
        }
        if q.page > 0 && q.token.is_none() {
            return Err("Paged requests must include a PageToken".to_owned());
        }
        Ok(q)
    }

    /// Whether message `m`, sent at `sent` (`None`: still queued), passes the filters.
    fn matches(&self, m: &SentMessage, sent: Option<DateTime<Utc>>) -> bool {
        let dated = [
            (
                self.date_sent,
                When::same as fn(When, DateTime<Utc>) -> bool,
            ),
            (self.sent_before, When::on_or_before),
            (self.sent_after, When::on_or_after),
        ];
        self.to.as_ref().is_none_or(|to| &m.to == to)
            && self
                .from
                .as_ref()
                .is_none_or(|from| m.from.as_ref() == Some(from))
            && dated.iter().all(|&(bound, holds)| match (bound, sent) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(bound), Some(sent)) => holds(bound, sent),
            })
    }

    /// The positions of this page in `sids` (the matching messages, newest first).
    fn window(&self, sids: &[&str]) -> Result<Range<usize>, String> {
        let position = |sid: &str| {
            sids.iter()
                .position(|s| *s == sid)
                .ok_or_else(|| format!("Invalid PageToken: no message {sid} in this list"))
        };
        let (start, end) = match &self.token {
            None => {
                let start = self.page.saturating_mul(self.page_size).min(sids.len());
                (start, start.saturating_add(self.page_size))
            }
            Some(PageToken::After(sid)) => {
                let start = position(sid)? + 1;
                (start, start.saturating_add(self.page_size))
            }
            Some(PageToken::Before(sid)) => {
                let end = position(sid)?;
                (end.saturating_sub(self.page_size), end)
            }
        };
        Ok(start..end.min(sids.len()))
    }

    /// The URI of page `page` starting at `token`, with this request's filters.
    fn uri(&self, account_sid: &str, page: usize, token: Option<&PageToken>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(&self.filters);
        query.append_pair("PageSize", &self.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", &token.as_param());
        }
        format!(
            "/2010-04-01/Accounts/{account_sid}/Messages.json?{}",
            query.finish()
        )
    }

    /// The list answer for the page `window` of `sids`, holding `messages`.
    fn page_body(
        &self,
        account_sid: &str,
        sids: &[&str],
        window: Range<usize>,
        messages: Vec<Value>,
    ) -> Value {
        let next = sids[..window.end]
            .last()
            .filter(|_| window.end < sids.len())
            .map(|last| {
                let token = PageToken::After((*last).to_owned());
                self.uri(account_sid, self.page + 1, Some(&token))
            });
        let previous = sids[window.clone()]
            .first()
            .filter(|_| window.start > 0)
            .map(|first| {
                let token = PageToken::Before((*first).to_owned());
                self.uri(account_sid, self.page.saturating_sub(1), Some(&token))
            });
        let start = self.page.saturating_mul(self.page_size);
        json!({
            "end": start + window.len().saturating_sub(1),
            "first_page_uri": self.uri(account_sid, 0, None),
            "messages": messages,
            "next_page_uri": next,
            "page": self.page,
            "page_size": self.page_size,
            "previous_page_uri": previous,
            "start": start,
            "uri": self.uri(account_sid, self.page, self.token.as_ref()),
        })
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`.
pub(crate) async fn list(
    State(st): State<Arc<AppState>>,
    Path(account_sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cfg = st.config();
    let authorized = twilio::basic_ok(&headers, &cfg, &account_sid);
    if let Err(refusal) = gate(&st, &cfg, authorized, 0, twilio::refusal).await {
        return refusal;
    }
    bump(&st.stats.status_queries);
    let invalid =
        |message: &str| twilio::error(StatusCode::BAD_REQUEST, INVALID_PARAMETER, message);
    let q = match ListQuery::parse(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(message) => return invalid(&message),
    };
    let now = Utc::now();
    let store = st.store();
    let mut matching: Vec<(usize, &Record)> = store
        .messages
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.msg.api == Api::Twilio && q.matches(&r.msg, twilio::date_sent(&cfg, r, now))
        })
        .collect();
    // Newest first; within one instant the later accepted first.
    matching.sort_by(|(i, a), (j, b)| {
        b.msg
            .accepted_at
            .cmp(&a.msg.accepted_at)
            .then_with(|| j.cmp(i))
    });
    let sids: Vec<&str> = matching
        .iter()
        .map(|(_, r)| r.msg.carrier_id.as_str())
        .collect();
    let window = match q.window(&sids) {
        Ok(window) => window,
        Err(message) => return invalid(&message),
    };
    let messages = matching[window.clone()]
        .iter()
        .map(|(_, r)| twilio::resource(&cfg, r, now))
        .collect();
    json_response(
        StatusCode::OK,
        &q.page_body(&cfg.twilio_account_sid, &sids, window, messages),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> When {
        When::parse(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn message(to: &str, from: Option<&str>) -> SentMessage {
        SentMessage {
            carrier_id: "SM1".into(),
            api: Api::Twilio,
            idempotency_key: None,
            to: to.into(),
            from: from.map(str::to_owned),
            body: "x".into(),
            callback_url: None,
            accepted_at: Utc::now(),
            outcome: crate::model::Outcome::Delivered,
        }
    }

    #[test]
    fn the_date_bounds_are_named_as_twilio_encodes_them() {
        let q =
            ListQuery::parse("To=%2B972501234567&DateSent%3E=2026-11-01&DateSent%3C=2026-11-30")
                .unwrap();
        assert_eq!(q.to.as_deref(), Some("+972501234567"));
        assert_eq!(q.sent_after, Some(day("2026-11-01")));
        assert_eq!(q.sent_before, Some(day("2026-11-30")));
        // Unencoded, the `=` after `>` still ends the name.
        let raw = ListQuery::parse("DateSent>=2026-11-01&DateSent=2026-11-05").unwrap();
        assert_eq!(raw.sent_after, Some(day("2026-11-01")));
        assert_eq!(raw.date_sent, Some(day("2026-11-05")));
        assert_eq!(raw.page_size, DEFAULT_PAGE_SIZE);
        assert!(ListQuery::parse("DateSent=yesterday").is_err());
        assert!(ListQuery::parse("DateSent%3E=2026-13-01").is_err());
    }

    #[test]
    fn page_sizes_are_capped_and_later_pages_need_a_token() {
        assert_eq!(
            ListQuery::parse("PageSize=5000").unwrap().page_size,
            MAX_PAGE_SIZE
        );
        assert!(ListQuery::parse("PageSize=0").is_err());
        assert!(ListQuery::parse("PageSize=ten").is_err());
        assert_eq!(
            ListQuery::parse("Page=1").unwrap_err(),
            "Paged requests must include a PageToken"
        );
        assert!(ListQuery::parse("Page=1&PageToken=XX").is_err());
        let q = ListQuery::parse("Page=1&PageToken=PASM1").unwrap();
        assert_eq!(q.token, Some(PageToken::After("SM1".into())));
    }

    #[test]
    fn day_bounds_include_their_day_and_instants_compare_to_the_second() {
        let sent = at("2026-11-01T23:59:59.700Z");
        assert!(day("2026-11-01").same(sent));
        assert!(!day("2026-11-02").same(sent));
        assert!(day("2026-11-01").on_or_before(sent));
        assert!(day("2026-11-01").on_or_after(sent));
        assert!(!day("2026-10-31").on_or_before(sent));
        assert!(!day("2026-11-02").on_or_after(sent));
        assert!(When::At(at("2026-11-01T23:59:59Z")).same(sent));
        assert!(When::At(at("2026-11-01T23:59:59Z")).on_or_before(sent));
        assert!(!When::At(at("2026-11-02T00:00:00Z")).on_or_after(sent));
    }

    #[test]
    fn a_queued_message_matches_no_date_filter_but_the_others() {
        let m = message("+972501234567", Some("+15005550006"));
        let q = ListQuery::parse("To=%2B972501234567&From=%2B15005550006").unwrap();
        assert!(q.matches(&m, None));
        let dated = ListQuery::parse("DateSent%3E=2000-01-01").unwrap();
        assert!(!dated.matches(&m, None));
        assert!(dated.matches(&m, Some(at("2026-11-01T10:00:00Z"))));
        let other = ListQuery::parse("From=%2B15005550007").unwrap();
        assert!(!other.matches(&m, None));
        let service = message("+972501234567", None);
        assert!(!q.matches(&service, None));
    }

    #[test]
    fn pages_follow_tokens_forwards_and_backwards() {
        let sids = ["SM5", "SM4", "SM3", "SM2", "SM1"];
        let first = ListQuery::parse("PageSize=2").unwrap();
        assert_eq!(first.window(&sids).unwrap(), 0..2);
        let body = first.page_body("AC1", &sids, 0..2, vec![]);
        assert_eq!(
            body["next_page_uri"],
            "/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1&PageToken=PASM4"
        );
        assert!(body["previous_page_uri"].is_null());
        assert_eq!(body["start"], 0);
        let second = ListQuery::parse("PageSize=2&Page=1&PageToken=PASM4").unwrap();
        assert_eq!(second.window(&sids).unwrap(), 2..4);
        let body = second.page_body("AC1", &sids, 2..4, vec![]);
        assert_eq!(
            body["previous_page_uri"],
            "/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=0&PageToken=PBSM3"
        );
        assert_eq!(
            (body["start"].as_u64(), body["end"].as_u64()),
            (Some(2), Some(3))
        );
        let last = ListQuery::parse("PageSize=2&Page=2&PageToken=PASM2").unwrap();
        assert_eq!(last.window(&sids).unwrap(), 4..5);
        assert!(last.page_body("AC1", &sids, 4..5, vec![])["next_page_uri"].is_null());
        let back = ListQuery::parse("PageSize=2&Page=0&PageToken=PBSM3").unwrap();
        assert_eq!(back.window(&sids).unwrap(), 0..2);
        let gone = ListQuery::parse("Page=1&PageToken=PASM9").unwrap();
        assert!(gone.window(&sids).is_err());
    }

    #[test]
    fn page_uris_repeat_the_filters_encoded_as_twilio_does() {
        let q = ListQuery::parse("To=%2B972501234567&DateSent>=2026-11-01&Foo=bar").unwrap();
        assert_eq!(
            q.uri("AC1", 0, None),
            "/2010-04-01/Accounts/AC1/Messages.json?To=%2B972501234567&DateSent%3E=2026-11-01&PageSize=50&Page=0"
        );
    }
}
