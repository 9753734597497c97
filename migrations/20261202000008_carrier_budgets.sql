-- Rate limits per carrier that every worker honours together (issue 10): a token bucket per
-- carrier, in Postgres, so that two worker processes never send more between them than the
-- carrier takes. The submission gateway of each worker takes tokens for a batch in one UPDATE
-- (the row lock orders concurrent takers); what it does not get waits (the workflow is told to
-- come back), never fails.

CREATE TABLE carrier_budgets (
    -- `generic` or `twilio`: one bucket per carrier account.
    carrier        TEXT PRIMARY KEY,
    -- Messages per second the carrier takes (from configuration; the last worker to start wins).
    rate_per_sec   NUMERIC(12, 3) NOT NULL CONSTRAINT carrier_budgets_rate_positive CHECK (rate_per_sec > 0),
    -- Most messages sent at once: with `burst` well below the rate, no one-second window holds
    -- much more than `rate_per_sec` (at most rate + burst).
    burst          NUMERIC(12, 3) NOT NULL CONSTRAINT carrier_budgets_burst_positive CHECK (burst >= 1),
    -- Tokens left at `refilled_at` (negative after a 429: everyone waits it out).
    tokens         NUMERIC(14, 3) NOT NULL,
    refilled_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- The carrier asked us to wait (429 with Retry-After) until then: nobody takes tokens before.
    blocked_until  TIMESTAMPTZ
);
