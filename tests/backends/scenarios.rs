//! Deterministic scenarios on a manual clock: expiries and the sweeper, idempotent grants,
//! the append-only journal.

use libtest_mimic::Failed;

use iap_sidecar::ledger::time::NEVER;
use iap_sidecar::ledger::token::{random_hex, sha256_hex, transaction_key};
use iap_sidecar::ledger::{
    AccountId, EntryKind, HoldId, HoldStatus, JournalEntry, LedgerError, LotId, Timestamp,
};
use iap_sidecar::store::{GrantRequest, Idempotency, Store};

use crate::support::{Backend, DbOptions, Figures, HOUR, MINUTE, TestDb, audit_clean, credits};

/// Units of `c` whole credits.
fn u(c: i64) -> i64 {
    credits(c).units()
}

fn grant(store: &Store, account_id: AccountId, amount: i64, expires_at: Timestamp) -> LotId {
    store
        .grant(&GrantRequest {
            account_id,
            amount: credits(amount),
            expires_at,
            origin: EntryKind::Grant,
            reference: None,
            description: None,
        })
        .expect("grant")
        .lot_id
}

fn figures(store: &Store, account_id: AccountId) -> Figures {
    store.balance(account_id).expect("balance").into()
}

/// Figures in whole credits.
fn whole(balance: i64, reserved: i64) -> Figures {
    Figures::new(u(balance), u(reserved))
}

/// Newest entry first.
fn journal(store: &Store, account_id: AccountId) -> Vec<JournalEntry> {
    store.journal(account_id, None, 100).expect("journal")
}

fn balance_at(store: &Store, account_id: AccountId, at: i64) -> i64 {
    store
        .balance_at(account_id, Timestamp::from_micros(at))
        .expect("balance_at")
        .units()
}

fn to_settle(store: &Store) -> Vec<AccountId> {
    store.accounts_to_settle(1000).expect("accounts_to_settle")
}

fn assert_expiry(entry: &JournalEntry, amount: i64, lot: LotId, hold: Option<HoldId>, at: i64) {
    assert_eq!(entry.kind, EntryKind::Expiry, "{entry:?}");
    assert_eq!(entry.amount_units, -u(amount), "{entry:?}");
    assert_eq!(entry.lot_id, Some(lot), "{entry:?}");
    assert_eq!(entry.hold_id, hold, "{entry:?}");
    assert_eq!(entry.effective_at, Timestamp::from_micros(at), "{entry:?}");
}

