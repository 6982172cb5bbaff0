//! Issue #12, findings 4-7: a registration cannot be taken over or used to probe the
//! sidecar's network, nothing stored opens a portal, and exports stream.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};
use iap_sidecar::config::PortalSettings;
use iap_sidecar::ledger::AccountId;
use iap_sidecar::odoo::TargetPolicy;
use iap_sidecar::pages::session::{AlertLink, Keys};
use iap_sidecar::usecase::databases::refresh_database;
use libtest_mimic::Failed;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::odoo_bridge::{STAND_IN_UUID, stand_in};
use crate::portal_web::Web;
use crate::rpc::Sidecar;
use crate::support::Backend;

/// A stand-in Odoo on loopback that counts the requests it receives.
struct StandIn {
    url: String,
    hits: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
    rt: tokio::runtime::Runtime,
}

impl StandIn {
    fn start() -> Result<StandIn, Failed> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let (addr, handle) = rt.block_on(async move {
            HttpServer::new(move || {
                let counter = Arc::clone(&counter);
                App::new()
                    .wrap_fn(move |req, srv| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        actix_web::dev::Service::call(srv, req)
                    })
                    .route("/jsonrpc", web::post().to(stand_in))
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
        Ok(StandIn {
            url: format!("http://{addr}"),
            hits,
            handle,
            rt,
        })
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.rt.block_on(self.handle.stop(false));
    }
}

/// `POST /api/v1/databases` with `body`: the status and the problem JSON.
fn register(sidecar: &Sidecar, bearer: &str, body: &Value) -> (StatusCode, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/databases", sidecar.base))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .expect("sent");
        (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
    })
}

fn get_status(sidecar: &Sidecar, path: &str, bearer: &str) -> StatusCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}{path}", sidecar.base))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("sent")
            .status()
    })
}

fn stand_in_body(url: &str) -> Value {
    json!({"dbuuid": STAND_IN_UUID, "url": url, "db": "standin", "login": "admin",
           "api_key": "admin"})
}

/// Finding 4: re-registering a dbuuid needs its current database token; anyone else's
/// registration secret gets 409 and the addon's token keeps working.
pub fn registration_takeover(backend: &Backend) -> Result<(), Failed> {
    let odoo = StandIn::start()?;
    let sidecar = Sidecar::start_with(backend, |s| {
        s.odoo.allowed_hosts = vec!["127.0.0.1".into(), "localhost".into()];
    })?;
    let store = &sidecar.db.store;
    let owner = store.create_registration_secret("owner")?;
    let stranger = store.create_registration_secret("stranger")?;
    let detail = format!("/api/v1/databases/{STAND_IN_UUID}");

    let (status, body) = register(&sidecar, &owner, &stand_in_body(&odoo.url));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["database_token"].as_str().ok_or("token")?.to_owned();

    // Another secret, the same dbuuid answered from elsewhere (a copy of the database,
    // or a server that says so): refused, nothing replaced.
    let elsewhere = odoo.url.replace("127.0.0.1", "localhost");
    let mut hijack = stand_in_body(&elsewhere);
    let (status, body) = register(&sidecar, &stranger, &hijack);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    hijack["database_token"] = json!("iapdb_guessed");
    let (status, body) = register(&sidecar, &stranger, &hijack);
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(get_status(&sidecar, &detail, &first), StatusCode::OK);
    let listed = store.list_databases()?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].url, odoo.url, "the registration was not replaced");

    // The addon itself, presenting its token, may register again (a new token).
    let mut again = stand_in_body(&odoo.url);
    again["database_token"] = json!(first);
    let (status, body) = register(&sidecar, &owner, &again);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["database_token"].as_str().ok_or("token")?.to_owned();
    assert_eq!(
        get_status(&sidecar, &detail, &first),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_status(&sidecar, &detail, &second), StatusCode::OK);

    // A secret limited to other databases cannot register this one.
    let limited = store.create_registration_secret_for("limited", &["another-db".into()])?;
    let mut with_token = stand_in_body(&odoo.url);
    with_token["database_token"] = json!(second);
    let (status, body) = register(&sidecar, &limited, &with_token);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(get_status(&sidecar, &detail, &second), StatusCode::OK);

    // The operator releases it (`iap-sidecar database release`): then anyone may.
    assert!(store.delete_database(STAND_IN_UUID)?);
    let (status, body) = register(&sidecar, &stranger, &stand_in_body(&odoo.url));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        get_status(&sidecar, &detail, &second),
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

/// The operator's CLI on the sidecar's database: exit status, stdout, stderr.
fn operator(sidecar: &Sidecar, args: &[&str]) -> Result<(bool, String, String), Failed> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iap-sidecar"))
        .args(args)
        .env("IAP_SIDECAR__DATABASE__URL", sidecar.db.url())
        .env("IAP_SIDECAR__LOG__LEVEL", "warn")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Registration secrets are listed (never shown) and revoked with the CLI: a revoked
