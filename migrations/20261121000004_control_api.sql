-- Control API (issue 4): manual retries of notifications, and the indexes the API's reads need.

-- Manual retries: an operator may give a FAILED or UNDELIVERABLE notification one more attempt
-- (RetryNotification). The notification goes back to PENDING under a new run of the same
-- workflow id; `manual_retries` counts how often that happened.
ALTER TABLE notifications
    ADD COLUMN manual_retries SMALLINT NOT NULL DEFAULT 0
        CONSTRAINT notifications_manual_retries_nonnegative CHECK (manual_retries >= 0);

-- "Final is final" keeps holding, with one exception: a final FAILED or UNDELIVERABLE row may be
-- reopened (to PENDING, finished_at cleared) by exactly one manual retry, which must count itself
-- in `manual_retries` in the same UPDATE. Every other change of a final status is refused.
CREATE OR REPLACE FUNCTION notifications_keep_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.finished_at IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status THEN
        IF OLD.status IN ('FAILED', 'UNDELIVERABLE')
           AND NEW.status = 'PENDING'
           AND NEW.finished_at IS NULL
           AND NEW.manual_retries = OLD.manual_retries + 1 THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'notification % is final (%): refusing %', OLD.workflow_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

-- One row per RetryNotification request id: a repeated request (a client retrying after a lost
-- answer) finds its row and does nothing again. The attempt number is fixed here, before the
-- workflow starts, so even a repeated start sends the same attempt reference (the carrier's
-- idempotency key) and never a second message.
CREATE TABLE notification_retries (
    request_id    TEXT PRIMARY KEY
        CONSTRAINT notification_retries_request_id_format CHECK (request_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    month         DATE NOT NULL,
    customer_id   TEXT NOT NULL,
    -- The attempt the retry sends (previous attempts + 1).
    attempt       SMALLINT NOT NULL CONSTRAINT notification_retries_attempt_positive CHECK (attempt >= 1),
    -- Status the notification had when the retry was accepted (FAILED or UNDELIVERABLE).
    from_status   TEXT NOT NULL CONSTRAINT notification_retries_from_final CHECK (from_status IN ('FAILED', 'UNDELIVERABLE')),
    -- Who asked (`api:<token name>`) and why.
    requested_by  TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    requested_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The workflow run started for it; NULL until the start is confirmed (a repeated request
    -- with a NULL run id starts it, under the same Temporal request id).
    run_id        TEXT,
    CONSTRAINT notification_retries_notification_fkey FOREIGN KEY (month, customer_id)
        REFERENCES notifications (month, customer_id),
    -- One retry per attempt number: two different request ids cannot both send attempt N.
    CONSTRAINT notification_retries_once_per_attempt UNIQUE (month, customer_id, attempt)
);
CREATE TRIGGER notification_retries_never_deleted BEFORE DELETE ON notification_retries
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

-- GetCustomer: a customer's decisions and notifications across months.
CREATE INDEX qualifications_customer_idx ON qualifications (customer_id, month);
CREATE INDEX notifications_customer_idx ON notifications (customer_id, month);
-- ListAuditEntries filters by actor or action, newest first.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
