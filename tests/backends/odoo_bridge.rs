//! The Odoo bridge: the JSON-RPC client, database registration, company names per account
//! and per-company consumption. Runs against a real Odoo when `ODOO_URL`, `ODOO_DB`,
//! `ODOO_USER` and `ODOO_PASSWORD` are set, and otherwise against a stand-in that answers
//! Odoo's `/jsonrpc` the way Odoo 18 does (the only stand-in the project allows).

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use iap_sidecar::config::Secret;
use iap_sidecar::odoo::{OdooClient, OdooError, TargetPolicy};
use libtest_mimic::Failed;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::real_odoo;
use crate::rpc::Sidecar;
use crate::support::Backend;

pub(crate) const STAND_IN_UUID: &str = "5a1d0000-0000-4000-8000-00000000cafe";
const STAND_IN_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Answers `/jsonrpc` like an Odoo 18 database `standin` with user admin/admin, two
/// companies and one IAP account restricted to the second.
pub(crate) async fn stand_in(body: web::Json<Value>) -> HttpResponse {
    let params = &body["params"];
    let args = &params["args"];
    let id = body["id"].clone();
    let ok = |result: Value| {
        HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
    };
    let authenticated = args[0] == "standin" && args[2] == "admin";
    match (params["service"].as_str(), params["method"].as_str()) {
        (Some("common"), Some("version")) => {
            ok(json!({"server_version": "18.0", "server_serie": "18.0"}))
        }
        (Some("common"), Some("authenticate")) => ok(if authenticated && args[1] == "admin" {
            json!(2)
        } else {
            json!(false)
        }),
        (Some("object"), Some("execute_kw"))
            if args[0] == "standin" && args[1] == 2 && args[2] == "admin" =>
        {
            match (args[3].as_str(), args[4].as_str()) {
                (Some("ir.config_parameter"), Some("get_param")) => ok(json!(STAND_IN_UUID)),
                (Some("res.company"), Some("search_read")) => {
                    ok(json!([{"id": 1, "name": "Main Company"}, {"id": 2, "name": "Branch SA"}]))
                }
                (Some("iap.account"), Some("search_read")) => ok(json!([
                    {"id": 7, "service_name": "reveal", "account_token": STAND_IN_TOKEN, "company_ids": [2]},
                    {"id": 8, "service_name": "reveal", "account_token": "shared-token", "company_ids": []}
                ])),
                // Odoo leaves `result` out when a method returns None.
                (Some("res.partner"), Some("action_none")) => {
                    HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id}))
                }
                _ => HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": 200, "message": "Odoo Server Error",
                    "data": {"name": "builtins.AttributeError", "message": "no such method"}}})),
            }
        }
        (Some("object"), Some("execute_kw")) => {
            HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": 200, "message": "Odoo Server Error",
            "data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}}}))
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Where the bridge tests point: a real Odoo or the stand-in.
struct Target {
    url: String,
    db: String,
    login: String,
    password: String,
    real: bool,
    _server: Option<actix_web::dev::ServerHandle>,
}

fn client(t: &Target, password: &str) -> Result<OdooClient, OdooError> {
    OdooClient::with_policy(
        &t.url,
        &t.db,
        &t.login,
        Secret::new(password),
        Duration::from_secs(15),
        &TargetPolicy::allowing(&target_hosts()),
    )
}

/// The hosts the bridge tests call: the stand-in on loopback, or the real Odoo (often
/// on a private address); the sidecar must be told to allow them.
pub(crate) fn target_hosts() -> Vec<String> {
    let mut hosts = vec!["127.0.0.1".to_owned()];
    if let Some([url, ..]) = real_odoo::configured()
        && let Some(host) = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    {
        hosts.push(host);
    }
    hosts
}

pub fn odoo_bridge(backend: &Backend) -> Result<(), Failed> {
    let sidecar = Sidecar::start_with(backend, |s| s.odoo.allowed_hosts = target_hosts())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let target = match real_odoo::configured() {
        Some([url, db, login, password]) => Target {
            url,
            db,
            login,
            password,
            real: true,
            _server: None,
        },
        None => {
            let server = rt.block_on(async {
                // Like Odoo 17/18 serving one database (`--db-filter`): no JSON-2, and
                // its unknown routes answer a redirect to the login page, not a 404.
                HttpServer::new(|| {
                    App::new()
                        .route("/jsonrpc", web::post().to(stand_in))
                        .route(
                            "/json/2/{tail:.*}",
                            web::post().to(|| async {
                                HttpResponse::SeeOther()
                                    .insert_header(("Location", "/web/login"))
                                    .finish()
                            }),
                        )
                })
                .workers(1)
                .bind(("127.0.0.1", 0))
                .map(|s| {
                    let addr = s.addrs()[0];
                    let server = s.run();
                    let handle = server.handle();
                    tokio::spawn(server);
                    (addr, handle)
                })
            })?;
            Target {
                url: format!("http://{}", server.0),
                db: "standin".into(),
                login: "admin".into(),
                password: "admin".into(),
                real: false,
                _server: Some(server.1),
            }
        }
    };
    let odoo = client(&target, &target.password)?;

    // The client: version, authenticate, typed errors, missing `result`.
    let version = rt.block_on(odoo.version())?;
    let major = version["server_version_info"][0].as_i64().unwrap_or(0);
    assert!(
        if target.real {
            (17..=19).contains(&major)
        } else {
            version["server_version"]
                .as_str()
                .is_some_and(|v| v.starts_with("18"))
        },
        "{version}"
    );
    let uid = rt.block_on(odoo.authenticate())?;
    assert!(uid > 0);
    let refused = rt.block_on(client(&target, "wrong-password")?.authenticate());
    assert!(
        matches!(refused, Err(OdooError::Authentication { .. })),
        "{refused:?}"
    );
    let failed = rt.block_on(odoo.execute_read(
        uid,
        "res.partner",
        "no_such_method",
        json!([[]]),
        json!({}),
    ));
    assert!(
        matches!(&failed, Err(OdooError::Server { name, .. }) if !name.is_empty()),
        "{failed:?}"
    );
    let nowhere = OdooClient::with_policy(
        "http://127.0.0.1:9",
        "x",
        "y",
        Secret::new("z"),
        Duration::from_secs(2),
        &TargetPolicy::allowing(&["127.0.0.1"]),
    )?;
    assert!(matches!(
        rt.block_on(nowhere.version()),
        Err(OdooError::Unreachable { .. })
    ));
    if !target.real {
        let none = rt.block_on(odoo.execute_read(
            uid,
            "res.partner",
            "action_none",
            json!([[]]),
            json!({}),
        ))?;
        assert_eq!(none, Value::Null, "a missing result reads as null");
    }

    // A restricted IAP account in Odoo (created for the real one, built into the stand-in).
    let (dbuuid, token, company_name, created) = if target.real {
        let dbuuid = rt.block_on(odoo.execute_read(
            uid,
            "ir.config_parameter",
            "get_param",
            json!(["database.uuid"]),
            json!({}),
        ))?;
        let company = rt.block_on(odoo.execute_read(
            uid,
            "res.company",
            "search_read",
            json!([[]]),
            json!({"fields": ["name"], "limit": 1}),
        ))?;
        let company_id = company[0]["id"].as_i64().ok_or("no company")?;
        let token = iap_sidecar::ledger::token::random_hex(16);
        let (service_key, service) = service_field(&rt, &odoo, uid, major)?;
        let mut values = json!({"account_token": token, "company_ids": [[6, 0, [company_id]]]});
        values[service_key] = service;
        let created = rt.block_on(odoo.call(
            "object",
            "execute_kw",
            json!([
                target.db,
                uid,
                target.password,
                "iap.account",
                "create",
                [values],
                {}
            ]),
        ))?;
        (
            dbuuid.as_str().ok_or("uuid")?.to_owned(),
            token,
            company[0]["name"].as_str().unwrap_or_default().to_owned(),
            created.as_i64(),
        )
    } else {
        (
            STAND_IN_UUID.to_owned(),
            STAND_IN_TOKEN.to_owned(),
            "Branch SA".to_owned(),
            None,
        )
    };
    let result = registration(&sidecar, &target, &dbuuid, &token, &company_name);
    if let Some(id) = created {
        let _ = rt.block_on(odoo.call(
            "object",
            "execute_kw",
            json!([
                target.db,
                uid,
                target.password,
                "iap.account",
                "unlink",
                [[id]],
                {}
            ]),
        ));
    }
    result
}

/// The field naming the `reveal` service on a new `iap.account` of a real Odoo: its
/// `iap.service` record from 18 on (shipped with `iap`), its name on 17.
fn service_field(
    rt: &tokio::runtime::Runtime,
    odoo: &OdooClient,
    uid: i64,
    major: i64,
) -> Result<(String, Value), Failed> {
    if major < 18 {
        return Ok(("service_name".to_owned(), json!("reveal")));
    }
    let found = rt.block_on(odoo.execute_read(
        uid,
        "iap.service",
        "search_read",
        json!([[["technical_name", "=", "reveal"]]]),
        json!({"fields": ["id"]}),
    ))?;
    let id = found[0]["id"].as_i64().ok_or("no reveal service")?;
    Ok(("service_id".to_owned(), json!(id)))
}

fn registration(
    sidecar: &Sidecar,
    target: &Target,
    dbuuid: &str,
    token: &str,
    company: &str,
) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let base = &sidecar.base;
    let secret = sidecar.db.store.create_registration_secret("odoo-test")?;
    let admin = sidecar.db.store.create_admin_token("bridge-test")?;
    let register = |bearer: &str, uuid: &str| {
        rt.block_on(async {
            let r = http
                .post(format!("{base}/api/v1/databases"))
                .bearer_auth(bearer)
                .json(&json!({"dbuuid": uuid, "url": target.url, "db": target.db,
                              "login": target.login, "api_key": target.password}))
                .send()
                .await
                .expect("sent");
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let (status, body) = register("iapreg_wrong", dbuuid);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = register(&secret, "not-this-database");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("database.uuid mismatch")),
        "{body}"
    );
    let (status, body) = register(&secret, dbuuid);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let db_token = body["database_token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    assert!(
        body["companies"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == company)),
        "{body}"
    );

    // The account as the sidecar knows it: registered through the protocol, charged.
    let reveal = sidecar.service("reveal", "bridge-provider-key", None);
    sidecar.grant(&reveal, token, 10);
    sidecar
        .call(
            "/iap/1/balance",
            json!({"dbuuid": dbuuid, "account_token": token, "service_name": "reveal"}),
        )
        .result();
    let tx = sidecar
        .call("/iap/1/authorize", json!({"account_token": token, "credit": 3, "key": "bridge-provider-key", "description": "job", "ttl": 1}))
        .result()
        .as_str()
        .ok_or("transaction")?
        .to_owned();
    sidecar
        .call(
            "/iap/1/capture",
            json!({"token": tx, "key": "bridge-provider-key", "credit_to_capture": 2.5}),
        )
        .result();

    let get = |path: &str, bearer: &str| {
        rt.block_on(async {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(bearer)
                .send()
                .await
                .expect("sent");
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let account_id = sidecar.db.store.accounts_by_token(
        &iap_sidecar::ledger::token::AccountToken::from_raw(token).ok_or("token")?,
    )?[0]
        .0
        .id;
    let (status, detail) = get(&format!("/api/v1/accounts/{account_id}"), &admin);
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["account"]["companies"], json!([company]), "{detail}");
    let (status, db) = get(&format!("/api/v1/databases/{dbuuid}"), &db_token);
    assert_eq!(status, StatusCode::OK, "{db}");
    let consumption = &db["company_consumption"];
    assert!(
        consumption.as_array().is_some_and(|rows| rows
            .iter()
            .any(|r| r["company"] == company && r["consumed"] == "2.5")),
        "per-company consumption: {db}"
    );

    // The portal names the company too.
    let page = rt.block_on(async {
        let no_redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let entry = no_redirect
            .get(format!(
                "{base}/iap/1/credit?dbuuid={dbuuid}&service_name=reveal&account_token={token}&credit=0"
            ))
            .send()
            .await
            .expect("entry");
        let cookie = entry
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let location = entry.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        no_redirect
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    });
    assert!(
        page.contains(company),
        "the portal page names the company {company:?}"
    );

    // The addon's batched read of its accounts, then a refresh and a disconnect.
    let batch = rt.block_on(async {
        http.post(format!("{base}/api/v1/databases/{dbuuid}/accounts"))
            .bearer_auth(&db_token)
            .json(&json!({"accounts": [{"token": token, "service": "reveal"}, {"token": "unknown", "service": "reveal"}]}))
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")
    });
    assert_eq!(batch[token]["available"], "7.5", "{batch}");
    assert!(
        batch[token]["portal_url"]
            .as_str()
            .is_some_and(|u| u.contains("hashed=1")),
        "{batch}"
    );
    assert!(batch[token]["last_consumption_at"].is_string(), "{batch}");
    assert!(batch.get("unknown").is_none());
    let (status, _) = get(&format!("/api/v1/databases/{dbuuid}"), "iapdb_wrong");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refreshed = rt.block_on(async {
        http.post(format!("{base}/api/v1/databases/{dbuuid}/refresh"))
            .bearer_auth(&db_token)
            .send()
            .await
            .expect("sent")
            .status()
    });
    assert_eq!(refreshed, StatusCode::OK);
    let deleted = rt.block_on(async {
        http.delete(format!("{base}/api/v1/databases/{dbuuid}"))
            .bearer_auth(&db_token)
            .send()
            .await
            .expect("sent")
            .status()
    });
    assert_eq!(deleted, StatusCode::NO_CONTENT);
    let (status, _) = get(&format!("/api/v1/databases/{dbuuid}"), &db_token);
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the token died with the registration"
    );
    eprintln!(
        "[bridge] against {}: registered, company {company:?} on the account, 2.5 consumed by it, batch read, refresh, disconnect",
        if target.real {
            "a real Odoo"
        } else {
            "the stand-in"
        }
    );
    Ok(())
}

/// Per-company consumption counts only what an account consumed while restricted to the
/// company: a capture made while it was shared belongs to no company, and one made after
/// the sidecar saw the restriction does. (Two reads of a database, given as snapshots:
/// the stand-in always answers the same accounts.)
pub fn odoo_restriction_consumption(backend: &Backend) -> Result<(), Failed> {
    use iap_sidecar::odoo::{OdooAccount, OdooProtocol, Snapshot};
    use iap_sidecar::store::OdooCredentials;

    let sidecar = Sidecar::start(backend)?;
    let store = &sidecar.db.store;
    let token = "fedcba9876543210fedcba9876543210";
    let reveal = sidecar.service("reveal", "restriction-provider-key", None);
    sidecar.grant(&reveal, token, 10);
    let snapshot = |company_ids: Vec<i64>| Snapshot {
        dbuuid: STAND_IN_UUID.to_owned(),
        companies: vec![(1, "Main Company".to_owned()), (2, "Branch SA".to_owned())],
        accounts: vec![OdooAccount {
            id: 7,
            service_name: "reveal".to_owned(),
            token: iap_sidecar::ledger::token::AccountToken::from_raw(token).expect("token"),
            token_hash: iap_sidecar::ledger::token::AccountToken::from_raw(token)
                .expect("token")
                .storage_hash(),
            company_ids,
        }],
        protocol: OdooProtocol::JsonRpc,
    };
    let credentials = OdooCredentials {
        dbuuid: STAND_IN_UUID.to_owned(),
        url: "http://127.0.0.1:9".to_owned(),
        db_name: "standin".to_owned(),
        login: "admin".to_owned(),
        api_key: Secret::new("admin"),
    };
    let charge = |credit: i64| -> Result<(), Failed> {
        let tx = sidecar
            .call(
                "/iap/1/authorize",
                json!({"account_token": token, "credit": credit,
                       "key": "restriction-provider-key", "description": "job", "ttl": 1}),
            )
            .result()
            .as_str()
            .ok_or("transaction")?
            .to_owned();
        sidecar
            .call(
                "/iap/1/capture",
                json!({"token": tx, "key": "restriction-provider-key", "credit_to_capture": credit}),
            )
            .result();
        Ok(())
    };

    // Shared when registered: 3 consumed then belong to no company.
    // (The test clock moves only when told: a minute between the steps.)
    store.register_database(&credentials, &snapshot(vec![]), None)?;
    charge(3)?;
    sidecar.db.advance(60_000_000);
    // Restricted to Branch SA from the next read on: only the 2 consumed after count.
    store.save_refresh(STAND_IN_UUID, Ok(&snapshot(vec![2])))?;
    sidecar.db.advance(60_000_000);
    charge(2)?;
    let consumption = store.company_consumption(STAND_IN_UUID)?;
    assert_eq!(consumption.len(), 1, "{consumption:?}");
    assert_eq!(consumption[0].company, "Branch SA");
    assert_eq!(consumption[0].consumed.to_string(), "2", "{consumption:?}");

    // Another read with the same restriction keeps its start.
    sidecar.db.advance(60_000_000);
    store.save_refresh(STAND_IN_UUID, Ok(&snapshot(vec![2])))?;
    let consumption = store.company_consumption(STAND_IN_UUID)?;
    assert_eq!(consumption[0].consumed.to_string(), "2", "{consumption:?}");

    // The database list says how it was read, to operators too.
    let listed = store.list_databases()?;
    assert_eq!(listed[0].protocol, OdooProtocol::JsonRpc);
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_iap-sidecar"))
        .args(["database", "list"])
        .env("IAP_SIDECAR__DATABASE__URL", sidecar.db.url())
        .env("IAP_SIDECAR__LOG__LEVEL", "warn")
        .output()?;
    let out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        out.contains(STAND_IN_UUID) && out.contains("over jsonrpc"),
        "database list: {out}"
    );
    Ok(())
}
