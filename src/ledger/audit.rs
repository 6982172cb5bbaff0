//! The ledger's invariants, checked on stored totals and the rows behind them.

/// Stored totals next to what the rows say, to check the ledger's invariants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub balance: i64,
    pub journal_sum: i64,
    pub last_balance_after: i64,
    pub reserved: i64,
    pub open_holds_sum: i64,
    pub allocations_sum: i64,
    pub lots_remaining_sum: i64,
}

impl Audit {
    /// Every invariant of the ledger, as one list of broken ones (empty when sound).
    pub fn violations(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                broken.push(what);
            }
        };
        check(
            self.balance == self.journal_sum,
            format!(
                "balance {} != journal sum {}",
                self.balance, self.journal_sum
            ),
        );
        check(
            self.balance == self.last_balance_after,
            format!(
                "balance {} != last balance_after {}",
                self.balance, self.last_balance_after
            ),
        );
        check(
            self.reserved == self.open_holds_sum,
            format!(
                "reserved {} != open holds {}",
                self.reserved, self.open_holds_sum
            ),
        );
        check(
            self.reserved == self.allocations_sum,
            format!(
                "reserved {} != allocations {}",
                self.reserved, self.allocations_sum
            ),
        );
        check(
            self.balance - self.reserved == self.lots_remaining_sum,
            format!(
                "available {} != lots remaining {}",
                self.balance - self.reserved,
                self.lots_remaining_sum
            ),
        );
        check(
            self.balance >= self.reserved && self.reserved >= 0,
            format!(
                "overdraft: balance {} reserved {}",
                self.balance, self.reserved
            ),
        );
        broken
    }
}
