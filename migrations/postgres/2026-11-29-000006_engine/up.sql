-- Writes one batch of the ledger engine (src/store/engine) in one round trip. The
-- ledger's rules stay in Rust: this only stores rows the engine computed from accounts
-- it holds in memory. It first locks the batch's accounts in id order (the order every
-- writer follows, so writers never wait on each other in a cycle) and checks that each
-- still has the lock_version the engine read; if one moved, nothing is written and the
-- error (40001) makes the engine reload those accounts and run the batch again.
CREATE FUNCTION iap_engine_write(
    p_hold_id bigint[], p_hold_account bigint[], p_hold_token text[], p_hold_amount bigint[],
    p_hold_status text[], p_hold_captured bigint[], p_hold_description text[],
    p_hold_created bigint[], p_hold_expires bigint[], p_hold_closed bigint[],
    p_alloc_hold bigint[], p_alloc_lot bigint[], p_alloc_amount bigint[],
    p_lot_id bigint[], p_lot_remaining bigint[],
    p_closed_id bigint[], p_closed_status text[], p_closed_captured bigint[], p_closed_at bigint[],
    p_freed_hold bigint[],
    p_j_account bigint[], p_j_seq bigint[], p_j_kind text[], p_j_amount bigint[],
    p_j_balance_after bigint[], p_j_hold bigint[], p_j_lot bigint[], p_j_description text[],
    p_j_effective bigint[], p_j_recorded bigint[],
    p_a_id bigint[], p_a_balance bigint[], p_a_reserved bigint[], p_a_last_seq bigint[],
    p_a_updated bigint[], p_a_armed boolean[], p_a_version bigint[],
    p_seen_id bigint[], p_seen_version bigint[]
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    unchanged integer;
BEGIN
    SELECT count(*) INTO unchanged
    FROM (SELECT a.id, a.lock_version FROM accounts AS a
          WHERE a.id = ANY (p_seen_id) ORDER BY a.id FOR UPDATE) AS l
    JOIN unnest(p_seen_id, p_seen_version) AS v (id, version)
      ON l.id = v.id AND l.lock_version = v.version;
    IF unchanged <> coalesce(cardinality(p_seen_id), 0) THEN
        RAISE EXCEPTION 'accounts changed since the ledger engine read them'
            USING ERRCODE = '40001';
    END IF;

    INSERT INTO holds (id, account_id, token_hash, amount, status, captured, description,
                       created_at, expires_at, closed_at)
    SELECT * FROM unnest(p_hold_id, p_hold_account, p_hold_token, p_hold_amount, p_hold_status,
                         p_hold_captured, p_hold_description, p_hold_created, p_hold_expires,
                         p_hold_closed);
    INSERT INTO hold_allocations (hold_id, lot_id, amount)
    SELECT * FROM unnest(p_alloc_hold, p_alloc_lot, p_alloc_amount);
    UPDATE lots AS l SET remaining = u.remaining
    FROM unnest(p_lot_id, p_lot_remaining) AS u (id, remaining)
    WHERE l.id = u.id;
    UPDATE holds AS h SET status = u.status, captured = u.captured, closed_at = u.closed_at
    FROM unnest(p_closed_id, p_closed_status, p_closed_captured, p_closed_at)
         AS u (id, status, captured, closed_at)
    WHERE h.id = u.id;
    DELETE FROM hold_allocations WHERE hold_id = ANY (p_freed_hold);
    INSERT INTO journal (account_id, seq, kind, amount, balance_after, hold_id, lot_id,
                         description, effective_at, recorded_at)
    SELECT * FROM unnest(p_j_account, p_j_seq, p_j_kind, p_j_amount, p_j_balance_after, p_j_hold,
                         p_j_lot, p_j_description, p_j_effective, p_j_recorded);
    UPDATE accounts AS a SET balance = u.balance, reserved = u.reserved,
           last_seq = u.last_seq, updated_at = u.updated_at, alert_armed = u.armed,
           lock_version = u.version
    FROM unnest(p_a_id, p_a_balance, p_a_reserved, p_a_last_seq, p_a_updated, p_a_armed, p_a_version)
         AS u (id, balance, reserved, last_seq, updated_at, armed, version)
    WHERE a.id = u.id;
END;
$$;
