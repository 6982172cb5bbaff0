//! What the sidecar reads from a registered Odoo database.

use serde_json::{Value, json};

use super::client::{OdooClient, OdooError, OdooProtocol};
use crate::ledger::token::AccountToken;

/// An `iap.account` as the sidecar keeps it: no token, only its lookup hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OdooAccount {
    pub id: i64,
    pub service_name: String,
    /// The token as Odoo holds it, kept in memory only: the registered database's read is
    /// an authenticated first contact that opens the account (`usecase::contact`).
    pub token: AccountToken,
    pub token_hash: String,
    /// Empty: shared by every company.
    pub company_ids: Vec<i64>,
}

/// One read of a database.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub dbuuid: String,
    pub companies: Vec<(i64, String)>,
    pub accounts: Vec<OdooAccount>,
    /// How the database was read (kept: `iap-sidecar database list` shows it).
    pub protocol: OdooProtocol,
}

fn ids(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// Logs in (JSON-2 where the server has it, else `/jsonrpc`), then reads
/// `database.uuid`, the companies and the IAP accounts.
pub async fn read_database(client: &OdooClient) -> Result<Snapshot, OdooError> {
    let session = client.login().await?;
    let dbuuid = client
        .read_model(
            session,
            "ir.config_parameter",
            "get_param",
            json!({"key": "database.uuid"}),
        )
        .await?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| OdooError::Protocol("database.uuid is not readable by this user".into()))?;
    let companies = client
        .read_model(
            session,
            "res.company",
            "search_read",
            json!({"domain": [], "fields": ["name"]}),
        )
        .await?;
    let accounts = client
        .read_model(
            session,
            "iap.account",
            "search_read",
            json!({"domain": [], "fields": ["service_name", "account_token", "company_ids"]}),
        )
        .await?;
    let companies = companies
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["id"].as_i64()?, r["name"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let accounts = accounts
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    let token = AccountToken::from_raw(r["account_token"].as_str()?)?;
                    Some(OdooAccount {
                        id: r["id"].as_i64()?,
                        service_name: r["service_name"].as_str()?.to_owned(),
                        token_hash: token.storage_hash(),
                        token,
                        company_ids: ids(&r["company_ids"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Snapshot {
        dbuuid,
        companies,
        accounts,
        protocol: session.protocol(),
    })
}