pub fn expiry_and_sweeper(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::pool(4))?;
    let store = &db.store;
    let service = db.service("sweeper")?;
    let account = |name: &str| db.account(service.id, name).expect("account").id;

    // 1. A hold expires: released at once on reads, closed by the sweeper with no entry.
    let a = account("hold-expiry");
    let t0 = db.now().micros();
    grant(store, a, 100, NEVER);
    let (hold, token, _) = store.authorize(a, credits(30), 1, None)?;
    assert_eq!(hold.expires_at, Timestamp::from_micros(t0 + HOUR));
    assert_eq!(figures(store, a), whole(100, 30));
    db.advance(HOUR - 1);
    assert_eq!(figures(store, a), whole(100, 30), "one µs before expiry");
    assert!(!to_settle(store).contains(&a));
    db.advance(1);
    assert_eq!(
        figures(store, a),
        whole(100, 0),
        "released at its expiry, unsettled"
    );
    assert_eq!(
        store.open_holds(a)?.len(),
        1,
        "not closed before the sweeper runs"
    );
    assert!(
        to_settle(store).contains(&a),
        "the sweeper must see the expired hold"
    );
    assert_eq!(Figures::from(store.settle(a)?), whole(100, 0));
    assert!(store.open_holds(a)?.is_empty());
    assert!(!to_settle(store).contains(&a));
    assert_eq!(journal(store, a).len(), 1, "a hold expiry moves no credits");
    assert!(matches!(
        store.capture(&token, Some(credits(10)), Some(service.id)),
        Err(LedgerError::HoldExpired)
    ));
    let cancelled = store.cancel(&token, Some(service.id))?;
    assert!(cancelled.replayed);
    assert_eq!(cancelled.hold.status, HoldStatus::Expired);
    assert_eq!(Figures::from(cancelled.balance), whole(100, 0));
    assert!(matches!(
        store.capture(&token, Some(credits(30)), None),
        Err(LedgerError::HoldExpired)
    ));
    audit_clean(store, a)?;

    // 2. A capture right after expiry, before any sweep, is refused and changes nothing.
    let a2 = account("capture-after-expiry");
    grant(store, a2, 10, NEVER);
    let (_, token, _) = store.authorize(a2, credits(4), 2, None)?;
    db.advance(2 * HOUR);
    assert!(matches!(
        store.capture(&token, Some(credits(4)), None),
        Err(LedgerError::HoldExpired)
    ));
    assert_eq!(figures(store, a2), whole(10, 0));
    assert!(
        to_settle(store).contains(&a2),
        "the refused capture settled nothing"
    );
    let replay = store.cancel(&token, None)?;
    assert!(replay.replayed);
    assert_eq!(replay.hold.status, HoldStatus::Expired);
    assert!(
        !to_settle(store).contains(&a2),
        "cancel keeps the settlement it made"
    );
    audit_clean(store, a2)?;

    // 3. A lot expires: gone at once on reads; the sweeper writes an expiry entry
    //    effective at the lot's expiry.
    let b = account("lot-expiry");
    let t1 = db.now().micros();
    let lot = grant(store, b, 50, Timestamp::from_micros(t1 + 2 * HOUR));
    grant(store, b, 20, NEVER);
    db.advance(2 * HOUR + 30 * MINUTE);
    assert_eq!(figures(store, b), whole(20, 0), "expired, unsettled");
    let history = |store: &Store| {
        assert_eq!(balance_at(store, b, t1 - 1), 0);
        assert_eq!(balance_at(store, b, t1), u(70));
        assert_eq!(balance_at(store, b, t1 + 2 * HOUR - 1), u(70));
        assert_eq!(balance_at(store, b, t1 + 2 * HOUR), u(20));
        assert_eq!(balance_at(store, b, t1 + 2 * HOUR + MINUTE), u(20));
    };
    history(store);
    assert!(to_settle(store).contains(&b));
    assert_eq!(Figures::from(store.settle(b)?), whole(20, 0));
    assert!(!to_settle(store).contains(&b));
    let entries = journal(store, b);
    assert_eq!(entries.len(), 3);
    assert_expiry(&entries[0], 50, lot, None, t1 + 2 * HOUR);
    assert_eq!(
        entries[0].recorded_at,
        db.now(),
        "written by the sweeper, now"
    );
    assert_eq!(entries[0].balance_after, credits(20));
    history(store);
    audit_clean(store, b)?;

    // 4. A lot expiring while its credits are held stays reserved; capture consumes it.
    let c = account("held-lot-capture");
    let t2 = db.now().micros();
    let lot_a = grant(store, c, 40, Timestamp::from_micros(t2 + HOUR));
    let lot_b = grant(store, c, 20, NEVER);
    let (_, token, _) = store.authorize(c, credits(50), 3, None)?;
    assert_eq!(figures(store, c), whole(60, 50));
    db.advance(HOUR);
    assert_eq!(
        figures(store, c),
        whole(60, 50),
        "held credits do not expire"
    );
    assert!(
        !to_settle(store).contains(&c),
        "nothing left in the lot to expire"
    );
    assert_eq!(Figures::from(store.settle(c)?), whole(60, 50));
    assert_eq!(journal(store, c).len(), 2);
    let captured = store.capture(&token, Some(credits(45)), None)?;
    assert_eq!(Figures::from(captured.balance), whole(15, 0));
    assert_eq!(captured.hold.captured, Some(credits(45)));
    let entries = journal(store, c);
    assert_eq!(entries.len(), 3, "a capture and no expiry: {entries:?}");
    assert_eq!(entries[0].kind, EntryKind::Capture);
    assert_eq!(entries[0].amount_units, -u(45));
    let lots: Vec<(LotId, i64)> = store
        .lots(c)?
        .iter()
        .map(|l| (l.id, l.remaining.units()))
        .collect();
    assert_eq!(
        lots,
        vec![(lot_b, u(15))],
        "40 from the expired lot, 5 from the other"
    );
    assert_ne!(lot_a, lot_b);
    audit_clean(store, c)?;

    // 5. Cancelling such a hold after the lot expired expires its part at once.
    let d = account("held-lot-cancel");
    let t3 = db.now().micros();
    let lot_a = grant(store, d, 40, Timestamp::from_micros(t3 + HOUR));
    let lot_b = grant(store, d, 20, NEVER);
    let (hold, token, _) = store.authorize(d, credits(50), 3, None)?;
    db.advance(90 * MINUTE);
    let cancelled = store.cancel(&token, None)?;
    assert!(!cancelled.replayed);
    assert_eq!(cancelled.hold.status, HoldStatus::Cancelled);
    assert_eq!(Figures::from(cancelled.balance), whole(20, 0));
    let entries = journal(store, d);
    assert_eq!(entries.len(), 3);
    assert_expiry(&entries[0], 40, lot_a, Some(hold.id), db.now().micros());
    let lots: Vec<(LotId, i64)> = store
        .lots(d)?
        .iter()
        .map(|l| (l.id, l.remaining.units()))
        .collect();
    assert_eq!(lots, vec![(lot_b, u(20))]);
    assert_eq!(balance_at(store, d, db.now().micros() - 1), u(60));
    audit_clean(store, d)?;

    // 6. A partial capture after the lot expired: what is left of that lot expires.
    let e = account("held-lot-partial");
    let t4 = db.now().micros();
    let lot_a = grant(store, e, 40, Timestamp::from_micros(t4 + HOUR));
    grant(store, e, 20, NEVER);
    let (hold, token, _) = store.authorize(e, credits(50), 3, None)?;
    db.advance(HOUR);
    let captured = store.capture(&token, Some(credits(30)), None)?;
    assert_eq!(Figures::from(captured.balance), whole(20, 0));
    let entries = journal(store, e);
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[1].kind, EntryKind::Capture);
    assert_eq!(entries[1].amount_units, -u(30));
    assert_expiry(&entries[0], 10, lot_a, Some(hold.id), db.now().micros());
    audit_clean(store, e)?;

    // 7. A hold expiring after its lot: the held part expires with the hold.
    let f = account("hold-outlives-lot");
    let t5 = db.now().micros();
    let lot_a = grant(store, f, 40, Timestamp::from_micros(t5 + HOUR));
    grant(store, f, 20, NEVER);
    let (hold, _, _) = store.authorize(f, credits(50), 2, None)?;
    db.advance(2 * HOUR);
    assert_eq!(figures(store, f), whole(20, 0));
    let history = |store: &Store| {
        assert_eq!(
            balance_at(store, f, t5 + HOUR),
            u(60),
            "held credits still count"
        );
        assert_eq!(balance_at(store, f, t5 + 2 * HOUR - 1), u(60));
        assert_eq!(balance_at(store, f, t5 + 2 * HOUR), u(20));
    };
    history(store);
    assert!(to_settle(store).contains(&f));
    assert_eq!(Figures::from(store.settle(f)?), whole(20, 0));
    let entries = journal(store, f);
    assert_eq!(entries.len(), 3);
    assert_expiry(&entries[0], 40, lot_a, Some(hold.id), t5 + 2 * HOUR);
    history(store);
    audit_clean(store, f)?;

    // 8. Hold and lot expiring at the same instant: the hold gives its credits back first,
    //    then the lot expires whole (one lot expiry, no hold on it).
    let g = account("same-instant");
    let t6 = db.now().micros();
    let lot_a = grant(store, g, 40, Timestamp::from_micros(t6 + 2 * HOUR));
    let (hold, token, _) = store.authorize(g, credits(30), 2, None)?;
    assert_eq!(hold.expires_at, Timestamp::from_micros(t6 + 2 * HOUR));
    db.advance(2 * HOUR);
    assert_eq!(figures(store, g), whole(0, 0));
    assert_eq!(balance_at(store, g, t6 + 2 * HOUR - 1), u(40));
    assert_eq!(Figures::from(store.settle(g)?), whole(0, 0));
    let entries = journal(store, g);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_expiry(&entries[0], 40, lot_a, None, t6 + 2 * HOUR);
    assert!(matches!(
        store.capture(&token, Some(credits(30)), None),
        Err(LedgerError::HoldExpired)
    ));
    audit_clean(store, g)?;

    assert!(to_settle(store).is_empty(), "everything settled");
    Ok(())
}

