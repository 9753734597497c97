//! The owner of `carrier_budgets`: a token bucket per carrier in Postgres, shared by every worker
//! process, so that their submissions together stay within the carrier's rate.

use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::PgPool;

/// A carrier's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Messages per second.
    pub per_sec: u32,
    /// Most messages taken at once (default a tenth of the rate, at least 1): any one-second
    /// window then holds at most `per_sec + burst` messages.
    pub burst: u32,
}

impl Grant {
    /// Seconds until `waiting` more messages have had their turn at the carrier's rate (at
    /// least 1).
    pub fn turn_of(&self, waiting: usize) -> u64 {
        let rate = self.rate_per_sec.unwrap_or(Decimal::ONE).max(Decimal::ONE);
        (Decimal::from(waiting) / rate)
            .ceil()
            .to_u64()
            .unwrap_or(60)
            .max(1)
    }
}

impl Rate {
    /// `per_sec` messages a second with the default burst. None for 0 (refused: a carrier that
    /// takes nothing is a configuration error, not a rate).
    pub fn per_sec(per_sec: u32) -> Option<Self> {
        (per_sec > 0).then(|| Self {
            per_sec,
            burst: (per_sec / 10).max(1),
        })
    }
}

/// Sets (or changes) the bucket of `carrier`. The tokens already there are kept, capped at the
/// new burst.
pub async fn configure(pool: &PgPool, carrier: &str, rate: Rate) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO carrier_budgets (carrier, rate_per_sec, burst, tokens)
         VALUES ($1, $2, $3, $3)
         ON CONFLICT (carrier) DO UPDATE
            SET rate_per_sec = EXCLUDED.rate_per_sec, burst = EXCLUDED.burst,
                tokens = least(carrier_budgets.tokens, EXCLUDED.burst)",
    )
    .bind(carrier)
    .bind(Decimal::from(rate.per_sec))
    .bind(Decimal::from(rate.burst))
    .execute(pool)
    .await?;
    Ok(())
}

/// What a take gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Messages that may go now (≤ asked).
    pub granted: usize,
    /// When the next slice of the rest may be asked for.
    pub retry_after: Duration,
    /// The carrier's rate (None: no bucket).
    pub rate_per_sec: Option<Decimal>,
}

/// Takes up to `want` tokens from `carrier`'s bucket: all of them when it has no bucket.
pub async fn take(pool: &PgPool, carrier: &str, want: usize) -> anyhow::Result<Grant> {
    if want == 0 {
        return Ok(Grant {
            granted: 0,
            retry_after: Duration::ZERO,
            rate_per_sec: None,
        });
    }
    let want_i = i64::try_from(want).unwrap_or(i64::MAX);
    let row: Option<(i64, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "WITH cur AS (
             SELECT carrier, rate_per_sec, burst,
                    least(burst, tokens + rate_per_sec *
                          greatest(0, extract(epoch FROM clock_timestamp() - refilled_at))) AS avail,
                    blocked_until > clock_timestamp() AS blocked
               FROM carrier_budgets WHERE carrier = $1 FOR UPDATE),
         g AS (SELECT carrier, rate_per_sec, burst, avail,
                      CASE WHEN blocked THEN 0
                           ELSE greatest(0, least(floor(avail)::int8, $2)) END AS granted
                 FROM cur)
         UPDATE carrier_budgets b
            SET tokens = g.avail - g.granted, refilled_at = clock_timestamp()
           FROM g WHERE b.carrier = g.carrier
         RETURNING g.granted, g.avail - g.granted, g.rate_per_sec, g.burst",
    )
    .bind(carrier)
    .bind(want_i)
    .fetch_optional(pool)
    .await?;
    let Some((granted, left, rate, burst)) = row else {
        return Ok(Grant {
            granted: want,
            retry_after: Duration::ZERO,
            rate_per_sec: None,
        });
    };
    let granted = usize::try_from(granted).unwrap_or(0);
    // The next slice may go when the bucket holds as much of the rest as one take can give.
    let rest = Decimal::from(want_i - i64::try_from(granted).unwrap_or(0));
    let missing = rest.min(burst) - left;
    let millis = (missing.max(Decimal::ONE) * Decimal::ONE_THOUSAND / rate)
        .ceil()
        .to_u64()
        .unwrap_or(1_000);
    Ok(Grant {
        granted,
        retry_after: Duration::from_millis(millis.clamp(50, 3_600_000)),
        rate_per_sec: Some(rate),
    })
}

/// The carrier answered 429: nobody takes tokens for `wait`.
pub async fn block(pool: &PgPool, carrier: &str, wait: Duration) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE carrier_budgets
            SET blocked_until = greatest(coalesce(blocked_until, clock_timestamp()),
                                         clock_timestamp() + make_interval(secs => $2))
          WHERE carrier = $1",
    )
    .bind(carrier)
    .bind(wait.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_zero_is_no_rate_and_the_burst_is_a_tenth() {
        assert_eq!(Rate::per_sec(0), None);
        assert_eq!(
            Rate::per_sec(50),
            Some(Rate {
                per_sec: 50,
                burst: 5
            })
        );
        assert_eq!(Rate::per_sec(3).unwrap().burst, 1);
    }
}