/// secret registers nothing, answered exactly like an unknown one, while the database
/// it registered keeps working with its database token.
pub fn registration_secret_revoked(backend: &Backend) -> Result<(), Failed> {
    let odoo = StandIn::start()?;
    let sidecar = Sidecar::start_with(backend, |s| {
        s.odoo.allowed_hosts = vec!["127.0.0.1".into(), "localhost".into()];
    })?;
    let store = &sidecar.db.store;
    let old = store.create_registration_secret("old-addon")?;
    store.create_registration_secret_for("branch", &["db-1".into(), "db-2".into()])?;
    let (status, body) = register(&sidecar, &old, &stand_in_body(&odoo.url));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["database_token"].as_str().ok_or("token")?.to_owned();

    let (ok, listed, err) = operator(&sidecar, &["registration-secret", "list"])?;
    assert!(ok, "list: {err}");
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {listed}"))
            .to_owned()
    };
    assert!(line("old-addon").contains("any database") && line("old-addon").contains("active"));
    assert!(line("branch").contains("db-1, db-2"), "{listed}");
    assert!(
        !listed.contains(&old) && !listed.contains("iapreg_"),
        "never the secret: {listed}"
    );

    let (ok, said, err) = operator(&sidecar, &["registration-secret", "revoke", "old-addon"])?;
    assert!(ok && said.contains("revoked"), "revoke: {said} {err}");
    let (ok, said, err) = operator(&sidecar, &["registration-secret", "revoke", "old-addon"])?;
    assert!(
        ok && said.contains("already revoked"),
        "revoking twice: {said} {err}"
    );
    let (ok, _, err) = operator(&sidecar, &["registration-secret", "revoke", "nobody"])?;
    assert!(
        !ok && err.contains("no registration secret named \"nobody\""),
        "unknown name: {err}"
    );
    let (_, listed, _) = operator(&sidecar, &["registration-secret", "list"])?;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("old-addon ") && l.contains("revoked")),
        "{listed}"
    );

    // The revoked secret registers nothing, not even with the database's token: the
    // answer is an unknown secret's.
    let unknown = register(&sidecar, "iapreg_never_issued", &stand_in_body(&odoo.url));
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED, "{}", unknown.1);
    let revoked = register(&sidecar, &old, &stand_in_body(&odoo.url));
    assert_eq!(
        (revoked.0, &revoked.1["type"]),
        (unknown.0, &unknown.1["type"])
    );
    assert_eq!(revoked.1["detail"], unknown.1["detail"]);
    let mut with_token = stand_in_body(&odoo.url);
    with_token["database_token"] = json!(token);
    let revoked = register(&sidecar, &old, &with_token);
    assert_eq!(
        (revoked.0, &revoked.1["type"]),
        (unknown.0, &unknown.1["type"])
    );

    // The database it registered keeps its registration and token.
    let detail = format!("/api/v1/databases/{STAND_IN_UUID}");
    assert_eq!(get_status(&sidecar, &detail, &token), StatusCode::OK);
    assert_eq!(store.list_databases()?.len(), 1);
    Ok(())
}

/// Finding 5: by default the bridge reaches no loopback, link-local, private or
/// unspecified address, whatever the URL spells (a literal or a name resolving to one),
/// and says nothing about what it found there.
pub fn registration_probes(backend: &Backend) -> Result<(), Failed> {
    let odoo = StandIn::start()?;
    let port = odoo.url.rsplit(':').next().ok_or("port")?.to_owned();
    let sidecar = Sidecar::start(backend)?;
    let secret = sidecar.db.store.create_registration_secret("probe")?;
    for url in [
        odoo.url.clone(),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://0.0.0.0:{port}"),
        "http://169.254.169.254".to_owned(),
        "http://10.0.0.1:22".to_owned(),
        "http://192.168.1.1".to_owned(),
        "http://[::1]:22".to_owned(),
        "http://[fe80::1]:80".to_owned(),
    ] {
        let (status, body) = register(&sidecar, &secret, &stand_in_body(&url));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("unreachable") && !detail.contains("HTTP") && !detail.contains(&port),
            "{url}: the answer tells nothing about the target: {body}"
        );
    }
    assert_eq!(odoo.hits(), 0, "no request reached the loopback stand-in");
    assert!(sidecar.db.store.list_databases()?.is_empty());
    drop(sidecar);

    // Allowed on loopback: redirects are not followed, and a remote's status and text
    // are not repeated.
    let other = Tricks::start(&odoo.url)?;
    let sidecar = Sidecar::start_with(backend, |s| {
        s.odoo.allowed_hosts = vec!["127.0.0.1".into()];
    })?;
    let secret = sidecar.db.store.create_registration_secret("probe")?;
    for path in ["redirect", "forbidden"] {
        let url = format!("{}/{path}", other.url);
        let (status, body) = register(&sidecar, &secret, &stand_in_body(&url));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("403") && !detail.contains("307") && !detail.contains(BANNER),
            "{url}: {body}"
        );
    }
    assert_eq!(odoo.hits(), 0, "the redirect was not followed");

    // The refresh applies the same rule: a registration made while loopback was
    // allowed is not read once it is not.
    let (status, body) = register(&sidecar, &secret, &stand_in_body(&odoo.url));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hits = odoo.hits();
    let refreshed = other.rt.block_on(refresh_database(
        &sidecar.db.store,
        STAND_IN_UUID,
        std::time::Duration::from_secs(5),
        &TargetPolicy::default(),
        &iap_sidecar::usecase::contact::Rules {
            accounts_per_database: 200,
        },
    ))?;
    assert!(refreshed.is_err(), "{refreshed:?}");
    assert_eq!(odoo.hits(), hits);
    Ok(())
}

