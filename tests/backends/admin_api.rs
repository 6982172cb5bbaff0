//! The admin API over real HTTP on port 0: auth, problem JSON, idempotent grants, journal,
//! OpenAPI and metrics; bad input changes nothing.

use iap_sidecar::config::{Secret, Settings};
use iap_sidecar::ledger::AccountId;
use libtest_mimic::Failed;

use crate::support::{Backend, DbOptions, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.send(reqwest::Method::GET, path, None).await;
        (r.status(), r.json().await.expect("json body"))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self.send(reqwest::Method::POST, path, Some(body)).await;
        (r.status(), r.json().await.expect("json body"))
    }
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(
        body["type"],
        format!("urn:iap-sidecar:problem:{code}"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// Runs the whole admin API scenario against a server on a fresh database.
pub fn admin_api(backend: &Backend) -> Result<(), Failed> {
    let db = TestDb::new(backend, DbOptions::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(scenario(db.url()));
    Ok(())
}

async fn scenario(database_url: String) {
    let mut settings = Settings::default();
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = Some(2);
    settings.http.max_body_bytes = 4096;
    settings.database.url = Secret::new(database_url);
    settings.database.pool_size = 4;
    let started = iap_sidecar::app::start(settings).expect("server starts");
    let store = started.store.clone();
    let base = format!("http://{}", started.addr);
    let handle = started.server.handle();
    let server = tokio::spawn(started.wait());
    let token = store.create_admin_token("tests").expect("admin token");
    let api = Api {
        base: base.clone(),
        token,
        client: reqwest::Client::new(),
    };

    // Authentication.
    let anonymous = reqwest::get(format!("{base}/api/v1/services"))
        .await
        .expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );
    let wrong = Api {
        base: base.clone(),
        token: "iapadm_wrong".into(),
        client: reqwest::Client::new(),
    };
    let (status, body) = wrong.get("/api/v1/services").await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Services.
    let (status, body) = api
        .post(
            "/api/v1/services",
            json!({"technical_name": "sms", "label": "SMS", "trial_credits": "5"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("iapkey_"));
    assert_eq!(body["service"]["unit_name"], "Credits");
    assert!(store.service_by_key(&key).expect("lookup").is_some());
    let (status, body) = api
        .post(
            "/api/v1/services",
            json!({"technical_name": "sms", "label": "again"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = api
        .post(
            "/api/v1/services",
            json!({"technical_name": "Bad Name", "label": "x"}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let (status, body) = api.get("/api/v1/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(1));
    assert!(!body.to_string().contains(&key), "keys are never listed");
    // Which databases may use the service: the admin or the service's own provider.
    let provider = Api {
        base: base.clone(),
        token: key.clone(),
        client: reqwest::Client::new(),
    };
    let limit = json!({"open_to_all": false, "dbuuids": ["db-1", "db-2"]});
    let r = provider
        .send(
            reqwest::Method::PUT,
            "/api/v1/services/sms/databases",
            Some(limit),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = api.get("/api/v1/services/sms/databases").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"open_to_all": false, "dbuuids": ["db-1", "db-2"]})
    );
    let sms = store.service_by_name("sms").expect("sms");
    assert!(!store.service_allows(&sms, Some("db-3")).expect("allows"));
    let r = wrong
        .send(
            reqwest::Method::PUT,
            "/api/v1/services/sms/databases",
            Some(json!({"open_to_all": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = api
        .send(
            reqwest::Method::PUT,
            "/api/v1/services/sms/databases",
            Some(json!({"open_to_all": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        store
            .service_allows(&store.service_by_name("sms").expect("sms"), Some("db-3"))
            .expect("allows")
    );

    let (status, body) = api.post("/api/v1/services/sms/rotate-key", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = provider
        .send(reqwest::Method::GET, "/api/v1/services/sms/databases", None)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the rotated key no longer works"
    );
    assert!(
        store.service_by_key(&key).expect("lookup").is_none(),
        "old key revoked"
    );
    let (status, body) = api.post("/api/v1/services/fax/rotate-key", json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "unknown_service");

    // Grants: idempotent with a key.
    let grant = json!({"service": "sms", "account_token": "tok-a", "amount": "12.5",
                       "description": "welcome", "dbuuid": "db-1"});
    let send_grant = |body: Value, key: &'static str| {
        let api = &api;
        async move {
            let r = api
                .client
                .post(format!("{}/api/v1/grants", api.base))
                .bearer_auth(&api.token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .expect("grant sent");
            let replayed = r.headers().contains_key("idempotent-replayed");
            (r.status(), replayed, r.json::<Value>().await.expect("json"))
        }
    };
    let (status, replayed, first) = send_grant(grant.clone(), "grant-1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(!replayed);
    assert_eq!(first["balance"]["balance"], "12.5");
    let (status, replayed, second) = send_grant(grant.clone(), "grant-1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(replayed);
    assert_eq!(first, second);
    let mut other = grant.clone();
    other["amount"] = json!("13");
    let (status, _, body) = send_grant(other, "grant-1").await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let account_id: AccountId =
        serde_json::from_value(first["account_id"].clone()).expect("account id");

    // Bad grants change nothing.
    let bad_bodies = [
        json!({"service": "sms", "account_token": "tok-a", "amount": -1}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "1.00001"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "NaN"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "-1"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": 1e13}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "10000000000000"}),
        // Amounts are decimal strings, as the document says: a JSON number is refused.
        json!({"service": "sms", "account_token": "tok-a", "amount": 5}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "05"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "12", "extra": 1}),
        json!({"service": "sms", "account_token": "", "amount": "1"}),
        json!({"service": "sms", "account_token": "tok+disabled", "amount": "1"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "1", "expires_at": "soon"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "1", "expires_at": "2001-01-01"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "1",
               "expires_at": "2099-01-01 00:00:00Z"}),
        json!({"service": "sms", "account_token": "tok-a", "amount": "0"}),
        json!({"service": "sms", "account_token": "tok-a"}),
    ];
    for body in bad_bodies {
        let (status, problem) = api.post("/api/v1/grants", body.clone()).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {status} {problem}"
        );
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:iap-sidecar:problem:"))
        );
    }
    let (status, problem) = api
        .post(
            "/api/v1/grants",
            json!({"service": "fax", "account_token": "t", "amount": "1"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "unknown_service");
    let raw = api
        .client
        .post(format!("{base}/api/v1/grants"))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);

    // A method the path does not answer: 405 with the methods it does (after the
    // credential check: a stranger still gets 401).
    let trace = |token: Option<&str>| {
        let mut r = api.client.request(
            reqwest::Method::from_bytes(b"TRACE").expect("method"),
            format!("{base}/api/v1/grants"),
        );
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = trace(Some(&api.token)).await.expect("sent");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let body: Value = r.json().await.expect("problem");
    assert_eq!(
        body["type"], "urn:iap-sidecar:problem:method_not_allowed",
        "{body}"
    );
    let r = trace(None).await.expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = api
        .post("/api/v1/databases/no-such-db/refresh", json!({}))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    let huge = json!({"service": "sms", "account_token": "tok-a", "amount": "1",
                      "description": "x".repeat(8192)});
    let (status, problem) = api.post("/api/v1/grants", huge).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let (status, page) = api
        .get(&format!("/api/v1/accounts/{account_id}/journal"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "only the first grant was written: {page}");
    assert_eq!(entries[0]["amount"], "12.5");
    assert_eq!(entries[0]["kind"], "grant");
    assert_eq!(entries[0]["description"], "welcome");
    let audit = store.audit(account_id).expect("audit");
    assert!(audit.violations().is_empty(), "{:?}", audit.violations());

    // Accounts, holds and balance history.
    let (hold, _, _) = store
        .authorize(
            account_id,
            iap_sidecar::ledger::Credits::whole(2).expect("2"),
            1,
            Some("job"),
        )
        .expect("authorize");
    let (status, detail) = api.get(&format!("/api/v1/accounts/{account_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["account"]["available"], "10.5");
    assert_eq!(detail["account"]["reserved"], "2");
    assert_eq!(detail["account"]["dbuuid"], "db-1");
    assert_eq!(detail["open_holds"][0]["id"], json!(hold.id));
    assert_eq!(detail["lots"][0]["remaining"], "10.5");
    let (status, list) = api.get("/api/v1/accounts?service=sms&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (status, problem) = api.get("/api/v1/accounts?limit=100000").await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "bad_request");
    let (status, problem) = api.get("/api/v1/accounts/999999").await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "unknown_account");
    let (status, problem) = api.get("/api/v1/accounts/abc").await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let (status, at) = api
        .get(&format!(
            "/api/v1/accounts/{account_id}/balance?at=2001-01-01"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["balance"], "0");
    let (status, at) = api
        .get(&format!("/api/v1/accounts/{account_id}/balance"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(at["balance"], "12.5");

    let (status, alerts) = api.get("/api/v1/alerts?status=pending").await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    assert_eq!(alerts, json!([]));
    let (status, problem) = api.get("/api/v1/alerts?status=lost").await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "bad_request");

    // Unknown routes, OpenAPI, metrics.
    let (status, problem) = api.get("/api/v1/nothing").await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let doc: Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/services",
        "/api/v1/services/{name}/rotate-key",
        "/api/v1/accounts",
        "/api/v1/accounts/{id}",
        "/api/v1/accounts/{id}/journal",
        "/api/v1/accounts/{id}/balance",
        "/api/v1/grants",
        "/api/v1/alerts",
        "/api/v1/services/{name}/databases",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "iap_sidecar_http_requests_total{method=\"POST\",route=\"/api/v1/grants\",status=\"201\"}",
        "iap_sidecar_ledger_operations_total{operation=\"authorize\",outcome=\"ok\"}",
        "iap_sidecar_http_request_duration_seconds_bucket",
        "iap_sidecar_db_pool_connections{state=\"max\"} 4",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    assert!(
        !metrics.contains("tok-a"),
        "tokens must not become metric labels"
    );

    handle.stop(true).await;
    server.await.expect("server task").expect("server exit");
}
