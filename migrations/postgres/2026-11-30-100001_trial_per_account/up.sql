-- Trial credits go once per account as well as once per (service, database). Grants made
-- before this rule beyond an account's first one are kept (their lots are in the ledger)
-- and marked, so that the unique key on the account holds for every grant from now on.
ALTER TABLE trial_grants ADD COLUMN legacy_extra BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE trial_grants SET legacy_extra = TRUE
WHERE EXISTS (
    SELECT 1 FROM trial_grants earlier
    WHERE earlier.account_id = trial_grants.account_id
      AND (earlier.granted_at < trial_grants.granted_at
           OR (earlier.granted_at = trial_grants.granted_at
               AND earlier.dbuuid < trial_grants.dbuuid))
);
CREATE UNIQUE INDEX trial_grants_one_per_account ON trial_grants (account_id)
    WHERE NOT legacy_extra;