/// What a probed service might say about itself.
const BANNER: &str = "internal-admin-console-v2";

/// A server on loopback that redirects `/redirect/jsonrpc` to the stand-in, and answers
/// `/forbidden/jsonrpc` with 403 and a banner.
struct Tricks {
    url: String,
    handle: actix_web::dev::ServerHandle,
    rt: tokio::runtime::Runtime,
}

impl Tricks {
    fn start(stand_in: &str) -> Result<Tricks, Failed> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let target = format!("{stand_in}/jsonrpc");
        let (addr, handle) = rt.block_on(async move {
            HttpServer::new(move || {
                let target = target.clone();
                App::new()
                    .route(
                        "/redirect/jsonrpc",
                        web::post().to(move || {
                            let target = target.clone();
                            async move {
                                HttpResponse::TemporaryRedirect()
                                    .insert_header(("location", target))
                                    .finish()
                            }
                        }),
                    )
                    .route(
                        "/forbidden/jsonrpc",
                        web::post().to(|| async { HttpResponse::Forbidden().body(BANNER) }),
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
        Ok(Tricks {
            url: format!("http://{addr}"),
            handle,
            rt,
        })
    }
}

impl Drop for Tricks {
    fn drop(&mut self) {
        self.rt.block_on(self.handle.stop(false));
    }
}

/// Finding 6: nothing in the database opens a portal; Odoo's `hashed=1` links still do.
pub fn no_portal_credential_stored(backend: &Backend) -> Result<(), Failed> {
    let sidecar = Sidecar::start(backend)?;
    let sms = sidecar.service("sms", "sms-provider-key", None);
    let token = "portal-credential-token";
    sidecar
        .call(
            "/iap/1/balance",
            json!({"dbuuid": "db-a", "account_token": token, "service_name": "sms"}),
        )
        .result();
    sidecar.grant(&sms, token, 5);
    let sha1 = iap_sidecar::ledger::token::AccountToken::from_raw(token)
        .ok_or("token")?
        .sha1_hex()
        .to_owned();
    let dump = database_dump(&sidecar)?;
    assert!(
        !dump.contains(&sha1),
        "sha1(token) opens the portal: it must not be stored"
    );
    assert!(!dump.contains(token));

    let web = Web::new(&sidecar.base);
    let page = web.get(&format!(
        "/iap/1/credit?dbuuid=db-a&service_name=sms&account_token={sha1}&hashed=1"
    ));
    assert_eq!(page.status, 303, "{}", page.body);
    let account = sidecar.db.account(sms.id, token)?;
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/portal/accounts/{}", account.id).as_str())
    );

    // Alert e-mails link with a signed account id instead: valid until it expires, and
    // worthless once changed.
    let keys = Keys::load(&PortalSettings::default(), &sidecar.db.store)?;
    let now = sidecar.db.now().micros() / 1_000_000;
    let link = |account: AccountId, expires: i64| {
        format!(
            "/iap/1/credit?service_name=sms&dbuuid=db-a&link={}",
            keys.seal_alert_link(&AlertLink { account, expires })
        )
    };
    let page = Web::new(&sidecar.base).get(&link(account.id, now + 3600));
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/portal/accounts/{}", account.id).as_str()),
        "{}",
        page.body
    );
    let expired = Web::new(&sidecar.base).get(&link(account.id, now - 1));
    assert_eq!(expired.status, 403, "{}", expired.body);
    let genuine = link(account.id, now + 3600);
    let (head, tag) = genuine.rsplit_once('.').ok_or("sealed link")?;
    let flipped = if tag.starts_with('0') { "1" } else { "0" };
    let forged = Web::new(&sidecar.base).get(&format!("{head}.{flipped}{}", &tag[1..]));
    assert_eq!(forged.status, 403, "{}", forged.body);
    Ok(())
}

/// Everything the database holds, as text: `pg_dump` for PostgreSQL, the file and its
/// WAL for SQLite (text columns are stored as they are).
fn database_dump(sidecar: &Sidecar) -> Result<String, Failed> {
    match sidecar.db.sqlite_path() {
        Some(path) => {
            let mut bytes = std::fs::read(path)?;
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        None => {
            let out = std::process::Command::new("pg_dump")
                .arg("--data-only")
                .arg(sidecar.db.url())
                .output()
                .map_err(|e| format!("pg_dump (PostgreSQL client tools): {e}"))?;
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    }
}

/// Journal lines written for the export test.
const EXPORT_LINES: i64 = 40_000;
/// The largest piece of body the export may hold at once (a page of lines, with room).
const EXPORT_CHUNK_BOUND: usize = 256 * 1024;

/// Finding 7: the CSV export streams: the body comes in chunks of bounded size however
/// long the journal is, and holds every line in order.
pub fn journal_export_streams(backend: &Backend) -> Result<(), Failed> {
    let sidecar = Sidecar::start(backend)?;
    let sms = sidecar.service("sms", "sms-provider-key", None);
    let token = "export-token";
    let account = sidecar.db.account(sms.id, token)?;
    // Many lines at once, in SQL: the journal only takes inserts.
    let series = if backend.is_postgres() {
        format!("SELECT g AS n FROM generate_series(1, {EXPORT_LINES}) AS g")
    } else {
        format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {EXPORT_LINES}) SELECT n FROM s"
        )
    };
    let inserted = sidecar.db.raw_execute(&format!(
        "INSERT INTO journal (account_id, seq, kind, amount, balance_after, description, effective_at, recorded_at) \
         SELECT {id}, n, 'grant', 10000, n * 10000, 'line ' || n || ', a description long enough to weigh', 1800000000000000 + n, 1800000000000000 + n \
         FROM ({series}) AS numbers",
        id = account.id
    ))?;
    assert_eq!(i64::try_from(inserted)?, EXPORT_LINES);

    let web = Web::new(&sidecar.base);
    let entry = web.get(&format!(
        "/iap/1/credit?dbuuid=db-uuid&service_name=sms&account_token={token}"
    ));
    assert_eq!(entry.status, 303, "{}", entry.body);
    let cookie = format!(
        "iap_portal={}",
        web.cookie("iap_portal").ok_or("session cookie")?
    );

    let (head, chunks) = raw_get(
        &sidecar.base,
        &format!("/portal/accounts/{}/journal.csv", account.id),
        &cookie,
    )?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let chunks = chunks.ok_or_else(|| format!("the export is not streamed (chunked): {head}"))?;
    let largest = chunks.iter().map(Vec::len).max().unwrap_or(0);
    let body: Vec<u8> = chunks.concat();
    assert!(
        largest <= EXPORT_CHUNK_BOUND,
        "a chunk of {largest} bytes: the export is built in memory"
    );
    assert!(
        body.len() > 10 * EXPORT_CHUNK_BOUND,
        "the body ({} bytes) must dwarf the bound",
        body.len()
    );
    let text = String::from_utf8(body)?;
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "seq,time_utc,kind,description,amount,balance_after"
    );
    assert_eq!(lines.len(), usize::try_from(EXPORT_LINES)? + 1);
    for (i, line) in lines[1..].iter().enumerate() {
        let seq = line.split(',').next().unwrap_or_default();
        assert_eq!(seq, (i + 1).to_string(), "oldest first, none missing");
    }
    eprintln!(
        "[export] {} lines, {} bytes in {} chunks of at most {largest} bytes",
        EXPORT_LINES,
        text.len(),
        chunks.len()
    );
    Ok(())
}

type RawAnswer = (String, Option<Vec<Vec<u8>>>);

/// A GET over a plain socket: the head, and the body's chunks as the server framed them
/// (`None` when the body was not chunked).
fn raw_get(base: &str, path: &str, cookie: &str) -> Result<RawAnswer, Failed> {
    let authority = base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(authority)?;
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    if !chunked {
        return Ok((head, None));
    }
    let mut rest = &raw[split + 4..];
    let mut chunks = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size_text = std::str::from_utf8(&rest[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        chunks.push(rest.get(..size).ok_or("truncated chunk")?.to_vec());
        rest = rest.get(size + 2..).ok_or("chunk end")?;
    }
    Ok((head, Some(chunks)))
}