/// A replayed capture settles the account like any write: what expired meanwhile is
/// written and the account totals follow.
pub fn replayed_capture_keeps_settlement(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::pool(4))?;
    let store = &db.store;
    let service = db.service("replay")?;
    let a = db.account(service.id, "replay")?.id;
    let t0 = db.now().micros();
    grant(store, a, 100, NEVER);
    let (_, token, _) = store.authorize(a, credits(20), 6, None)?;
    let first = store.capture(&token, Some(credits(20)), Some(service.id))?;
    assert!(!first.replayed);
    let lot = grant(store, a, 10, Timestamp::from_micros(t0 + HOUR));
    let (_, _other, _) = store.authorize(a, credits(5), 1, None)?;
    assert_eq!(figures(store, a), whole(90, 5));
    db.advance(2 * HOUR);
    assert_eq!(figures(store, a), whole(80, 0));

    let again = store.capture(&token, Some(credits(20)), Some(service.id))?;
    assert!(again.replayed);
    assert_eq!(again.hold.status, HoldStatus::Captured);
    assert_eq!(Figures::from(again.balance), whole(80, 0));
    assert_eq!(figures(store, a), whole(80, 0));
    audit_clean(store, a)?;

    // The next write must find a consistent account (no journal sequence reused).
    let next = store.grant(&GrantRequest {
        account_id: a,
        amount: credits(5),
        expires_at: NEVER,
        origin: EntryKind::Grant,
        reference: None,
        description: None,
    })?;
    assert_eq!(Figures::from(next.balance), whole(85, 0));
    let entries = journal(store, a);
    let seqs: Vec<i64> = entries.iter().rev().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    // The lot's 5 unheld credits and the 5 held by the expired hold expire.
    assert_eq!(entries[1].kind, EntryKind::Expiry);
    assert_eq!(entries[1].lot_id, Some(lot));
    assert_eq!(entries[1].amount_units, -u(10));
    audit_clean(store, a)?;
    Ok(())
}

