//! The journal as CSV (RFC 4180), for spreadsheets and accounting, streamed: the
//! export reads the journal one keyset page at a time and sends each page as it is
//! written, so its memory does not grow with the journal (a busy account has hundreds of
//! thousands of lines).

use actix_web::web::{self, Bytes};
use futures_util::Stream;
use futures_util::stream;

use crate::ledger::{AccountId, JournalEntry, LedgerError};
use crate::store::Store;

/// Journal lines read and sent at a time: what one export holds in memory.
pub const PAGE_LINES: i64 = 1000;

/// The first line.
pub const HEADER: &str = "seq,time_utc,kind,description,amount,balance_after\r\n";

/// One field, quoted when needed. Text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first) is prefixed with `'` (CSV injection); numbers are not text.
fn field(out: &mut String, value: &str, text: bool) {
    let guarded;
    let value = if text && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One line per entry, in the order given; lines end with CRLF.
pub fn lines(entries: &[JournalEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.seq.to_string());
        out.push(',');
        field(&mut out, &e.effective_at.to_string(), false);
        out.push(',');
        out.push_str(e.kind.as_str());
        out.push(',');
        field(&mut out, e.description.as_deref().unwrap_or(""), true);
        out.push(',');
        out.push_str(&e.signed_amount());
        out.push(',');
        out.push_str(&e.balance_after.to_string());
        out.push_str("\r\n");
    }
    out
}

/// Where the export stands between two pages.
enum Cursor {
    Start,
    After(i64),
    Done,
}

/// The whole statement of `account_id`, oldest first, as a stream of CSV pieces: the
/// header with the first page, then one piece per page. An error after the first piece
/// ends the stream, so the client sees a cut-off body (no final chunk), never a short
/// file that looks whole.
pub fn journal_stream(
    store: Store,
    account_id: AccountId,
) -> impl Stream<Item = Result<Bytes, LedgerError>> {
    stream::unfold(Cursor::Start, move |cursor| {
        let store = store.clone();
        async move {
            let (first, after) = match cursor {
                Cursor::Done => return None,
                Cursor::Start => (true, None),
                Cursor::After(seq) => (false, Some(seq)),
            };
            let page = web::block(move || store.journal_after(account_id, after, PAGE_LINES))
                .await
                .map_err(|e| LedgerError::from(crate::ledger::StorageError::failed(e)))
                .and_then(|page| page);
            let page = match page {
                Ok(page) => page,
                Err(e) => return Some((Err(e), Cursor::Done)),
            };
            let next = match page.last() {
                Some(last) if i64::try_from(page.len()).is_ok_and(|n| n == PAGE_LINES) => {
                    Cursor::After(last.seq)
                }
                _ => Cursor::Done,
            };
            let mut out = if first {
                HEADER.to_owned()
            } else {
                String::new()
            };
            out.push_str(&lines(&page));
            Some((Ok(Bytes::from(out)), next))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Credits, EntryKind, Timestamp};

    fn entry(seq: i64, amount: i64, description: Option<&str>) -> JournalEntry {
        JournalEntry {
            account_id: AccountId::from_stored(1),
            seq,
            kind: if amount < 0 {
                EntryKind::Capture
            } else {
                EntryKind::Topup
            },
            amount_units: amount,
            balance_after: Credits::from_units(100_000).expect("credits"),
            hold_id: None,
            lot_id: None,
            description: description.map(str::to_owned),
            effective_at: Timestamp::from_micros(1_800_000_000_000_000),
            recorded_at: Timestamp::from_micros(1_800_000_000_000_000),
        }
    }

    #[test]
    fn quotes_and_guards_text() {
        let csv = HEADER.to_owned()
            + &lines(&[
                entry(1, 100_000, Some("Order #1: Pack \"S\", 10")),
                entry(2, -25_000, Some("=HYPERLINK(\"x\")")),
                entry(3, -5, None),
            ]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "seq,time_utc,kind,description,amount,balance_after"
        );
        assert_eq!(
            lines[1],
            "1,2027-01-15T08:00:00.000000Z,topup,\"Order #1: Pack \"\"S\"\", 10\",10,10"
        );
        assert_eq!(
            lines[2],
            "2,2027-01-15T08:00:00.000000Z,capture,\"'=HYPERLINK(\"\"x\"\")\",-2.5,10"
        );
        assert_eq!(
            lines[3],
            "3,2027-01-15T08:00:00.000000Z,capture,,-0.0005,10"
        );
    }
}
