-- SMS notifications: one per qualified customer and month, every submission attempt, every
-- delivery event the carrier reports, and inbound replies (STOP opts out).
--
-- Who writes what:
--   * notifications: the fan-out inserts one PENDING row per qualified customer (set-based, from
--     `qualifications`); the SMS workflow's activities move it through its states. A final state
--     is never left again (trigger below).
--   * sms_attempts: one row per submission attempt, inserted *before* the carrier is called, keyed
--     by the message reference `sms/YYYY-MM/<customer>#N` that is also the carrier idempotency key.
--     An attempt that has a carrier message id is never submitted again.
--   * delivery_events: written by the webhook before it answers the carrier, idempotent per
--     (carrier, carrier message id, status); then signalled into the workflow by a dispatcher.
--   * inbound_messages: replies from customers, idempotent per carrier message id.

CREATE TABLE notifications (
    -- First day of the month the customer qualified in.
    month             DATE NOT NULL CONSTRAINT notifications_month_first_day CHECK (EXTRACT(DAY FROM month) = 1),
    customer_id       TEXT NOT NULL,
    -- `sms/YYYY-MM/<customer>`: the Temporal workflow id, the business key of the notification.
    workflow_id       TEXT NOT NULL CONSTRAINT notifications_workflow_id_unique UNIQUE,
    -- PENDING: handed to the workflow. WAITING_WINDOW: outside the send window. SUBMITTED: an
    -- attempt is with the carrier. RETRY_WAIT: an attempt failed, the next one waits (6 h).
    -- Final: DELIVERED, FAILED (attempts exhausted), UNDELIVERABLE (permanent failure or no
    -- confirmation within 72 h), OPTED_OUT, CANCELLED.
    status            TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT notifications_status_known CHECK (status IN
            ('PENDING', 'WAITING_WINDOW', 'SUBMITTED', 'RETRY_WAIT',
             'DELIVERED', 'FAILED', 'UNDELIVERABLE', 'OPTED_OUT', 'CANCELLED')),
    -- Attempts submitted so far.
    attempts          SMALLINT NOT NULL DEFAULT 0,
    -- The rendered message: language, encoding and segment count (the text is on the attempt).
    language          TEXT,
    encoding          TEXT,
    segments          SMALLINT,
    -- Why the notification did not end DELIVERED (a FailureCategory), with detail for humans.
    failure_category  TEXT,
    detail            TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    CONSTRAINT notifications_pkey PRIMARY KEY (month, customer_id),
    CONSTRAINT notifications_finished_when_final CHECK (
        (finished_at IS NOT NULL) = (status IN ('DELIVERED', 'FAILED', 'UNDELIVERABLE', 'OPTED_OUT', 'CANCELLED')))
);

-- Progress counts (`GROUP BY status` of a month) and the Web-UI-like listings by status.
CREATE INDEX notifications_month_status_idx ON notifications (month, status);

-- A final state is final: a reset or replayed workflow cannot turn DELIVERED into anything else.
CREATE FUNCTION notifications_keep_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.finished_at IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'notification % is final (%): refusing %', OLD.workflow_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER notifications_final_is_final BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION notifications_keep_final();

CREATE TRIGGER notifications_never_deleted BEFORE DELETE ON notifications
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