pub fn idempotent_grant(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::pool(4))?;
    let store = &db.store;
    let service = db.service("idem")?;
    let a = db.account(service.id, "idem")?.id;
    let request = GrantRequest {
        account_id: a,
        amount: credits(10),
        expires_at: NEVER,
        origin: EntryKind::Topup,
        reference: Some("order-1"),
        description: Some("top-up"),
    };
    let key = Idempotency {
        scope: "admin:alice",
        key: "k-1",
        request_hash: sha256_hex("body-1"),
    };
    let (first, replayed) = store.grant_idempotent(&request, &key)?;
    assert!(!replayed);
    assert_eq!(first["seq"], 1);
    assert_eq!(first["balance"]["balance"], "10");

    db.advance(MINUTE);
    let (second, replayed) = store.grant_idempotent(&request, &key)?;
    assert!(replayed, "the retry must be a replay");
    assert_eq!(second, first, "the replay answers the first answer");
    assert_eq!(second.to_string(), first.to_string());
    assert_eq!(journal(store, a).len(), 1, "one grant only");
    assert_eq!(figures(store, a), whole(10, 0));

    let other_body = Idempotency {
        request_hash: sha256_hex("body-2"),
        ..key.clone()
    };
    assert!(matches!(
        store.grant_idempotent(&request, &other_body),
        Err(LedgerError::IdempotencyMismatch)
    ));
    assert_eq!(journal(store, a).len(), 1);

    // Keys never collide across scopes.
    let other_scope = Idempotency {
        scope: "admin:bob",
        ..key.clone()
    };
    let (third, replayed) = store.grant_idempotent(&request, &other_scope)?;
    assert!(!replayed);
    assert_eq!(third["seq"], 2);
    assert_eq!(journal(store, a).len(), 2);
    assert_eq!(figures(store, a), whole(20, 0));
    audit_clean(store, a)?;
    Ok(())
}

