-- Control API reads (issue 4), found by the API benchmark (100,000 customers, 32 clients).

-- GetCustomer reads a customer's attempts across months; the primary key starts with the month,
-- so without this every call scanned it whole (and the scan grows every month).
CREATE INDEX sms_attempts_customer_idx ON sms_attempts (customer_id, month, attempt);

-- GetMonth counts a month's decisions by reason: an index-only scan instead of reading 100,000
-- heap rows.
CREATE INDEX qualifications_month_reason_idx ON qualifications (month, reason);
