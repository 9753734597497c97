-- Seven years, kept cheaply (issue 12 item 6): `balance_checks` becomes a table partitioned by the
-- month of its business date (declarative range partitioning), so that a month older than the
-- retention period is exported and then dropped as a whole (`pcn-worker retention`) instead of
-- deleted row by row, and so that a day's sweep, the month's report and a customer's month read
-- one month-sized partition and its indexes instead of 255 M rows.
--
-- What stays exactly as it was:
--   * every column, its type, default and CHECK, with the same constraint names (client errors
--     and the vocabulary test read them by name);
--   * the primary key (customer_id, business_date): it already contains the partition key, so it
--     is kept as is and the sweep's `ON CONFLICT (customer_id, business_date) DO NOTHING` still
--     names it; the foreign key to customers; both secondary indexes;
--   * the append-only trigger (a row trigger on the partitioned table is cloned onto every
--     partition, present and future) and the tally trigger (statement level with a transition
--     table on the partitioned table: it sees the rows routed to any partition);
--   * the grants: the application role gets SELECT and INSERT on `balance_checks` (grants.sql),
--     and nothing on the partitions themselves. Rows reach a partition only through the parent
--     (Postgres checks the parent's privileges when it routes a row), so the role can neither
--     read past nor write around the parent, and it may not DROP, DETACH or TRUNCATE anything
--     (it owns nothing).
--
-- Partitions are named `balance_checks_YYYY_MM` and cover [first day, first day of next month).
-- `balance_checks_default` takes any row whose month has no partition yet, so an insert never
-- fails for a missing partition; such rows are reported (`pcn-worker retention` lists them,
-- `pcn_partition_default_rows` on the worker's /metrics), and `create_month_partitions` moves
-- them into their month's partition when it creates it.
--
-- Only `balance_checks` is partitioned: it is 97 % of the volume (3.1 M rows a month at 100,000
-- customers). The other tables that grow stay as they are, each for a reason:
--   * `audit_log` is the 7-year audit trail itself; its unique idempotency key could not include
--     a time column without letting a retried step write its entry twice, and it is never dropped
--     before its period, so there is nothing a partition would be dropped for;
--   * `daily_sweeps` gets one row a day (2,557 rows in 7 years);
--   * `qualifications` and `monthly_tallies` get 100,000 rows a month, a thirtieth of the checks;
--     `pcn-worker retention` deletes the tallies of a month whose checks it drops (they are
--     derived from them, and a restore rebuilds them);
--   * `delivery_events`, `sms_attempts` and `notifications` change state after insert (the
--     dispatcher's bookkeeping, the SMS state machine) and are keyed by id, so partitioning them
--     would change their keys; they grow with the SMS sent (the qualified customers), not with
--     the customers checked.

-- 1. The old table steps aside: its index names are schema-wide and are wanted by the new table.
ALTER TABLE balance_checks RENAME TO balance_checks_unpartitioned;
ALTER INDEX balance_checks_pkey RENAME TO balance_checks_unpartitioned_pkey;
ALTER INDEX balance_checks_date_idx RENAME TO balance_checks_unpartitioned_date_idx;
ALTER INDEX balance_checks_customer_cover_idx RENAME TO balance_checks_unpartitioned_cover_idx;

-- 2. The same table, partitioned (column comments: see the foundation migration).
CREATE TABLE balance_checks (
    customer_id        TEXT NOT NULL,
    business_date      DATE NOT NULL,
    outcome            TEXT NOT NULL
        CONSTRAINT balance_checks_outcome_known CHECK (outcome IN
            ('PASSED', 'BELOW_THRESHOLD', 'MISSING', 'ACCOUNT_NOT_FOUND', 'INVALID_RESPONSE')),
    amount             NUMERIC(18, 2),
    currency           TEXT,
    threshold          NUMERIC(18, 2) NOT NULL CONSTRAINT balance_checks_threshold_positive CHECK (threshold > 0),
    bank_reference_id  TEXT,
    detail             TEXT,
    fetched_at         TIMESTAMPTZ NOT NULL,
    workflow_id        TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    CONSTRAINT balance_checks_pkey PRIMARY KEY (customer_id, business_date),
    CONSTRAINT balance_checks_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES customers (customer_id),
    CONSTRAINT balance_checks_amount_when_read CHECK (
        outcome NOT IN ('PASSED', 'BELOW_THRESHOLD') OR (amount IS NOT NULL AND currency = 'NIS'))
) PARTITION BY RANGE (business_date);

CREATE TABLE balance_checks_default PARTITION OF balance_checks DEFAULT;

-- 3. Creates the month partitions of the partitioned tables for `months` months from the month
-- of `first_month`, skipping those that exist; returns how many it created. SECURITY DEFINER:
-- it runs as the owner, so the application role (which runs no DDL) can keep partitions ahead by
-- calling it, and can do nothing else with it: the tables and the partition names and bounds are
-- fixed here, only the months are the caller's, at most 36 at a time. Rows of a new partition's
-- month that already sit in the default partition are moved into it (the default is detached
-- for the move, which also lifts its cloned append-only trigger, and attached again); the tallies
-- already counted them, and a direct insert into a partition fires no statement trigger of the
-- parent, so they are not counted twice.
CREATE FUNCTION create_month_partitions(first_month DATE, months INTEGER) RETURNS INTEGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    parent TEXT;
    month DATE;
    part TEXT;
    stray BOOLEAN;
    created INTEGER := 0;
BEGIN
    IF first_month IS NULL OR months IS NULL OR months NOT BETWEEN 1 AND 36 THEN
        RAISE EXCEPTION 'create_month_partitions: months must be 1 to 36 and first_month set (got %, %)',
            first_month, months USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Two callers (two workers' sweeps, setup) create one partition once, in turn.
    PERFORM pg_advisory_xact_lock(hashtext('create_month_partitions'));
    FOREACH parent IN ARRAY ARRAY['balance_checks'] LOOP
        FOR i IN 0 .. months - 1 LOOP
            month := (date_trunc('month', first_month) + make_interval(months => i))::date;
            part := format('%s_%s', parent, to_char(month, 'YYYY_MM'));
            CONTINUE WHEN to_regclass(format('public.%I', part)) IS NOT NULL;
            EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE business_date >= %L AND business_date < %L)',
                           parent || '_default', month, (month + interval '1 month')::date)
               INTO stray;
            IF stray THEN
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, parent || '_default');
            END IF;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, parent, month, (month + interval '1 month')::date);
            -- As the unpartitioned table had (migration 9): an insert-only partition is vacuumed
            -- (pages marked all-visible for index-only scans) after every 100,000 inserts.
            EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_insert_threshold = 100000, '
                           'autovacuum_vacuum_insert_scale_factor = 0)', part);
            IF stray THEN
                EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE business_date >= %L AND business_date < %L',
                               part, parent || '_default', month, (month + interval '1 month')::date);
                EXECUTE format('DELETE FROM %I WHERE business_date >= %L AND business_date < %L',
                               parent || '_default', month, (month + interval '1 month')::date);
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I DEFAULT', parent, parent || '_default');
            END IF;
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;

