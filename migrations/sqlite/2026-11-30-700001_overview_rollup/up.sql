-- The console overview at scale: its all-time and 30-day figures come from per-day
-- totals of closed days, and only the days still open are summed from the journal and
-- the holds (through the two time indexes below).
--
-- A day is closed once it ended longer ago than the call deadline plus a minute: an
-- entry's effective_at (a hold's created_at) is the clock read by the write that makes
-- it, and that write commits within the call deadline or not at all, so no entry can
-- still land in a closed day (the minute covers clock skew between replicas). Expiry
-- entries are dated back to the expiry and are not rolled up (the overview does not
-- show them).
--
-- Derived data only: the table starts empty and the overview fills it lazily from the
-- journal, so existing databases need nothing copied.
CREATE TABLE daily_totals (
    -- Days since the Unix epoch, UTC.
    day BIGINT NOT NULL,
    service_id BIGINT NOT NULL REFERENCES services (id),
    -- A journal kind (grant, topup, trial, capture), or 'hold' for holds opened.
    kind TEXT NOT NULL,
    -- Sum of the signed journal amounts (or of the hold amounts), in units.
    amount BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    PRIMARY KEY (day, service_id, kind)
);

-- One row: days before `closed_before` (days since the epoch) are in daily_totals.
CREATE TABLE daily_totals_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    closed_before BIGINT NOT NULL
);
INSERT INTO daily_totals_state (id, closed_before) VALUES (1, 0);

-- The open days' live sums, and the rollup of newly closed days, read a time range.
CREATE INDEX journal_effective_at ON journal (effective_at);
CREATE INDEX holds_created_at ON holds (created_at);
-- "Near their threshold" looks only at accounts that have one, not at every account.
-- Charges never change warning_threshold, so they never touch this index.
CREATE INDEX accounts_with_threshold ON accounts (id) WHERE warning_threshold > 0;
