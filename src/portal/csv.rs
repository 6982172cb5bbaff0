//! The journal as CSV (RFC 4180), for spreadsheets and accounting.

use crate::ledger::JournalEntry;

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

/// The header and one line per entry, in the order given; lines end with CRLF.
pub fn journal(entries: &[JournalEntry]) -> String {
    let mut out = String::from("seq,time_utc,kind,description,amount,balance_after\r\n");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Credits, EntryKind, Timestamp};

    fn entry(seq: i64, amount: i64, description: Option<&str>) -> JournalEntry {
        JournalEntry {
            account_id: 1,
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
            effective_at: Timestamp(1_800_000_000_000_000),
            recorded_at: Timestamp(1_800_000_000_000_000),
        }
    }

    #[test]
    fn quotes_and_guards_text() {
        let csv = journal(&[
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
