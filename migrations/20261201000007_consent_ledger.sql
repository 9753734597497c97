-- Consent that sticks (issue 9): opting out is a fact with a history, not a column an import
-- overwrites. Under Israel's Communications Law §30A every message after a refusal is a violation.
--
--   * consent_events is the ledger: who opted out or back in, when, through what (the customer's
--     keyword reply, a carrier's "unsubscribed" error, an admin, an import) and why. Append-only.
--   * customers.opted_out is derived from it: a trigger on the ledger sets it, and the database
--     refuses any other change of that column — an UPDATE from anywhere else, or a new customer
--     inserted already opted out, fails.
--   * Opting back in is allowed only through the customer's own START/UNSTOP reply or an admin
--     with a reason (CHECKs below); an import can opt out but never in (the application refuses
--     such a row and says why; the CHECK makes sure).

CREATE TABLE consent_events (
    id                 BIGSERIAL PRIMARY KEY,
    customer_id        TEXT NOT NULL CONSTRAINT consent_events_customer_fkey REFERENCES customers (customer_id),
    -- The state this fact leaves: true = opted out.
    opted_out          BOOLEAN NOT NULL,
    -- INBOUND_KEYWORD: the customer's reply (STOP/… or START/UNSTOP). CARRIER_ERROR: the carrier
    -- refused a message because the recipient unsubscribed there (Twilio 21610). ADMIN: the
    -- control API's SetOptOut. IMPORT: a customer import row with opted_out = true. MIGRATION:
    -- an opt-out recorded before this ledger existed.
    source             TEXT NOT NULL CONSTRAINT consent_events_source_known CHECK (source IN
        ('INBOUND_KEYWORD', 'CARRIER_ERROR', 'ADMIN', 'IMPORT', 'MIGRATION')),
    occurred_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The carrier's id of the inbound reply, or our reference of the refused message.
    carrier_message_id TEXT,
    -- `carrier:generic`, `api:<token name>`, `workflow:sms/…`, `import:<name>`.
    actor              TEXT NOT NULL,
    reason             TEXT,
    -- Business key of the step that wrote it (a retried step does not write it twice).
    idempotency_key    TEXT CONSTRAINT consent_events_idempotency_key_unique UNIQUE,
    -- Back in only by the customer's own word or an admin.
    CONSTRAINT consent_events_opt_in_source CHECK (opted_out OR source IN ('INBOUND_KEYWORD', 'ADMIN')),
    -- An admin who opts a customer back in says why.
    CONSTRAINT consent_events_admin_opt_in_reason CHECK (
        opted_out OR source <> 'ADMIN' OR char_length(btrim(coalesce(reason, ''))) > 0)
);
CREATE INDEX consent_events_customer_idx ON consent_events (customer_id, id);

CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- The ledger sets the derived column.
CREATE FUNCTION consent_events_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customers SET opted_out = NEW.opted_out, updated_at = now()
     WHERE customer_id = NEW.customer_id AND opted_out IS DISTINCT FROM NEW.opted_out;
    RETURN NEW;
END;
$$;
CREATE TRIGGER consent_events_apply AFTER INSERT ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_apply();

-- Nothing else may change it. A change made by the trigger above runs one trigger level deeper
-- (pg_trigger_depth() = 2 here); a direct UPDATE or INSERT runs at level 1.
CREATE FUNCTION customers_opted_out_from_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND (
        (TG_OP = 'INSERT' AND NEW.opted_out)
        OR (TG_OP = 'UPDATE' AND NEW.opted_out IS DISTINCT FROM OLD.opted_out)) THEN
        RAISE EXCEPTION 'customers.opted_out of % changes only through consent_events', NEW.customer_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

-- Opt-outs recorded before the ledger existed become its first facts (before the guard exists,
-- so nothing here can trip it; the apply trigger changes nothing: the column is already true).
INSERT INTO consent_events (customer_id, opted_out, source, actor, reason, idempotency_key)
SELECT customer_id, true, 'MIGRATION', 'migration',
       'opted out before the consent ledger existed', 'migration/' || customer_id
  FROM customers WHERE opted_out;

CREATE TRIGGER customers_opted_out_from_ledger BEFORE INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_opted_out_from_ledger();

-- Inbound replies: START/UNSTOP opt the customer back in.
ALTER TABLE inbound_messages DROP CONSTRAINT inbound_messages_action_known,
    ADD CONSTRAINT inbound_messages_action_known
        CHECK (action IN ('OPTED_OUT', 'OPTED_IN', 'IGNORED'));
