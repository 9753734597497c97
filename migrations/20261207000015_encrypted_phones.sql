-- Phone numbers encrypted at rest (issue 12, docs/requirements.md#data-protection).
--
-- Every phone number the system stores is sealed with AES-256-GCM by the application
-- (activities/src/phone_vault.rs): `phone_sealed` = 12-byte nonce ‖ ciphertext ‖ tag, and
-- `phone_key_id` names the key of the keyring (PCN_PHONE_KEYS) that sealed it, so keys can be
-- rotated (`pcn-worker rotate-keys`) while old values stay readable. The authenticated context of
-- each value is its table and business key, so a ciphertext copied to another row does not open.
--
-- `phone_index` is HMAC-SHA256 of the E.164 number under a separate key (PCN_PHONE_INDEX_KEY): the
-- blind index that lets an inbound STOP find its customer by number without the number.
-- `customers.phone_masked` is what operators see (`+97250*****67`, the form logs print), so the
-- control API shows a customer without holding the phone key.
--
-- The database cannot encrypt (it never sees a key), so this migration only adds the columns and
-- relaxes `phone_e164` to NULL: rows written before it keep their number in clear until
-- `pcn-worker rotate-keys` seals them and clears `phone_e164` (README, "Keys and rotation").
-- From this migration on the application role may not write `phone_e164` at all (column grants
-- in activities/src/grants.sql), so no new number is stored in clear.

ALTER TABLE customers
    ALTER COLUMN phone_e164 DROP NOT NULL,
    ADD COLUMN phone_key_id TEXT,
    ADD COLUMN phone_sealed BYTEA,
    ADD COLUMN phone_index  BYTEA,
    ADD COLUMN phone_masked TEXT,
    ADD CONSTRAINT customers_phone_sealed_with_key
        CHECK ((phone_sealed IS NULL) = (phone_key_id IS NULL)),
    ADD CONSTRAINT customers_phone_sealed_indexed
        CHECK (phone_sealed IS NULL OR (octet_length(phone_index) = 32 AND phone_masked IS NOT NULL)),
    ADD CONSTRAINT customers_phone_present
        CHECK (phone_sealed IS NOT NULL OR phone_e164 IS NOT NULL);

-- An inbound STOP looks the number up here (and in `phone_e164` for rows not yet sealed).
CREATE INDEX customers_phone_index_idx ON customers (phone_index);

ALTER TABLE sms_attempts
    ALTER COLUMN phone_e164 DROP NOT NULL,
    ADD COLUMN phone_key_id TEXT,
    ADD COLUMN phone_sealed BYTEA,
    ADD CONSTRAINT sms_attempts_phone_sealed_with_key
        CHECK ((phone_sealed IS NULL) = (phone_key_id IS NULL)),
    ADD CONSTRAINT sms_attempts_phone_present
        CHECK (phone_sealed IS NOT NULL OR phone_e164 IS NOT NULL);

ALTER TABLE inbound_messages
    ALTER COLUMN phone_e164 DROP NOT NULL,
    ADD COLUMN phone_key_id TEXT,
    ADD COLUMN phone_sealed BYTEA,
    ADD COLUMN phone_index  BYTEA,
    ADD CONSTRAINT inbound_messages_phone_sealed_with_key
        CHECK ((phone_sealed IS NULL) = (phone_key_id IS NULL)),
    ADD CONSTRAINT inbound_messages_phone_present
        CHECK (phone_sealed IS NOT NULL OR phone_e164 IS NOT NULL);

-- The raw callback bodies are kept for audit with their phone fields masked (the webhook masks
-- them before storing: carrier::events::mask_phones). Bodies stored before this migration are
-- masked here the same way: JSON string fields and form fields named to/from/phoneNumber/
-- phone_number/phone/msisdn/recipient keep only the masked form.
UPDATE delivery_events
   SET raw = regexp_replace(
                 regexp_replace(raw,
                     '("(to|from|phoneNumber|phone_number|phone|msisdn|recipient)"\s*:\s*")(\+?[0-9]{5})[0-9]+([0-9]{2})"',
                     '\1\3*****\4"', 'gi'),
                 '((^|&)(to|from|phoneNumber|phone_number|phone|msisdn|recipient)=)(%2B|\+)?([0-9]{5})[0-9]+([0-9]{2})(?=&|$)',
                 '\1\4\5*****\6', 'gi')
 WHERE raw ~* '(to|from|phone|msisdn|recipient)';