-- Only the application role (grants.sql) and the owner may call it.
REVOKE EXECUTE ON FUNCTION create_month_partitions(DATE, INTEGER) FROM PUBLIC;

-- 4. A partition for every month that has checks, then the rows: inserted before the tally
-- trigger exists, so the tallies (already counted) are not counted again.
SELECT create_month_partitions(m, 1)
  FROM (SELECT DISTINCT date_trunc('month', business_date)::date AS m
          FROM balance_checks_unpartitioned) months;

INSERT INTO balance_checks SELECT * FROM balance_checks_unpartitioned;

-- 5. The secondary indexes (built once the rows are in) and the triggers, as before.
CREATE INDEX balance_checks_date_idx ON balance_checks (business_date, outcome);
CREATE INDEX balance_checks_customer_cover_idx ON balance_checks (customer_id, business_date)
    INCLUDE (outcome, amount, threshold, detail, fetched_at);

CREATE TRIGGER balance_checks_append_only BEFORE UPDATE OR DELETE ON balance_checks
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

CREATE TRIGGER balance_checks_tally AFTER INSERT ON balance_checks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_balance_checks();

ALTER TABLE balance_checks_default SET (autovacuum_vacuum_insert_threshold = 100000,
                                        autovacuum_vacuum_insert_scale_factor = 0);

DROP TABLE balance_checks_unpartitioned;