pub fn journal_is_append_only(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::pool(2))?;
    let store = &db.store;
    let service = db.service("journal")?;
    let a = db.account(service.id, "journal")?.id;
    grant(store, a, 7, NEVER);
    let before = journal(store, a);
    assert_eq!(before.len(), 1);

    let mut statements = vec![
        "UPDATE journal SET amount = 0".to_owned(),
        format!("UPDATE journal SET description = 'x' WHERE account_id = {a}"),
        "DELETE FROM journal".to_owned(),
        format!("DELETE FROM journal WHERE account_id = {a}"),
    ];
    if backend.is_postgres() {
        statements.push("TRUNCATE journal".to_owned());
    }
    for sql in &statements {
        match db.raw_execute(sql) {
            Ok(n) => panic!("{sql:?} succeeded ({n} rows): the journal must be append-only"),
            Err(e) => assert!(e.contains("append-only"), "{sql:?} failed otherwise: {e}"),
        }
    }
    let after = journal(store, a);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].amount_units, before[0].amount_units);
    assert_eq!(after[0].description, before[0].description);
    audit_clean(store, a)?;
    Ok(())
}

/// Transaction tokens open with their creation time, and so does the key stored for
/// them; a token made before that (40 hex digits, stored under its SHA-256 alone) must
/// still capture, and each form must find only its own hold.
pub fn transaction_token_forms(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let store = &db.store;
    let service = db.service("tokens")?;
    let a = db.account(service.id, "tokens")?.id;
    grant(store, a, 10, NEVER);
    let (_, current, _) = store.authorize(a, credits(3), 1, None)?;
    let time = format!("{:014x}", db.now().micros());
    assert!(
        current.starts_with(&time),
        "{current} should open with {time}"
    );
    assert_eq!(current.len(), 54, "{current}");

    // What an older sidecar left: the same hold, stored under the old token's hash.
    let old = random_hex(20);
    let moved = db.raw_execute(&format!(
        "UPDATE holds SET token_hash = '{}' WHERE token_hash = '{}'",
        sha256_hex(&old),
        transaction_key(&current)
    ))?;
    assert_eq!(moved, 1);
    // A store started afresh, as after an upgrade: nothing of the hold in memory.
    let upgraded = db.another_store()?;
    match upgraded.capture(&current, None, Some(service.id)) {
        Err(LedgerError::UnknownHold) => {}
        other => return Err(format!("the moved token still captured: {other:?}").into()),
    }
    let captured = upgraded.capture(&old, None, Some(service.id))?;
    assert_eq!(captured.hold.captured, Some(credits(3)));
    assert_eq!(figures(&upgraded, a), whole(7, 0));
    audit_clean(&upgraded, a)?;
    Ok(())
}
