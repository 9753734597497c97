-- The monthly report by email: an outbox with one row per (month, recipient). The month workflow
-- (QueueReport, when the month completes) and the control API (SendReport) insert rows; the
-- mailer in `pcn-worker run` claims due rows, sends them over SMTP and records the outcome. Owner:
-- `activities/src/report_deliveries.rs` (the only SQL that writes this table).
--
-- States (`ReportDeliveryStatus`):
--   PENDING  → due for sending at next_attempt_at;
--   SENDING  → claimed by a mailer, the SMTP transaction is running (set before it starts);
--   SENT     → the SMTP server answered 250 to the message (set after that answer);
--   FAILED   → the server refused, or could not be reached: retried at next_attempt_at;
--   IN_DOUBT → the mailer stopped between SENDING and the answer (a crash, a cut connection):
--              the email may have gone, so it is never sent again by itself; an operator may
--              ask for it again (SendReport with resend_in_doubt), which starts a new request.
CREATE TABLE report_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- First day of the reported month (the convention of `qualifications.month`).
    month           DATE NOT NULL
        CONSTRAINT report_deliveries_month_first_day CHECK (EXTRACT(DAY FROM month) = 1),
    -- One configured address (`PCN_REPORT_RECIPIENTS`), as parsed at start-up. A bank's staff
    -- address: no customer data.
    recipient       TEXT NOT NULL
        CONSTRAINT report_deliveries_recipient_sane CHECK (length(recipient) BETWEEN 3 AND 254),
    status          TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT report_deliveries_status_known
        CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'FAILED', 'IN_DOUBT')),
    -- Which request of this email the row serves: 1 for the month's own, +1 for every explicit
    -- resend of an IN_DOUBT row. Part of the Message-ID, so a resend is recognisable.
    request         INTEGER NOT NULL DEFAULT 1
        CONSTRAINT report_deliveries_request_positive CHECK (request >= 1),
    -- SMTP transactions started for the row, over all its requests.
    attempts        INTEGER NOT NULL DEFAULT 0
        CONSTRAINT report_deliveries_attempts_not_negative CHECK (attempts >= 0),
    -- When a PENDING or FAILED row is due.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Why the last attempt failed, or why the row is in doubt (never a password).
    last_error      TEXT,
    -- The Message-ID header of the latest attempt (set when the row is claimed).
    message_id      TEXT,
    -- Who asked: `workflow:qualification/2026-11`, `api:<token name>`.
    requested_by    TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Changed by every transition; for a SENDING row, when it was claimed (the in-doubt rule
    -- compares it with the grace period).
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    -- Exactly one email per recipient per month: the business key of the outbox.
    CONSTRAINT report_deliveries_one_per_recipient UNIQUE (month, recipient),
    CONSTRAINT report_deliveries_sent_when_sent CHECK ((status = 'SENT') = (sent_at IS NOT NULL))
);

-- The mailer's claim: due rows only.
CREATE INDEX report_deliveries_due_idx ON report_deliveries (next_attempt_at)
    WHERE status IN ('PENDING', 'FAILED');

-- The in-doubt rule: SENDING rows by age.
CREATE INDEX report_deliveries_sending_idx ON report_deliveries (updated_at)
    WHERE status = 'SENDING';
