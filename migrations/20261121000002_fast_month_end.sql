-- Month-end qualification of 100,000 customers must take under a second (bench:
-- qualification_seconds). The row-level foreign key qualifications.customer_id -> customers cost a
-- third of that (one RI check per decision). Decisions are only ever inserted by the set-based
-- statement that joins `customers`, so the reference holds by construction as long as customers
-- are never deleted — which is the rule anyway: a customer leaves the programme by
-- `active = false`, and their checks and decisions stay evidence for 7 years.
ALTER TABLE qualifications DROP CONSTRAINT qualifications_customer_id_fkey;

CREATE FUNCTION forbid_customer_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'customers are never deleted (% refused): set active = false instead', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER customers_never_deleted BEFORE DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION forbid_customer_deletion();
CREATE TRIGGER customers_never_truncated BEFORE TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_customer_deletion();

-- Per customer and month, how many checks of each outcome exist. Maintained by the statement-level
-- trigger below from the rows each INSERT actually added (the transition table holds only inserted
-- rows, so `ON CONFLICT DO NOTHING` retries add nothing), in the same transaction as the checks:
-- the tallies can never disagree with `balance_checks`, which is append-only. Month-end then reads
-- 100,000 tally rows instead of aggregating 3,100,000 checks.
CREATE TABLE monthly_tallies (
    -- First day of the month.
    month        DATE NOT NULL,
    customer_id  TEXT NOT NULL,
    passed       SMALLINT NOT NULL DEFAULT 0,
    below        SMALLINT NOT NULL DEFAULT 0,
    missing      SMALLINT NOT NULL DEFAULT 0,
    not_found    SMALLINT NOT NULL DEFAULT 0,
    invalid      SMALLINT NOT NULL DEFAULT 0,
    CONSTRAINT monthly_tallies_pkey PRIMARY KEY (month, customer_id)
);

CREATE FUNCTION tally_balance_checks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO monthly_tallies AS t (month, customer_id, passed, below, missing, not_found, invalid)
    SELECT date_trunc('month', business_date)::date, customer_id,
           count(*) FILTER (WHERE outcome = 'PASSED'),
           count(*) FILTER (WHERE outcome = 'BELOW_THRESHOLD'),
           count(*) FILTER (WHERE outcome = 'MISSING'),
           count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND'),
           count(*) FILTER (WHERE outcome = 'INVALID_RESPONSE')
      FROM new_rows
     GROUP BY 1, 2
     -- A fixed lock order, so two concurrent writers cannot deadlock on the same tallies.
     ORDER BY 1, 2
    ON CONFLICT (month, customer_id) DO UPDATE SET
        passed = t.passed + EXCLUDED.passed,
        below = t.below + EXCLUDED.below,
        missing = t.missing + EXCLUDED.missing,
        not_found = t.not_found + EXCLUDED.not_found,
        invalid = t.invalid + EXCLUDED.invalid;
    RETURN NULL;
END;
$$;

CREATE TRIGGER balance_checks_tally AFTER INSERT ON balance_checks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_balance_checks();
