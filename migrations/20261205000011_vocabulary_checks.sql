-- The last stored vocabularies without a CHECK: why a notification or an attempt failed
-- (`FailureCategory`) and what a carrier said about a message (`DeliveryStatus`), spelled as in
-- `pcn_workflows::vocabulary`. The `vocabulary` system test holds every CHECK list of a
-- vocabulary to its enum, so a new word is added in both places or the suite fails.
--
-- Every row written so far used these spellings (the application writes only `as_str()`), so the
-- constraints are validated at once.

ALTER TABLE notifications
    ADD CONSTRAINT notifications_failure_category_known CHECK (failure_category IN
        ('INVALID_NUMBER', 'CARRIER_REJECT', 'RATE_LIMITED', 'PROVIDER_ERROR', 'NETWORK_ERROR',
         'UNDELIVERABLE', 'NO_CONFIRMATION', 'OPTED_OUT', 'CONTENT_FILTERED', 'UNKNOWN'));

ALTER TABLE sms_attempts
    ADD CONSTRAINT sms_attempts_failure_category_known CHECK (failure_category IN
        ('INVALID_NUMBER', 'CARRIER_REJECT', 'RATE_LIMITED', 'PROVIDER_ERROR', 'NETWORK_ERROR',
         'UNDELIVERABLE', 'NO_CONFIRMATION', 'OPTED_OUT', 'CONTENT_FILTERED', 'UNKNOWN'));

ALTER TABLE delivery_events
    ADD CONSTRAINT delivery_events_status_known CHECK (status IN
        ('QUEUED', 'SENT', 'DELIVERED', 'FAILED', 'UNDELIVERABLE', 'NO_STATUS'));
