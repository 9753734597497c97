-- Foundation schema of the Premium Customer Notification System.
--
-- Conventions:
--   * Business keys are the primary keys (customer id, (customer, business date), (month, customer)),
--     so every retried write is an `INSERT ... ON CONFLICT DO NOTHING` keyed by the business id.
--   * Money is NUMERIC(18,2): exact, two decimals, never a float.
--   * Business dates are calendar dates in Asia/Jerusalem, stored as DATE (no time zone on purpose).
--   * Closed vocabularies are TEXT with named CHECK constraints: readable in ad-hoc audit queries and
--     mapped to client errors by constraint name.
--   * Decisions and evidence (balance checks, qualifications, the audit log) are immutable: the
--     database itself refuses UPDATE and DELETE on them (trigger `forbid_mutation`).

-- Raised by the immutability triggers below.
CREATE FUNCTION forbid_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TABLE customers (
    -- The bank's customer number; also the key in the SMS workflow id `sms/YYYY-MM/<customer>`,
    -- hence the URL- and id-safe alphabet.
    customer_id      TEXT PRIMARY KEY
        CONSTRAINT customers_customer_id_format CHECK (customer_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    -- The account whose end-of-day balance is monitored (one monitored account per customer).
    account_id       TEXT NOT NULL
        CONSTRAINT customers_account_id_format CHECK (account_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    first_name       TEXT NOT NULL
        CONSTRAINT customers_first_name_length CHECK (char_length(first_name) BETWEEN 1 AND 100),
    -- Normalised E.164 (the domain type `Phone` parses local Israeli formats before insert).
    phone_e164       TEXT NOT NULL
        CONSTRAINT customers_phone_e164_format CHECK (phone_e164 ~ '^\+[1-9][0-9]{7,14}$'),
    -- Language of the SMS: he (default), ar, en, ru.
    language         TEXT NOT NULL DEFAULT 'he'
        CONSTRAINT customers_language_known CHECK (language IN ('he', 'ar', 'en', 'ru')),
    opted_out        BOOLEAN NOT NULL DEFAULT FALSE,
    -- Inactive customers are no longer checked (closed accounts, left the programme).
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    -- First business date the customer is monitored. A customer who joins mid-month cannot qualify
    -- for that month: the rule is "every calendar day of the month".
    monitored_since  DATE NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT customers_account_id_unique UNIQUE (account_id)
);

-- The daily sweep pages through active customers in customer_id order; this partial index keeps
-- that keyset scan on the rows that matter.
CREATE INDEX customers_active_idx ON customers (customer_id) INCLUDE (account_id, monitored_since)
    WHERE active;

-- One row per customer and business date: the evidence for every qualification decision.
CREATE TABLE balance_checks (
    customer_id        TEXT NOT NULL REFERENCES customers (customer_id),
    business_date      DATE NOT NULL,
    -- PASSED: amount >= threshold in NIS. BELOW_THRESHOLD: amount < threshold.
    -- MISSING: no usable answer before the sweep gave up (bank outage). ACCOUNT_NOT_FOUND: bank 404.
    -- INVALID_RESPONSE: data-quality failure (non-NIS currency, malformed body).
    outcome            TEXT NOT NULL
        CONSTRAINT balance_checks_outcome_known CHECK (outcome IN
            ('PASSED', 'BELOW_THRESHOLD', 'MISSING', 'ACCOUNT_NOT_FOUND', 'INVALID_RESPONSE')),
    -- The balance as the bank reported it; NULL when there was none to read.
    amount             NUMERIC(18, 2),
    currency           TEXT,
    -- Threshold in force for this check, kept so a later change of configuration never
    -- reinterprets old evidence.
    threshold          NUMERIC(18, 2) NOT NULL CONSTRAINT balance_checks_threshold_positive CHECK (threshold > 0),
    bank_reference_id  TEXT,
    -- Why a check is not PASSED/BELOW_THRESHOLD (e.g. "currency USD", "HTTP 503 after 3 attempts").
    detail             TEXT,
    fetched_at         TIMESTAMPTZ NOT NULL,
    -- The Temporal workflow run that wrote the row (audit: which run decided what).
    workflow_id        TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    CONSTRAINT balance_checks_pkey PRIMARY KEY (customer_id, business_date),
    CONSTRAINT balance_checks_amount_when_read CHECK (
        outcome NOT IN ('PASSED', 'BELOW_THRESHOLD') OR (amount IS NOT NULL AND currency = 'NIS'))
);

-- Month-end qualification and progress counts scan by date.
CREATE INDEX balance_checks_date_idx ON balance_checks (business_date, outcome);

CREATE TRIGGER balance_checks_append_only BEFORE UPDATE OR DELETE ON balance_checks
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

-- One row per completed daily sweep: what ops read to see that a day is done.
CREATE TABLE daily_sweeps (
    business_date   DATE PRIMARY KEY,
    checked         INTEGER NOT NULL,
    passed          INTEGER NOT NULL,
    below_threshold INTEGER NOT NULL,
    missing         INTEGER NOT NULL,
    not_found       INTEGER NOT NULL,
    invalid         INTEGER NOT NULL,
    completed_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    workflow_id     TEXT NOT NULL,
    run_id          TEXT NOT NULL
);

-- One decision per customer and month.
CREATE TABLE qualifications (
    -- First day of the calendar month.
    month           DATE NOT NULL CONSTRAINT qualifications_month_first_day CHECK (EXTRACT(DAY FROM month) = 1),
    customer_id     TEXT NOT NULL REFERENCES customers (customer_id),
    qualified       BOOLEAN NOT NULL,
    -- QUALIFIED, or the first reason that disqualified, in this order of precedence:
    -- NOT_MONITORED_WHOLE_MONTH, BELOW_THRESHOLD, ACCOUNT_NOT_FOUND, INVALID_RESPONSE, MISSING_DATA.
    reason          TEXT NOT NULL
        CONSTRAINT qualifications_reason_known CHECK (reason IN
            ('QUALIFIED', 'NOT_MONITORED_WHOLE_MONTH', 'BELOW_THRESHOLD', 'ACCOUNT_NOT_FOUND',
             'INVALID_RESPONSE', 'MISSING_DATA')),
    days_in_month   SMALLINT NOT NULL,
    days_passed     SMALLINT NOT NULL,
    days_below      SMALLINT NOT NULL,
    -- Days with no usable answer: MISSING rows plus days with no row at all.
    days_missing    SMALLINT NOT NULL,
    days_not_found  SMALLINT NOT NULL,
    days_invalid    SMALLINT NOT NULL,
    threshold       NUMERIC(18, 2) NOT NULL,
    decided_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    workflow_id     TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    CONSTRAINT qualifications_pkey PRIMARY KEY (month, customer_id),
    CONSTRAINT qualifications_reason_matches CHECK (qualified = (reason = 'QUALIFIED'))
);

-- The notification fan-out reads the qualified customers of a month in customer order.
CREATE INDEX qualifications_qualified_idx ON qualifications (month, customer_id) WHERE qualified;

CREATE TRIGGER qualifications_append_only BEFORE UPDATE OR DELETE ON qualifications
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

-- Append-only audit trail (7-year retention). The database refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    occurred_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Who: "workflow:qualification/2026-10", "admin:<name>", "carrier:<name>", "system".
    actor           TEXT NOT NULL,
    -- What, as a stable verb: DAILY_SWEEP_COMPLETED, MONTH_QUALIFIED, CUSTOMER_IMPORTED, ...
    action          TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    details         JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- A retried activity writes its audit entry once: the entry carries a business key.
    idempotency_key TEXT CONSTRAINT audit_log_idempotency_key_unique UNIQUE
);

CREATE INDEX audit_log_subject_idx ON audit_log (subject_type, subject_id, occurred_at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
