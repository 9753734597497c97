-- Failover (issue 10): the circuit breaker of each carrier as the workers last saw it, so the
-- control API (a separate process) can show it in GetMonth. Each worker keeps its own breaker in
-- memory and writes here only when its state changes: the row is the latest change any worker
-- saw, with the worker that saw it. Owner: activities `breaker`.
CREATE TABLE carrier_breakers (
    -- `generic` or `twilio`.
    carrier     TEXT PRIMARY KEY,
    -- closed: requests go through; open: refused until a probe may go (new submissions go to
    -- the other carrier, or wait); half_open: one probe request is out.
    state       TEXT NOT NULL
        CONSTRAINT carrier_breakers_state_known CHECK (state IN ('closed', 'half_open', 'open')),
    -- When that worker saw the change (database clock).
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Which worker process (host and pid) saw it.
    worker      TEXT NOT NULL
        CONSTRAINT carrier_breakers_worker_bounded CHECK (length(worker) BETWEEN 1 AND 200)
);
