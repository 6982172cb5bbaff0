//! Issue 12, finding 10 (the smaller web points): logout ends a session on the server,
//! a cross-site entry link never joins a victim's session, a bad `next` is refused, and
//! the admin API authenticates before it reads a request.

use libtest_mimic::Failed;

use crate::portal_web::{Web, csrf, service_with_packs, sidecar};
use crate::support::Backend;

/// A captured session cookie stops working once its session logged out.
pub fn logout_ends_the_session(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    sc.grant(&sms, "tok-out", 10);
    let web = Web::new(&sc.base);
    let page =
        web.follow(&web.get("/iap/1/credit?dbuuid=db-o&service_name=sms&account_token=tok-out"));
    let html = page.expect(200, "account page").to_owned();
    let captured = web.cookie("iap_portal").ok_or("no session cookie")?;

    let out = web.post_form("/portal/logout", &[("csrf", &csrf(&html))]);
    out.expect(200, "logout");
    assert_eq!(
        web.cookie("iap_portal"),
        None,
        "the browser's cookie is cleared"
    );

    // Someone who kept a copy of the cookie (a shared computer, a proxy log) gets nothing.
    let thief = Web::new(&sc.base);
    thief.set_cookie("iap_portal", &captured);
    for path in ["/portal", "/portal/accounts/1"] {
        let p = thief.get(path);
        assert_eq!(p.status, 401, "{path} after logout: {}", p.body);
    }
    // A new link opens a new session, which works.
    let again = Web::new(&sc.base);
    again
        .follow(&again.get("/iap/1/credit?dbuuid=db-o&service_name=sms&account_token=tok-out"))
        .expect(200, "a new session");
    Ok(())
}

/// Login CSRF: a page elsewhere that makes the victim's browser open an entry link for the
/// attacker's account must not put that account into the victim's session.
pub fn cross_site_entry_link_starts_its_own_session(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    sc.grant(&sms, "tok-victim", 10);
    sc.grant(&sms, "tok-attacker", 10);
    let web = Web::new(&sc.base);
    let cross = [("sec-fetch-site", "cross-site")];
    let own = web.get_with(
        "/iap/1/credit?dbuuid=db-v&service_name=sms&account_token=tok-victim",
        &cross,
    );
    let victim_account = own.location.clone().ok_or("no redirect")?;
    web.follow(&own).expect(200, "the victim's account");

    // The attacker's link names the victim's database too.
    let planted = web.get_with(
        "/iap/1/credit?dbuuid=db-v&service_name=sms&account_token=tok-attacker",
        &cross,
    );
    assert_eq!(planted.status, 303, "{}", planted.body);
    let attacker_account = planted.location.clone().ok_or("no redirect")?;
    let services = web.get("/portal");
    let html = services.expect(200, "services");
    let sees_victim = html.contains(&format!("href=\"{victim_account}\""));
    let sees_attacker = html.contains(&format!("href=\"{attacker_account}\""));
    assert!(
        !(sees_victim && sees_attacker),
        "one session holds the victim's and the attacker's accounts: {html}"
    );

    // A link followed from the portal itself (same origin) still widens the session.
    let web = Web::new(&sc.base);
    web.follow(&web.get_with(
        "/iap/1/credit?dbuuid=db-w&service_name=sms&account_token=tok-w1",
        &cross,
    ))
    .expect(200, "first account");
    let second = web.get_with(
        "/iap/1/credit?dbuuid=db-w&service_name=sms&account_token=tok-w2",
        &[("sec-fetch-site", "same-origin")],
    );
    assert_eq!(second.status, 303, "{}", second.body);
    let html = web.get("/portal").expect(200, "services").to_owned();
    assert_eq!(
        html.matches("href=\"/portal/accounts/").count(),
        2,
        "{html}"
    );
    Ok(())
}

/// `next` values that cannot be a `Location` header are refused, not a 500.
pub fn language_switch_refuses_a_bad_next(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let web = Web::new(&sc.base);
    for next in [
        "/portal/%7F",
        "/portal/%00",
        "/portal/%C3%A9t%C3%A9",
        "/portal/a%20b",
    ] {
        let p = web.get(&format!("/portal/lang?to=fr&next={next}"));
        assert_eq!(p.status, 303, "next={next}: {}", p.body);
        assert_eq!(p.location.as_deref(), Some("/portal"), "next={next}");
    }
    // A good one is kept.
    let p = web.get("/portal/lang?to=fr&next=/portal/accounts/3%3Frange%3D90");
    assert_eq!(p.location.as_deref(), Some("/portal/accounts/3?range=90"));
    Ok(())
}

/// Without a valid admin token every admin route answers 401, whatever the body, path or
/// query: nothing of the request is read before the caller is known.
pub fn admin_authenticates_before_parsing(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let client = reqwest::Client::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("POST", "/api/v1/grants", Some("{not json")),
        ("POST", "/api/v1/grants", Some("{\"amount\": -1}")),
        ("POST", "/api/v1/services", Some("[]")),
        ("PUT", "/api/v1/services/sms/packs/x", Some("{}")),
        ("GET", "/api/v1/accounts?limit=zero", None),
        ("GET", "/api/v1/accounts/abc", None),
        ("GET", "/api/v1/accounts/1/journal?before_seq=x", None),
        ("POST", "/api/v1/orders/1/confirm", Some("null")),
        ("POST", "/api/v1/databases/x/accounts", Some("{")),
    ];
    for token in [None, Some("not-a-token")] {
        for (method, path, body) in cases {
            let mut req = client.request(
                method.parse().map_err(|e| format!("{e}"))?,
                format!("{}{path}", sc.base),
            );
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let (status, kind, text) = rt.block_on(async {
                let r = req.send().await.map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                let kind = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Ok::<_, String>((status, kind, r.text().await.unwrap_or_default()))
            })?;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {text}");
            assert_eq!(kind, "application/problem+json", "{method} {path}");
        }
    }
    Ok(())
}
