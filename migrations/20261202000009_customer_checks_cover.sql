-- GetCustomer reads one customer's month of balance checks: 31 rows that the sweep wrote on 31
-- different evenings, so they lie in 31 different heap pages — 31 random reads when the table no
-- longer fits in memory (255 M rows after 7 years). This index holds everything that read
-- returns, in (customer, date) order, so the read is an index-only scan of one or two leaf pages.
CREATE INDEX balance_checks_customer_cover_idx ON balance_checks (customer_id, business_date)
    INCLUDE (outcome, amount, threshold, detail, fetched_at);

-- An index-only scan skips the heap only for pages marked all-visible, which VACUUM does. The
-- table is insert-only, so the default (vacuum after inserts of 20 % of the table) would leave
-- weeks of checks unmarked; vacuum after every 100,000 inserts instead (about one daily sweep).
ALTER TABLE balance_checks SET (autovacuum_vacuum_insert_threshold = 100000,
                                autovacuum_vacuum_insert_scale_factor = 0);
