-- iap_engine_write touches a batch's few rows by primary key. Its statements join the
-- tables with arrays, and their plans are made once per connection, from whatever
-- statistics the tables had then: on a young database (no ANALYZE yet) a plan could scan
-- the whole holds table for every batch, and keep doing so as it grew. Scans and hash or
-- merge joins are never the right plan here, so the function never plans them; the
-- foreign-key checks its writes fire are planned under the same settings.
ALTER FUNCTION iap_engine_write(bigint[], bigint[], text[], bigint[], text[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], boolean[], bigint[], bigint[], bigint[])
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
