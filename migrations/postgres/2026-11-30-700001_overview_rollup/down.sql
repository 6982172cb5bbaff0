DROP INDEX accounts_with_threshold;
DROP INDEX holds_created_at;
DROP INDEX journal_effective_at;
DROP TABLE daily_totals_state;
DROP TABLE daily_totals;
