-- The checks of `make chaos` (scripts/chaos.sh), computed on the chaos Postgres, independently of
-- the system's own counters: one row per check, `check|expected|actual|OK or FAIL`.
--
-- psql variables (set by chaos.sh with -v):
--   month      first day of the month under test, YYYY-MM-DD
--   counts     the carrier simulator's GET /admin/messages/counts (JSON object phone → accepted)
--   repeats    the carrier simulator's GET /admin/repeats (JSON, `repeated_references`)
--   phase      the month's phase from `pcnctl month get` at the end
--   exits      how many of the script's processes exited without being killed by the script
--   phones     `customer_id,+972…` lines from the import file: the database holds phones sealed
\set ON_ERROR_STOP on
\pset format unaligned
\pset tuples_only on
\pset fieldsep '|'
\pset footer off

CREATE TEMP TABLE carrier_counts AS
SELECT key AS phone, value::bigint AS messages
  FROM json_each_text(:'counts'::json);

CREATE TEMP TABLE m AS
SELECT :'month'::date AS first_day,
       (:'month'::date + interval '1 month' - interval '1 day')::date AS last_day,
       ((:'month'::date + interval '1 month')::date - :'month'::date) AS days;

-- Independent recount: monitored since (at the latest) the 1st, and a PASSED check on every
-- calendar day of the month.
CREATE TEMP TABLE recount AS
SELECT c.customer_id
  FROM customers c, m
 WHERE c.monitored_since <= m.first_day
   AND (SELECT count(DISTINCT b.business_date)
          FROM balance_checks b
         WHERE b.customer_id = c.customer_id
           AND b.business_date BETWEEN m.first_day AND m.last_day
           AND b.outcome = 'PASSED') = m.days;

CREATE TEMP TABLE decided AS
SELECT q.customer_id FROM qualifications q, m WHERE q.month = m.first_day AND q.qualified;

CREATE TEMP TABLE imported_phones AS
SELECT split_part(line, ',', 1) AS customer_id, split_part(line, ',', 2) AS phone_e164
  FROM regexp_split_to_table(:'phones', E'\n') AS line
 WHERE line <> '';

-- Qualified customers that may be messaged (not opted out), with their phones.
CREATE TEMP TABLE reachable AS
SELECT d.customer_id, p.phone_e164
  FROM decided d JOIN customers c USING (customer_id) JOIN imported_phones p USING (customer_id)
 WHERE NOT c.opted_out;

WITH results(ord, name, expected, actual) AS (
    SELECT 1, 'balance checks = customers x days',
           ((SELECT count(*) FROM customers) * (SELECT days FROM m))::text,
           (SELECT count(*) FROM balance_checks b, m
             WHERE b.business_date BETWEEN m.first_day AND m.last_day)::text
    UNION ALL
    SELECT 2, 'customer-days checked more than once', '0',
           (SELECT count(*) FROM (
               SELECT 1 FROM balance_checks b, m
                WHERE b.business_date BETWEEN m.first_day AND m.last_day
                GROUP BY b.customer_id, b.business_date HAVING count(*) > 1) x)::text
    UNION ALL
    SELECT 3, 'days swept (daily_sweeps rows)', (SELECT days FROM m)::text,
           (SELECT count(*) FROM daily_sweeps s, m
             WHERE s.business_date BETWEEN m.first_day AND m.last_day)::text
    UNION ALL
    SELECT 4, 'PASSED/BELOW outcome contradicting amount', '0',
           (SELECT count(*) FROM balance_checks b, m
             WHERE b.business_date BETWEEN m.first_day AND m.last_day
               AND b.outcome IN ('PASSED', 'BELOW_THRESHOLD')
               AND (b.outcome = 'PASSED') <> (b.amount >= b.threshold))::text
    UNION ALL
    SELECT 5, 'customers decided (qualifications rows)', (SELECT count(*) FROM customers)::text,
           (SELECT count(*) FROM qualifications q, m WHERE q.month = m.first_day)::text
    UNION ALL
    SELECT 6, 'qualified = independent recount', (SELECT count(*) FROM recount)::text,
           (SELECT count(*) FROM decided)::text
    UNION ALL
    SELECT 7, 'recount EXCEPT qualified', '0',
           (SELECT count(*) FROM (SELECT customer_id FROM recount
                                  EXCEPT SELECT customer_id FROM decided) x)::text
    UNION ALL
    SELECT 8, 'qualified EXCEPT recount', '0',
           (SELECT count(*) FROM (SELECT customer_id FROM decided
                                  EXCEPT SELECT customer_id FROM recount) x)::text
    UNION ALL
    SELECT 9, 'notifications = qualified', (SELECT count(*) FROM decided)::text,
           (SELECT count(*) FROM notifications n, m WHERE n.month = m.first_day)::text
    UNION ALL
    SELECT 10, 'notifications not final', '0',
           (SELECT count(*) FROM notifications n, m
             WHERE n.month = m.first_day
               AND (n.finished_at IS NULL
                    OR n.status NOT IN ('DELIVERED', 'FAILED', 'UNDELIVERABLE', 'OPTED_OUT',
                                        'CANCELLED')))::text
    UNION ALL
    SELECT 11, 'qualified phones with exactly 1 message', (SELECT count(*) FROM reachable)::text,
           (SELECT count(*) FROM reachable r JOIN carrier_counts cc ON cc.phone = r.phone_e164
             WHERE cc.messages = 1)::text
    UNION ALL
    SELECT 12, 'qualified phones with 0 or >1 messages', '0',
           (SELECT count(*) FROM reachable r LEFT JOIN carrier_counts cc ON cc.phone = r.phone_e164
             WHERE coalesce(cc.messages, 0) <> 1)::text
    UNION ALL
    SELECT 13, 'messages to phones not qualified', '0',
           (SELECT coalesce(sum(cc.messages), 0) FROM carrier_counts cc
             WHERE cc.phone NOT IN (SELECT phone_e164 FROM reachable))::text
    UNION ALL
    SELECT 14, 'repeated references (carrier)', '0',
           coalesce(:'repeats'::json ->> 'repeated_references', 'unknown')
    UNION ALL
    SELECT 15, 'delivery events PENDING', '0',
           (SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING')::text
    UNION ALL
    SELECT 16, 'month phase', 'COMPLETED', :'phase'
    UNION ALL
    SELECT 17, 'unexpected process exits', '0', :'exits'
)
SELECT name, expected, actual, CASE WHEN expected = actual THEN 'OK' ELSE 'FAIL' END
  FROM results
 ORDER BY ord;
