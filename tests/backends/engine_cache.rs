//! The ledger engine keeps accounts in memory and reloads one when its `lock_version`
//! moved: every path that writes an account row must be seen by the engine's next
//! operation on it, with the engine already holding the account.

use libtest_mimic::Failed;

use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::{AccountId, EntryKind, LedgerError, Recipient};
use iap_sidecar::store::{AlertFilter, AlertUpdate, GrantRequest, Store};

use crate::support::{Backend, DbOptions, TestDb, credits};

fn grant(store: &Store, account_id: AccountId, amount: i64) -> Result<(), LedgerError> {
    store.grant(&GrantRequest {
        account_id,
        amount: credits(amount),
        expires_at: NEVER,
        origin: EntryKind::Grant,
        reference: None,
        description: None,
    })?;
    Ok(())
}

/// Holds `amount` through the engine and gives it back; the refusal if any.
fn hold_and_release(store: &Store, account_id: AccountId, amount: i64) -> Result<(), LedgerError> {
    let (_, token, _) = store.authorize(account_id, credits(amount), 1, None)?;
    store.cancel(&token, None)?;
    Ok(())
}

pub fn engine_sees_account_writes(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let store = &db.store;
    let service = db.service("sms")?;
    let account = db.account(service.id, "tok-cache")?;
    grant(store, account.id, 10)?;
    // From here on the engine holds the account in memory.
    hold_and_release(store, account.id, 1)?;

    // The ledger's own SQL writes (a grant): the new credits can be held at once.
    grant(store, account.id, 5)?;
    hold_and_release(store, account.id, 15).map_err(|e| format!("after a grant: {e}"))?;

    // The catalog: a contact with the token's disabled form flags the account, and the
    // plain token clears the flag again.
    db.account(service.id, "tok-cache+disabled")?;
    match hold_and_release(store, account.id, 1) {
        Err(LedgerError::Disabled) => {}
        other => return Err(format!("a disabled account held credits: {other:?}").into()),
    }
    db.account(service.id, "tok-cache")?;
    hold_and_release(store, account.id, 1).map_err(|e| format!("after re-enabling: {e}"))?;

    // Alert settings: a threshold set now alerts at the engine's next crossing of it.
    store.set_alerts(
        account.id,
        &AlertUpdate {
            threshold: Some(credits(10)),
            warn_me: Some(true),
            recipients: Some(vec![Recipient {
                email: "owner@example.com".into(),
                lang_code: Some("en_US".into()),
            }]),
        },
    )?;
    store.authorize(account.id, credits(6), 1, None)?;
    let queued = store
        .list_alerts(AlertFilter::All, 100)?
        .iter()
        .filter(|a| a.account_id == account.id)
        .count();
    if queued != 1 {
        return Err(
            format!("15 credits less 6 crossed the threshold of 10: {queued} alerts").into(),
        );
    }
    Ok(())
}
