//! Ledger records as the domain sees them (ids, amounts, times), independent of storage.

use super::{AccountId, Credits, HoldId, LedgerError, LotId, ServiceId, Timestamp};

/// An enum stored and shown as fixed words (`as_str`, `parse`, `Display`, serde in
/// snake case); extra derives go in the attributes (e.g. `#[derive(utoipa::ToSchema)]`).
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Lifecycle of a hold: open until captured, cancelled or expired.
    HoldStatus { Open => "open", Captured => "captured", Cancelled => "cancelled", Expired => "expired" }
}

text_enum! {
    /// Why a journal entry moved the balance.
    EntryKind { Grant => "grant", Topup => "topup", Trial => "trial", Capture => "capture", Expiry => "expiry" }
}

text_enum! {
    /// Registration state as Odoo's `get-accounts-information` reports it.
    AccountState { Registered => "registered", Unregistered => "unregistered", Banned => "banned" }
}

/// A service sold for credits (what Odoo calls `service_name` is its technical name).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub technical_name: String,
    pub label: String,
    pub unit_name: String,
    pub integer_balance: bool,
    #[serde(skip)]
    pub key_hash: String,
    pub trial_credits: Credits,
    pub trial_days: i32,
    pub created_at: Timestamp,
    /// Open to every database; otherwise only to the databases listed for it.
    pub open_to_all: bool,
}

impl Service {
    /// When trial credits granted at `now` expire: after `trial_days`, or never when 0.
    pub fn trial_expiry(&self, now: Timestamp) -> Timestamp {
        if self.trial_days > 0 {
            now.plus_micros(i64::from(self.trial_days) * super::time::MICROS_PER_DAY)
        } else {
            super::time::NEVER
        }
    }
}

/// One account per (service, account token); balances are kept as running totals that
/// always equal the journal's sum (balance) and the open holds' sum (reserved).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Account {
    pub id: AccountId,
    pub service_id: ServiceId,
    #[serde(skip)]
    pub token_hash: String,
    pub token_hint: String,
    pub dbuuid: Option<String>,
    pub state: AccountState,
    pub disabled: bool,
    pub balance: Credits,
    pub reserved: Credits,
    /// Sequence number of the newest journal entry (0 when none).
    pub last_seq: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub alerts: AlertSettings,
    /// Whether a fall below the threshold sends an alert (cleared by the alert, set again
    /// by a top-up that lifts the account back over the threshold).
    pub alert_armed: bool,
}

/// Who is told, and below what, when an account runs low.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertSettings {
    /// Alerts fire when available credits fall below this; 0 turns them off.
    pub threshold: Credits,
    /// Odoo 17's "Warn me" switch (always on for 18 and later).
    pub warn_me: bool,
    pub recipients: Vec<Recipient>,
}

/// An alert recipient with the language to write in (`fr_FR`, `en_US`, …).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipient {
    pub email: String,
    pub lang_code: Option<String>,
}

impl Recipient {
    /// A plausible single e-mail address (also checked by the portal's alert form).
    pub fn plausible_email(email: &str) -> bool {
        let Some((local, domain)) = email.split_once('@') else {
            return false;
        };
        email.len() <= 254
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.contains(|c: char| c.is_whitespace() || c == ',' || c == '<' || c == '>')
            && !domain.contains('@')
    }
}

/// A service to register.
#[derive(Clone, Debug)]
pub struct NewService {
    pub technical_name: String,
    pub label: String,
    pub unit_name: String,
    pub integer_balance: bool,
    pub trial_credits: Credits,
    pub trial_days: i32,
}

impl NewService {
    /// Technical names are what Odoo sends as `service_name`: lowercase words.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let name = &self.technical_name;
        if !super::text::service_name(name) {
            return Err(LedgerError::Invalid(format!(
                "technical name {name:?} must be 1-64 characters: a-z first, then a-z, 0-9, _ or -"
            )));
        }
        for (field, value) in [("label", &self.label), ("unit name", &self.unit_name)] {
            if !super::text::visible_text(value, 200) {
                return Err(LedgerError::Invalid(format!(
                    "{field} must be 1-200 characters, not only spaces, no control characters"
                )));
            }
        }
        if !super::text::trial_days(self.trial_days) {
            return Err(LedgerError::Invalid(
                "trial days must be between 0 and 3650".into(),
            ));
        }
        Ok(())
    }
}

/// Credits that entered an account together (grant, top-up, trial).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Lot {
    pub id: LotId,
    pub account_id: AccountId,
    pub amount: Credits,
    /// Neither consumed, reserved by a hold, nor expired.
    pub remaining: Credits,
    pub expires_at: Timestamp,
    pub origin: EntryKind,
    pub reference: Option<String>,
    pub created_at: Timestamp,
}

/// Credits reserved for a provider until captured, cancelled or expired.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hold {
    pub id: HoldId,
    pub account_id: AccountId,
    #[serde(skip)]
    pub token_hash: String,
    pub amount: Credits,
    pub status: HoldStatus,
    pub captured: Option<Credits>,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// The part of a hold drawn from one lot; returned to that lot when the hold is released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub hold_id: HoldId,
    pub lot_id: LotId,
    pub amount: Credits,
}

/// An append-only journal line. `amount` is signed: credits in are positive.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JournalEntry {
    pub account_id: AccountId,
    pub seq: i64,
    pub kind: EntryKind,
    /// Signed units (credits × 10,000) as stored; see [`JournalEntry::signed_amount`].
    #[serde(skip)]
    pub amount_units: i64,
    pub balance_after: Credits,
    pub hold_id: Option<HoldId>,
    pub lot_id: Option<LotId>,
    pub description: Option<String>,
    /// When the movement took effect (a lot's expiry time for expiries).
    pub effective_at: Timestamp,
    /// When it was written.
    pub recorded_at: Timestamp,
}

impl JournalEntry {
    /// The movement as a signed decimal string (`-2.5`, `10`).
    pub fn signed_amount(&self) -> String {
        let magnitude = Credits::from_units(self.amount_units.unsigned_abs() as i64)
            .map(|c| c.to_string())
            .unwrap_or_else(|_| self.amount_units.to_string());
        if self.amount_units < 0 {
            format!("-{magnitude}")
        } else {
            magnitude
        }
    }
}

/// Balance figures of an account at one instant, with expired holds and lots settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    pub balance: Credits,
    pub reserved: Credits,
    pub available: Credits,
}
