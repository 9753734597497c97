-- What the application role may do, table by table: exactly what the code does (each table's
-- writes are in its owner module in activities/src/, README "Where each table is written").
-- `pcn-worker setup` runs this file as the owner role after every migration, in one transaction,
-- with {app} replaced by the application role: it first takes everything away, then grants the
-- list below, so a privilege removed here is removed from the database too.
--
-- Rules kept here:
--   * every table of the schema is named in this file (the `least_privilege` system test fails
--     on a table that is not, so a new table cannot be forgotten);
--   * append-only tables get SELECT and INSERT only; the others get UPDATE on exactly the columns
--     their owner module sets;
--   * nothing gets DELETE or TRUNCATE (the application deletes nothing), and nothing on
--     _sqlx_migrations, which stays the owner's;
--   * sequences of BIGSERIAL keys get USAGE (nextval through the column default), nothing else.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app};
-- Functions: PUBLIC keeps its default EXECUTE where a migration left it (trigger functions,
-- which only their triggers can run); what the role is granted by name is taken back first.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {app};

-- customers.rs: master data (`upsert`); `opted_out` is set only by the consent ledger's trigger
-- (consent_events_apply, SECURITY DEFINER), so it is not in the list. consent.rs locks a row
-- (FOR UPDATE, which needs UPDATE on some column). Phone numbers are written sealed only
-- (migration 15): `phone_e164`, the clear number of rows from before encryption, is in no INSERT
-- or UPDATE list, so the application cannot store a number in clear; `pcn-worker rotate-keys`
-- (as the owner) seals and clears the old ones.
GRANT SELECT ON customers TO {app};
GRANT INSERT (customer_id, account_id, first_name, phone_key_id, phone_sealed, phone_index,
              phone_masked, language, active, monitored_since)
    ON customers TO {app};
GRANT UPDATE (account_id, first_name, phone_key_id, phone_sealed, phone_index, phone_masked,
              language, active, monitored_since, updated_at)
    ON customers TO {app};

-- consent.rs: the ledger and the inbound replies, append-only (the reply's number sealed, with
-- its blind index; never `phone_e164`).
GRANT SELECT, INSERT ON consent_events TO {app};
GRANT SELECT ON inbound_messages TO {app};
GRANT INSERT (carrier, carrier_message_id, phone_key_id, phone_sealed, phone_index, body,
              customer_id, action)
    ON inbound_messages TO {app};
GRANT USAGE ON SEQUENCE consent_events_id_seq, inbound_messages_id_seq TO {app};

-- sweep.rs: the evidence (append-only) and the completed days (insert once).
GRANT SELECT, INSERT ON balance_checks, daily_sweeps TO {app};
-- partitions.rs: balance_checks is partitioned by month (migration 14). Rows reach the partitions
-- through the parent only, so the partitions are granted nothing, except that the default
-- partition (rows whose month has no partition yet) is read to report them, and the daily sweep
-- keeps partitions ahead through the owner's narrowly scoped SECURITY DEFINER function.
GRANT SELECT ON balance_checks_default TO {app};
GRANT EXECUTE ON FUNCTION create_month_partitions(DATE, INTEGER) TO {app};
-- Kept by balance_checks' trigger (tally_balance_checks, SECURITY DEFINER): read only.
GRANT SELECT ON monthly_tallies TO {app};

-- qualify.rs: the decisions, append-only.
GRANT SELECT, INSERT ON qualifications TO {app};

-- notifications.rs: the state machine (`mark_prepared`, `mark_submitted`, `set_state`,
-- `begin_manual_retry`) and the manual retries (`record_retry_run` sets the run id).
GRANT SELECT, INSERT ON notifications, notification_retries TO {app};
GRANT UPDATE (status, attempts, language, encoding, segments, failure_category, detail,
              finished_at, manual_retries, updated_at)
    ON notifications TO {app};
GRANT UPDATE (run_id) ON notification_retries TO {app};

-- attempts.rs: the claims (compare-and-set on status/submissions), the carrier's answer, the
-- outcome; the resolutions of attempts in doubt are append-only.
GRANT SELECT, INSERT ON in_doubt_resolutions TO {app};
-- The recipient sealed (never `phone_e164`); the other columns as the claims write them.
GRANT SELECT ON sms_attempts TO {app};
GRANT INSERT (month, customer_id, attempt, message_ref, carrier, phone_key_id, phone_sealed,
              body, status, carrier_message_id, error_code, failure_category, created_at,
              submitted_at, finished_at, submissions, last_submitted_at)
    ON sms_attempts TO {app};
GRANT UPDATE (status, carrier, carrier_message_id, submissions, last_submitted_at, submitted_at,
              error_code, failure_category, finished_at)
    ON sms_attempts TO {app};
GRANT USAGE ON SEQUENCE in_doubt_resolutions_id_seq TO {app};

-- delivery_events.rs: stored callbacks; the dispatcher's bookkeeping and the FOREIGN flag.
GRANT SELECT, INSERT ON delivery_events TO {app};
GRANT UPDATE (signal_state, signalled_at, signal_attempts, last_signal_error, flag)
    ON delivery_events TO {app};
GRANT USAGE ON SEQUENCE delivery_events_id_seq TO {app};

-- audit.rs: append-only.
GRANT SELECT, INSERT ON audit_log TO {app};
GRANT USAGE ON SEQUENCE audit_log_id_seq TO {app};

-- breaker.rs: the latest change of a carrier's breaker (upsert).
GRANT SELECT, INSERT ON carrier_breakers TO {app};
GRANT UPDATE (state, worker, changed_at) ON carrier_breakers TO {app};

-- budget.rs: the carrier's token bucket (`configure` upserts, `take` and `block` update).
GRANT SELECT, INSERT ON carrier_budgets TO {app};
GRANT UPDATE (rate_per_sec, burst, tokens, refilled_at, blocked_until) ON carrier_budgets TO {app};

-- report_deliveries.rs: the report's e-mail outbox (queue, claim, sent/failed/in doubt, requeue).
GRANT SELECT, INSERT ON report_deliveries TO {app};
GRANT UPDATE (status, request, attempts, next_attempt_at, last_error, message_id, requested_by,
              updated_at, sent_at)
    ON report_deliveries TO {app};
GRANT USAGE ON SEQUENCE report_deliveries_id_seq TO {app};
