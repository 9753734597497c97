-- Exactly once against any carrier (issue 9): a submission whose outcome is unknown is *in doubt*
-- and is resolved by evidence, never blindly repeated; delivery reports that name our reference
-- but another message are kept and flagged, never applied.
--
-- The carriers promise nothing about a repeated reference: the generic API's `messageId` and
-- Twilio's callback `ref` are ours, not idempotency keys the carrier honours. So the only thing
-- that keeps a second SMS away is this table's bookkeeping of what was *sent*.

-- sms_attempts: how often the attempt's reference went to the carrier, and when last.
--   * status UNSENT: the row exists but the last try certainly did not reach the carrier
--     (connection refused, 429, 401/403, 503, a request the carrier refused as malformed);
--     the next execution may send it at once.
--   * status SUBMITTING with no carrier id: IN DOUBT. The carrier may have the message (the
--     worker died, the answer timed out or was cut off). It is sent again only after the
--     resolution rule found no evidence (activities `in_doubt`).
ALTER TABLE sms_attempts
    -- Sends of this reference to the carrier (1 for the first; +1 per resubmission after an
    -- in-doubt period without evidence). A compare-and-set on it lets exactly one execution send.
    ADD COLUMN submissions SMALLINT NOT NULL DEFAULT 1
        CONSTRAINT sms_attempts_submissions_positive CHECK (submissions >= 1),
    -- When the reference last went (or was about to go) to the carrier: the in-doubt period
    -- runs from here.
    ADD COLUMN last_submitted_at TIMESTAMPTZ;
UPDATE sms_attempts SET last_submitted_at = coalesce(submitted_at, created_at);
ALTER TABLE sms_attempts ALTER COLUMN last_submitted_at SET NOT NULL,
    ALTER COLUMN last_submitted_at SET DEFAULT now();

ALTER TABLE sms_attempts DROP CONSTRAINT sms_attempts_status_known,
    ADD CONSTRAINT sms_attempts_status_known CHECK (status IN
        ('UNSENT', 'SUBMITTING', 'SUBMITTED', 'REJECTED', 'DELIVERED', 'FAILED', 'UNDELIVERABLE',
         'NO_CONFIRMATION', 'CANCELLED'));
ALTER TABLE sms_attempts DROP CONSTRAINT sms_attempts_submitted_has_id,
    ADD CONSTRAINT sms_attempts_submitted_has_id
        CHECK (status IN ('UNSENT', 'SUBMITTING', 'REJECTED') OR carrier_message_id IS NOT NULL);
-- Attempt numbers stay small (3 automatic attempts plus manual retries); a callback naming
-- attempt 99999 is refused by the webhook before it gets here.
ALTER TABLE sms_attempts ADD CONSTRAINT sms_attempts_attempt_range CHECK (attempt BETWEEN 1 AND 999);

-- Every resolution of an in-doubt attempt: adopted (with the evidence that showed the carrier has
-- the message) or resubmitted (nothing found within the reconciliation period). Append-only.
CREATE TABLE in_doubt_resolutions (
    id                 BIGSERIAL PRIMARY KEY,
    month              DATE NOT NULL,
    customer_id        TEXT NOT NULL,
    attempt            SMALLINT NOT NULL,
    message_ref        TEXT NOT NULL,
    -- Which send of the reference was in doubt (sms_attempts.submissions at the time).
    submission         SMALLINT NOT NULL,
    -- ADOPTED_CALLBACK: a stored delivery event carried the reference and its carrier id was
    --   confirmed by the carrier. ADOPTED_SIGNAL: a delivery signal the workflow had received.
    -- ADOPTED_LOOKUP: the carrier's message list (Twilio) showed the message.
    -- RESUBMITTED: no evidence within the reconciliation period; sent again, same reference.
    -- ABANDONED: the customer opted out meanwhile; not sent again.
    resolution         TEXT NOT NULL CONSTRAINT in_doubt_resolutions_known CHECK (resolution IN
        ('ADOPTED_CALLBACK', 'ADOPTED_SIGNAL', 'ADOPTED_LOOKUP', 'RESUBMITTED', 'ABANDONED')),
    -- The carrier id adopted (NULL for RESUBMITTED / ABANDONED).
    carrier_message_id TEXT,
    -- How long the attempt had been in doubt when resolved.
    waited             INTERVAL NOT NULL,
    workflow_id        TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    resolved_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT in_doubt_resolutions_attempt_fkey FOREIGN KEY (month, customer_id, attempt)
        REFERENCES sms_attempts (month, customer_id, attempt),
    -- One resolution per send in doubt: two executions racing cannot both resolve it.
    CONSTRAINT in_doubt_resolutions_once UNIQUE (message_ref, submission)
);
CREATE INDEX in_doubt_resolutions_month_idx ON in_doubt_resolutions (month, resolution);
CREATE TRIGGER in_doubt_resolutions_append_only BEFORE UPDATE OR DELETE ON in_doubt_resolutions
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();

-- delivery_events: evidence for in-doubt attempts is found by our reference.
CREATE INDEX delivery_events_message_ref_idx ON delivery_events (message_ref);
-- FOREIGN: a signed report that names our reference but not the carrier id of that attempt (a
-- report about another message). Kept for audit, never applied to the notification.
ALTER TABLE delivery_events
    ADD COLUMN flag TEXT CONSTRAINT delivery_events_flag_known CHECK (flag IN ('FOREIGN'));
-- The monthly report counts the flagged ones (rare) by month of their reference.
CREATE INDEX delivery_events_flagged_idx ON delivery_events (message_ref) WHERE flag IS NOT NULL;
-- The webhook bounds every field before storage; these hold the same bounds in the database so
-- that no single row can make a batch insert fail (NUL bytes are refused by Postgres itself).
ALTER TABLE delivery_events
    ADD CONSTRAINT delivery_events_carrier_message_id_length
        CHECK (char_length(carrier_message_id) BETWEEN 1 AND 128) NOT VALID,
    ADD CONSTRAINT delivery_events_error_code_length CHECK (char_length(error_code) <= 32) NOT VALID,
    ADD CONSTRAINT delivery_events_attempt_range CHECK (attempt BETWEEN 1 AND 999) NOT VALID;