CREATE TABLE sms_attempts (
    month              DATE NOT NULL,
    customer_id        TEXT NOT NULL,
    attempt            SMALLINT NOT NULL CONSTRAINT sms_attempts_attempt_positive CHECK (attempt >= 1),
    -- `sms/YYYY-MM/<customer>#N`: idempotency key at the carrier, and how callbacks find us.
    message_ref        TEXT NOT NULL CONSTRAINT sms_attempts_message_ref_unique UNIQUE,
    carrier            TEXT NOT NULL CONSTRAINT sms_attempts_carrier_known CHECK (carrier IN ('generic', 'twilio')),
    -- Masked in logs, kept here: what was sent to whom is the audit record.
    phone_e164         TEXT NOT NULL,
    body               TEXT NOT NULL,
    -- SUBMITTING: row written, carrier not yet confirmed. SUBMITTED: the carrier took it (has a
    -- carrier message id). REJECTED: refused at submission. Then the attempt's outcome.
    status             TEXT NOT NULL DEFAULT 'SUBMITTING'
        CONSTRAINT sms_attempts_status_known CHECK (status IN
            ('SUBMITTING', 'SUBMITTED', 'REJECTED', 'DELIVERED', 'FAILED', 'UNDELIVERABLE',
             'NO_CONFIRMATION', 'CANCELLED')),
    carrier_message_id TEXT,
    error_code         TEXT,
    failure_category   TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    submitted_at       TIMESTAMPTZ,
    finished_at        TIMESTAMPTZ,
    CONSTRAINT sms_attempts_pkey PRIMARY KEY (month, customer_id, attempt),
    CONSTRAINT sms_attempts_notification_fkey FOREIGN KEY (month, customer_id)
        REFERENCES notifications (month, customer_id),
    CONSTRAINT sms_attempts_carrier_message_unique UNIQUE (carrier, carrier_message_id),
    CONSTRAINT sms_attempts_submitted_has_id CHECK (status IN ('SUBMITTING', 'REJECTED') OR carrier_message_id IS NOT NULL)
);

CREATE TRIGGER sms_attempts_never_deleted BEFORE DELETE ON sms_attempts
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

CREATE TABLE delivery_events (
    id                 BIGSERIAL PRIMARY KEY,
    carrier            TEXT NOT NULL,
    carrier_message_id TEXT NOT NULL,
    -- A DeliveryStatus: QUEUED, SENT, DELIVERED, FAILED, UNDELIVERABLE, NO_STATUS.
    status             TEXT NOT NULL,
    error_code         TEXT,
    -- Our reference as the carrier echoed it, and what it leads to.
    message_ref        TEXT NOT NULL,
    workflow_id        TEXT NOT NULL,
    attempt            SMALLINT NOT NULL,
    -- When the carrier says it happened; when we stored it.
    occurred_at        TIMESTAMPTZ,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The request body as received (signature verified), for audit.
    raw                TEXT NOT NULL,
    -- PENDING: to be signalled. SIGNALLED: the workflow has it. WORKFLOW_CLOSED: no running
    -- workflow (finished or unknown): kept, not signalled. NOT_SIGNALLED: a progress report
    -- (QUEUED/SENT/NO_STATUS) that the workflow does not act on.
    signal_state       TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT delivery_events_signal_state_known CHECK (signal_state IN
            ('PENDING', 'SIGNALLED', 'WORKFLOW_CLOSED', 'NOT_SIGNALLED')),
    signal_attempts    INTEGER NOT NULL DEFAULT 0,
    signalled_at       TIMESTAMPTZ,
    last_signal_error  TEXT,
    -- Carriers retry and duplicate callbacks: one row per message and status.
    CONSTRAINT delivery_events_once UNIQUE (carrier, carrier_message_id, status)
);

-- The reconciler scans what is still to be signalled.
CREATE INDEX delivery_events_pending_idx ON delivery_events (id) WHERE signal_state = 'PENDING';
CREATE INDEX delivery_events_workflow_idx ON delivery_events (workflow_id);

CREATE TRIGGER delivery_events_never_deleted BEFORE DELETE ON delivery_events
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

CREATE TABLE inbound_messages (
    id                 BIGSERIAL PRIMARY KEY,
    carrier            TEXT NOT NULL,
    carrier_message_id TEXT NOT NULL,
    phone_e164         TEXT NOT NULL,
    body               TEXT NOT NULL,
    -- The customer the number belongs to, when known.
    customer_id        TEXT,
    -- OPTED_OUT: a STOP keyword opted the customer out. IGNORED: anything else.
    action             TEXT NOT NULL CONSTRAINT inbound_messages_action_known CHECK (action IN ('OPTED_OUT', 'IGNORED')),
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT inbound_messages_once UNIQUE (carrier, carrier_message_id)
);

-- STOP replies find the customer by number.
CREATE INDEX customers_phone_idx ON customers (phone_e164);
