//! Request and response bodies of the admin API (the OpenAPI document is built from these).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::{self, Amount, PositiveAmount};
use crate::ledger::{
    Account, AccountId, Balance, Credits, Hold, HoldId, JournalEntry, Lot, LotId, Service,
};

/// A service sold for credits.
#[derive(Serialize, ToSchema)]
pub struct ServiceDto {
    /// What Odoo sends as `service_name`.
    pub technical_name: String,
    pub label: String,
    pub unit_name: String,
    pub integer_balance: bool,
    /// Credits granted once per database on first use.
    #[schema(value_type = String, example = "10")]
    pub trial_credits: Credits,
    pub trial_days: i32,
    /// False when only the databases listed at `/databases` may use it.
    pub open_to_all: bool,
    pub created_at: String,
}

impl From<Service> for ServiceDto {
    fn from(s: Service) -> Self {
        ServiceDto {
            technical_name: s.technical_name,
            label: s.label,
            unit_name: s.unit_name,
            integer_balance: s.integer_balance,
            trial_credits: s.trial_credits,
            trial_days: s.trial_days,
            open_to_all: s.open_to_all,
            created_at: s.created_at.to_string(),
        }
    }
}

fn default_unit() -> String {
    "Credits".into()
}

/// A service to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceBody {
    #[schema(example = "sms", pattern = r"^[a-z][a-z0-9_-]{0,63}$")]
    pub technical_name: String,
    #[schema(
        example = "SMS",
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 200
    )]
    pub label: String,
    #[serde(default = "default_unit")]
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 200
    )]
    pub unit_name: String,
    #[serde(default)]
    pub integer_balance: bool,
    #[serde(default)]
    #[schema(value_type = String, example = "0", pattern = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$")]
    pub trial_credits: Amount,
    #[serde(default, deserialize_with = "rules::whole")]
    #[schema(minimum = 0, maximum = 3650)]
    pub trial_days: i32,
}

/// A service with its provider key, shown only in this answer.
#[derive(Serialize, ToSchema)]
pub struct ServiceWithKey {
    pub service: ServiceDto,
    /// The provider's secret key for `/iap/1/authorize|capture|cancel`. Store it now.
    pub key: String,
}

/// Which Odoo databases may use a service.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDatabases {
    /// Every database may use the service; `dbuuids` is then ignored.
    pub open_to_all: bool,
    /// The databases (`database.uuid`) allowed when not open to all.
    #[serde(default)]
    #[schema(schema_with = rules::dbuuid_list_schema)]
    pub dbuuids: Vec<String>,
}

/// Balance figures (decimal strings, 4 decimals at most).
#[derive(Serialize, ToSchema)]
pub struct BalanceDto {
    #[schema(value_type = String, example = "100")]
    pub balance: Credits,
    #[schema(value_type = String, example = "2.5")]
    pub reserved: Credits,
    #[schema(value_type = String, example = "97.5")]
    pub available: Credits,
}

impl From<Balance> for BalanceDto {
    fn from(b: Balance) -> Self {
        BalanceDto {
            balance: b.balance,
            reserved: b.reserved,
            available: b.available,
        }
    }
}

/// An IAP account: one per (service, Odoo account token).
#[derive(Serialize, ToSchema)]
pub struct AccountDto {
    #[schema(value_type = i64)]
    pub id: AccountId,
    pub service: String,
    /// The first characters of `sha1(token)`, to recognise it.
    pub token_hint: String,
    pub dbuuid: Option<String>,
    #[schema(example = "registered")]
    pub state: String,
    pub disabled: bool,
    #[serde(flatten)]
    pub figures: BalanceDto,
    /// Companies the account is restricted to in its Odoo database (empty: shared, or
    /// the database is not registered).
    pub companies: Vec<String>,
    pub alerts: AlertsDto,
    pub created_at: String,
    pub updated_at: String,
}

/// An account's low-credit alert: its settings and whether it will fire.
#[derive(Serialize, ToSchema)]
pub struct AlertsDto {
    /// Alerts fire when available credits fall below this; 0 turns them off.
    #[schema(value_type = String, example = "10")]
    pub threshold: Credits,
    /// Odoo 17's "Warn me" switch (always on for 18 and later).
    pub warn_me: bool,
    pub recipients: Vec<AlertRecipientDto>,
    /// The next fall under the threshold sends an alert (cleared by that alert, set
    /// again once the account is back at or over the threshold).
    pub armed: bool,
}

/// Who is told, in which language.
#[derive(Serialize, ToSchema)]
pub struct AlertRecipientDto {
    pub email: String,
    #[schema(example = "fr_FR")]
    pub lang_code: Option<String>,
}

impl AccountDto {
    pub fn new(a: Account, service: String, figures: Balance, companies: Vec<String>) -> Self {
        let alerts = AlertsDto {
            threshold: a.alerts.threshold,
            warn_me: a.alerts.warn_me,
            recipients: a
                .alerts
                .recipients
                .into_iter()
                .map(|r| AlertRecipientDto {
                    email: r.email,
                    lang_code: r.lang_code,
                })
                .collect(),
            armed: a.alert_armed,
        };
        AccountDto {
            id: a.id,
            service,
            token_hint: a.token_hint,
            dbuuid: a.dbuuid,
            state: a.state.to_string(),
            disabled: a.disabled,
            figures: figures.into(),
            companies,
            alerts,
            created_at: a.created_at.to_string(),
            updated_at: a.updated_at.to_string(),
        }
    }
}

/// Credits that entered together and what is left of them.
#[derive(Serialize, ToSchema)]
pub struct LotDto {
    #[schema(value_type = i64)]
    pub id: LotId,
    #[schema(value_type = String)]
    pub amount: Credits,
    #[schema(value_type = String)]
    pub remaining: Credits,
    /// RFC 3339, or null for credits that never expire.
    pub expires_at: Option<String>,
    pub origin: String,
    pub created_at: String,
}

impl From<Lot> for LotDto {
    fn from(l: Lot) -> Self {
        LotDto {
            id: l.id,
            amount: l.amount,
            remaining: l.remaining,
            expires_at: (!l.expires_at.is_never()).then(|| l.expires_at.to_string()),
            origin: l.origin.to_string(),
            created_at: l.created_at.to_string(),
        }
    }
}

/// Credits reserved by a provider.
#[derive(Serialize, ToSchema)]
pub struct HoldDto {
    #[schema(value_type = i64)]
    pub id: HoldId,
    #[schema(value_type = String)]
    pub amount: Credits,
    pub status: String,
    pub description: Option<String>,
    pub created_at: String,
    pub expires_at: String,
}

impl From<Hold> for HoldDto {
    fn from(h: Hold) -> Self {
        HoldDto {
            id: h.id,
            amount: h.amount,
            status: h.status.to_string(),
            description: h.description,
            created_at: h.created_at.to_string(),
            expires_at: h.expires_at.to_string(),
        }
    }
}

/// An account with its lots and open holds.
#[derive(Serialize, ToSchema)]
pub struct AccountDetail {
    pub account: AccountDto,
    pub lots: Vec<LotDto>,
    pub open_holds: Vec<HoldDto>,
}

/// Credits to add to the account of `account_token` for `service` (registered if new).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    #[schema(example = "sms", pattern = r"^[a-z][a-z0-9_-]{0,63}$")]
    pub service: String,
    /// The Odoo account token (raw, as in `iap.account`).
    #[schema(pattern = r"^[!-*,-~]{1,128}$")]
    pub account_token: String,
    #[schema(value_type = String, example = "100", pattern = r"^([1-9][0-9]{0,11}(\.[0-9]{1,4})?|0\.([1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$")]
    pub amount: PositiveAmount,
    /// RFC 3339 time or `YYYY-MM-DD`, in the future; omitted: never expires.
    #[schema(schema_with = rules::optional_time_schema)]
    pub expires_at: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(pattern = r"^[!-~]{1,64}$")]
    pub dbuuid: Option<String>,
}

/// What a grant did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct GrantResponse {
    #[schema(value_type = i64)]
    pub account_id: AccountId,
    #[schema(value_type = i64)]
    pub lot_id: LotId,
    /// Journal sequence number of the grant.
    pub seq: i64,
    #[schema(value_type = Object)]
    pub balance: serde_json::Value,
}

/// One journal line.
#[derive(Serialize, ToSchema)]
pub struct JournalDto {
    pub seq: i64,
    #[schema(example = "capture")]
    pub kind: String,
    /// Signed decimal: credits in are positive.
    #[schema(example = "-2.5")]
    pub amount: String,
    #[schema(value_type = String)]
    pub balance_after: Credits,
    #[schema(value_type = Option<i64>)]
    pub hold_id: Option<HoldId>,
    #[schema(value_type = Option<i64>)]
    pub lot_id: Option<LotId>,
    pub description: Option<String>,
    pub effective_at: String,
    pub recorded_at: String,
}

impl From<JournalEntry> for JournalDto {
    fn from(e: JournalEntry) -> Self {
        JournalDto {
            amount: e.signed_amount(),
            seq: e.seq,
            kind: e.kind.to_string(),
            balance_after: e.balance_after,
            hold_id: e.hold_id,
            lot_id: e.lot_id,
            description: e.description,
            effective_at: e.effective_at.to_string(),
            recorded_at: e.recorded_at.to_string(),
        }
    }
}

/// A page of journal lines, newest first.
#[derive(Serialize, ToSchema)]
pub struct JournalPage {
    pub entries: Vec<JournalDto>,
    /// Pass as `before_seq` for the next (older) page; null at the end.
    pub next_before_seq: Option<i64>,
}

/// The balance at a past instant.
#[derive(Serialize, ToSchema)]
pub struct BalanceAt {
    pub at: String,
    #[schema(value_type = String)]
    pub balance: Credits,
}
