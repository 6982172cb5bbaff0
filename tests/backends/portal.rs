//! The portal over real HTTP: entry links, sessions, access between accounts, forged
//! cookies, CSRF, bad input, languages, and the provider pages.

use iap_sidecar::ledger::token::AccountToken;
use iap_sidecar::ledger::{AccountId, Credits, ServiceId};
use iap_sidecar::payments::PackId;
use iap_sidecar::store::OrderFilter;
use libtest_mimic::Failed;
use sha1::Digest;

use crate::portal_web::{Web, csrf, service_with_packs, sidecar};
use crate::rpc::Sidecar;
use crate::support::{Backend, HOUR};

fn account_id(sidecar: &Sidecar, service_id: ServiceId, token: &str) -> AccountId {
    sidecar
        .db
        .store
        .find_account(service_id, &AccountToken::from_raw(token).expect("token"))
        .expect("lookup")
        .expect("account registered")
        .id
}

fn orders_of(sidecar: &Sidecar, account: AccountId) -> usize {
    sidecar
        .db
        .store
        .orders(&OrderFilter {
            account_id: Some(account),
            status: None,
            limit: 100,
            offset: 0,
        })
        .expect("orders")
        .len()
}

/// Entry links, who sees what, and what a forged or stale session gets.
pub fn portal_access_rules(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    sc.grant(&sms, "tok-a", 20);
    sc.grant(&sms, "tok-b", 70);
    let a = account_id(&sc, sms.id, "tok-a");
    let b = account_id(&sc, sms.id, "tok-b");

    // Odoo 16-18 "Buy credits": the token is traded for a cookie, the browser moves on.
    let web = Web::new(&sc.base);
    let entry =
        web.get("/iap/1/credit?dbuuid=db-a&service_name=sms&account_token=tok-a&credit=12.5");
    assert_eq!(entry.status, 303, "{}", entry.body);
    let location = entry.location.clone().expect("Location");
    assert_eq!(location, format!("/portal/accounts/{a}?credit=12.5"));
    assert!(!location.contains("tok-a") && !location.contains("token"));
    assert_eq!(
        entry
            .headers
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let cookie = entry
        .set_cookies
        .iter()
        .find(|c| c.starts_with("iap_portal="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("tok-a"));
    let page = web.follow(&entry);
    let html = page.expect(200, "account page");
    assert!(
        html.contains("SMS messages") && html.contains("id=\"available\">20"),
        "{html}"
    );
    // The smallest pack covering the 12.5 credits asked for is preselected.
    assert!(
        html.contains("value=\"2\" required checked"),
        "Standard pack preselected: {html}"
    );
    assert_eq!(
        page.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(page.headers.get("content-security-policy").is_some());

    // Account A's session cannot read or act on account B.
    for path in [
        format!("/portal/accounts/{b}"),
        format!("/portal/accounts/{b}/journal.csv"),
        format!("/portal/accounts/{b}?range=90"),
    ] {
        let p = web.get(&path);
        assert_eq!(p.status, 404, "{path}: {}", p.body);
        assert!(
            !p.body.contains("SMS messages"),
            "nothing of B leaks: {}",
            p.body
        );
    }
    let token = csrf(html);
    let p = web.post_form(
        &format!("/portal/accounts/{b}/orders"),
        &[("csrf", &token), ("pack_id", "1")],
    );
    assert_eq!(p.status, 404, "{}", p.body);
    assert_eq!(orders_of(&sc, b), 0);
    let p = web.post_form(
        &format!("/portal/accounts/{b}/alerts"),
        &[
            ("csrf", &token),
            ("threshold", "5"),
            ("emails", "x@example.org"),
        ],
    );
    assert_eq!(p.status, 404, "{}", p.body);
    let b_order = sc
        .db
        .store
        .create_order(b, PackId::from_stored(1))
        .expect("B's order");
    assert_eq!(
        web.get(&format!("/portal/orders/{}", b_order.id)).status,
        404
    );
    let p = web.post_form(
        &format!("/portal/orders/{}/cancel", b_order.id),
        &[("csrf", &token)],
    );
    assert_eq!(p.status, 404, "{}", p.body);
    assert_eq!(
        sc.db
            .store
            .order(b_order.id)
            .expect("order")
            .status
            .as_str(),
        "pending"
    );
    // The services page lists A only.
    let services = web.get("/portal");
    let html = services.expect(200, "services");
    assert!(
        html.contains(&format!("/portal/accounts/{a}"))
            && !html.contains(&format!("/portal/accounts/{b}\""))
    );

    // Forged cookies: B's id added to A's payload under A's tag, another key, garbage.
    let original = web.cookie("iap_portal").expect("cookie");
    let (payload, tag) = original.split_once('.').expect("payload.tag");
    let json = String::from_utf8(hex::decode(payload).expect("hex")).expect("utf8");
    let widened = json.replacen(&format!("\"a\":[{a}]"), &format!("\"a\":[{a},{b}]"), 1);
    assert_ne!(json, widened, "payload layout: {json}");
    let forged = format!("{}.{tag}", hex::encode(&widened));
    let other_key = {
        let keys = iap_sidecar::pages::session::Keys::new("an attacker's key of 32+ characters");
        let s: iap_sidecar::pages::session::Session =
            serde_json::from_str(&widened).expect("session");
        keys.seal_session(&s)
    };
    for bad in [
        forged.as_str(),
        other_key.as_str(),
        "garbage",
        &original[..original.len() - 2],
    ] {
        let thief = Web::new(&sc.base);
        thief.set_cookie("iap_portal", bad);
        for path in [
            format!("/portal/accounts/{b}"),
            format!("/portal/accounts/{a}"),
            "/portal".into(),
        ] {
            let p = thief.get(&path);
            assert_eq!(p.status, 401, "{bad} on {path}: {}", p.body);
        }
        let p = thief.post_form(
            &format!("/portal/accounts/{a}/orders"),
            &[("csrf", &token), ("pack_id", "1")],
        );
        assert_eq!(p.status, 401);
    }
    assert_eq!(orders_of(&sc, a), 0);
    // No cookie at all.
    assert_eq!(
        Web::new(&sc.base)
            .get(&format!("/portal/accounts/{a}"))
            .status,
        401
    );

    // CSRF: missing or another session's token is refused, and nothing changes.
    let other = Web::new(&sc.base);
    let other_html = other
        .follow(
            &other.get("/iap/1/credit?dbuuid=db-b&service_name=sms&account_token=tok-b&credit=0"),
        )
        .body;
    let foreign_token = csrf(&other_html);
    for fields in [
        vec![("threshold", "5"), ("emails", "ops@example.org")],
        vec![
            ("csrf", ""),
            ("threshold", "5"),
            ("emails", "ops@example.org"),
        ],
        vec![
            ("csrf", foreign_token.as_str()),
            ("threshold", "5"),
            ("emails", "ops@example.org"),
        ],
    ] {
        let p = web.post_form(&format!("/portal/accounts/{a}/alerts"), &fields);
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("Nothing was changed"), "{}", p.body);
        let p = web.post_form(
            &format!("/portal/accounts/{a}/orders"),
            &[fields[0], ("pack_id", "1")],
        );
        assert_eq!(p.status, 403);
    }
    let account = sc.db.store.account(a).expect("account");
    assert!(account.alerts.threshold.is_zero() && account.alerts.recipients.is_empty());
    assert_eq!(orders_of(&sc, a), 0);

    // The right token works; bad input is a readable page with nothing changed.
    let p = web.post_form(
        &format!("/portal/accounts/{a}/alerts"),
        &[
            ("csrf", &token),
            ("threshold", "7,5"),
            ("emails", "ops@example.org\nbilling@example.org"),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let account = sc.db.store.account(a).expect("account");
    assert_eq!(
        account.alerts.threshold,
        Credits::parse_exact("7.5").expect("c")
    );
    assert_eq!(account.alerts.recipients.len(), 2);
    assert_eq!(
        account.alerts.recipients[0].lang_code.as_deref(),
        Some("en_US")
    );
    for (threshold, emails, needle) in [
        ("abc", "ops@example.org", "is not a valid amount"),
        ("-3", "ops@example.org", "is not a valid amount"),
        ("5", "not-an-address", "is not an e-mail address"),
        ("5", "<script>@x", "&lt;script&gt;"),
    ] {
        let p = web.post_form(
            &format!("/portal/accounts/{a}/alerts"),
            &[
                ("csrf", &token),
                ("threshold", threshold),
                ("emails", emails),
            ],
        );
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(
            p.body.contains(needle) && !p.body.contains("<script>"),
            "{}",
            p.body
        );
    }
    let after = sc.db.store.account(a).expect("account");
    assert_eq!(
        after.alerts, account.alerts,
        "refused input changed nothing"
    );
    let p = web.post_form(&format!("/portal/accounts/{a}/orders"), &[("csrf", &token)]);
    assert_eq!(p.status, 422, "{}", p.body);
    let p = web.post_form(
        &format!("/portal/accounts/{a}/orders"),
        &[("csrf", &token), ("pack_id", "999")],
    );
    assert_eq!(p.status, 404, "{}", p.body);
    assert_eq!(web.get("/portal/accounts/abc").status, 404);
    assert_eq!(
        web.get(&format!("/portal/accounts/{a}?before=x")).status,
        400
    );
    assert_eq!(orders_of(&sc, a), 0);

    // Unknown service, unknown or disabled token, malformed links: one generic page.
    for link in [
        "/iap/1/credit?dbuuid=db-a&service_name=nope&account_token=tok-a",
        "/iap/1/credit?dbuuid=db-a&service_name=sms&account_token=tok-a%2Bdisabled",
        "/iap/1/credit?dbuuid=db-a&service_name=sms",
        "/iap/1/credit?dbuuid=db-a&service_name=sms&account_token=xyz&hashed=1",
        "/iap/services?tokens=never-seen",
        "/iap/services?dbuuid=db-a",
    ] {
        let p = Web::new(&sc.base).get(link);
        assert_eq!(p.status, 403, "{link}: {}", p.body);
        assert!(p.body.contains("This link cannot be used"), "{}", p.body);
        let main = &p.body[p.body.find("<main>").expect("main")..];
        assert!(
            !main.contains("disabled") && !main.contains("nope"),
            "{main}"
        );
        assert!(p.set_cookies.is_empty());
        // The token is not copied anywhere in the page (e.g. the language switch).
        assert!(
            !p.body.contains("tok-a") && !p.body.contains("account_token"),
            "{}",
            p.body
        );
    }
    // The disabled link flagged the account: its portal links stop working until Odoo
    // re-enables it, whatever the session.
    assert!(sc.db.store.account(a).expect("account").disabled);
    let p =
        Web::new(&sc.base).get("/iap/1/credit?dbuuid=db-a&service_name=sms&account_token=tok-a");
    assert_eq!(p.status, 303, "re-enabled by the plain token: {}", p.body);

    // Odoo 19 sends sha1(token) and hashed=1; Odoo 16's services link sends the tokens.
    let sha1 = hex::encode(sha1::Sha1::digest(b"tok-a"));
    let p = Web::new(&sc.base).get(&format!(
        "/iap/1/credit?dbuuid=db-a&service_name=sms&account_token={sha1}&hashed=1"
    ));
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/portal/accounts/{a}").as_str())
    );
    let mail = service_with_packs(&sc, "mail");
    sc.grant(&mail, "tok-a", 3);
    let multi = Web::new(&sc.base);
    let p = multi.get("/iap/services?tokens=tok-a&tokens=unknown-token");
    assert_eq!(p.location.as_deref(), Some("/portal"), "{}", p.body);
    let html = multi.get("/portal").body;
    let mail_a = account_id(&sc, mail.id, "tok-a");
    assert!(
        html.contains(&format!("/portal/accounts/{a}"))
            && html.contains(&format!("/portal/accounts/{mail_a}")),
        "{html}"
    );
    assert!(!html.contains(&format!("/portal/accounts/{b}\"")));

    // French from Accept-Language, and the switch back to English kept in a cookie.
    let mut fr = Web::new(&sc.base);
    fr.accept_language = Some("fr-FR,fr;q=0.9,en;q=0.5");
    let html = fr
        .follow(&fr.get("/iap/1/credit?dbuuid=db-a&service_name=sms&account_token=tok-a"))
        .body;
    assert!(
        html.contains("Disponible") && html.contains("lang=\"fr\""),
        "{html}"
    );
    let p = fr.get(&format!("/portal/lang?to=en&next=/portal/accounts/{a}"));
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/portal/accounts/{a}").as_str())
    );
    assert!(
        fr.get(&format!("/portal/accounts/{a}"))
            .body
            .contains("Available")
    );
    // The switch never leaves the portal.
    let p = fr.get("/portal/lang?to=fr&next=https://evil.example/");
    assert_eq!(p.location.as_deref(), Some("/portal"));

    // Sessions end: twelve hours later the cookie opens nothing.
    sc.db.advance(13 * HOUR);
    assert_eq!(web.get(&format!("/portal/accounts/{a}")).status, 401);
    Ok(())
}

/// The provider pages: login with the service key, packs, trial, key rotation, figures.
pub fn portal_provider_pages(backend: &Backend) -> Result<(), Failed> {
    let sc = sidecar(backend)?;
    let sms = service_with_packs(&sc, "sms");
    service_with_packs(&sc, "mail");
    let web = Web::new(&sc.base);
    // Without a session: to the login form.
    let p = web.get("/portal/provider");
    assert_eq!(p.location.as_deref(), Some("/portal/provider/login"));
    let form = web.get("/portal/provider/login");
    let token = csrf(form.expect(200, "login form"));
    // A wrong key, or no login CSRF token: refused.
    let p = web.post_form(
        "/portal/provider/login",
        &[("csrf", &token), ("key", "key-wrong")],
    );
    assert_eq!(p.status, 401, "{}", p.body);
    assert!(p.body.contains("This key is not valid"));
    let p = web.post_form("/portal/provider/login", &[("key", "key-sms")]);
    assert_eq!(p.status, 403);
    let p = web.post_form(
        "/portal/provider/login",
        &[("csrf", &token), ("key", "key-sms")],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let home = web.follow(&p);
    let html = home.expect(200, "provider home");
    assert!(
        html.contains("SMS messages")
            && html.contains("Starter")
            && !html.contains("MAIL messages"),
        "{html}"
    );
    let token = csrf(html);

    // Packs: add, edit, take off sale; CSRF required; bad input changes nothing.
    let p = web.post_form(
        "/portal/provider/packs",
        &[
            ("csrf", &token),
            ("name", "Expert"),
            ("credits", "1000"),
            ("price", "300"),
            ("currency", "eur"),
            ("active", "on"),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let packs = sc.db.store.packs(sms.id, false).expect("packs");
    let expert = packs
        .iter()
        .find(|p| p.name == "Expert")
        .expect("Expert pack");
    assert_eq!(
        (expert.price.minor, expert.price.currency.as_str()),
        (30_000, "EUR")
    );
    let p = web.post_form(
        &format!("/portal/provider/packs/{}", expert.id),
        &[
            ("csrf", &token),
            ("name", "Expert"),
            ("credits", "1000"),
            ("price", "280.50"),
            ("currency", "EUR"),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let expert = sc
        .db
        .store
        .packs(sms.id, false)
        .expect("packs")
        .into_iter()
        .find(|p| p.name == "Expert")
        .expect("pack");
    assert_eq!((expert.price.minor, expert.active), (28_050, false));
    for bad in [
        vec![
            ("csrf", token.as_str()),
            ("name", "X"),
            ("credits", "0"),
            ("price", "1"),
            ("currency", "EUR"),
        ],
        vec![
            ("csrf", token.as_str()),
            ("name", "X"),
            ("credits", "5"),
            ("price", "1.234"),
            ("currency", "EUR"),
        ],
        vec![
            ("csrf", token.as_str()),
            ("name", "X"),
            ("credits", "5"),
            ("price", "1"),
            ("currency", "EURO"),
        ],
        vec![
            ("csrf", token.as_str()),
            ("name", ""),
            ("credits", "5"),
            ("price", "1"),
            ("currency", "EUR"),
        ],
    ] {
        let p = web.post_form("/portal/provider/packs", &bad);
        assert_eq!(p.status, 422, "{bad:?}: {}", p.body);
    }
    let p = web.post_form(
        "/portal/provider/packs",
        &[
            ("name", "Y"),
            ("credits", "5"),
            ("price", "1"),
            ("currency", "EUR"),
        ],
    );
    assert_eq!(p.status, 403);
    // A pack of another service is not this provider's.
    let mail_pack = sc
        .db
        .store
        .packs(sc.db.store.service_by_name("mail").expect("mail").id, false)
        .expect("packs")[0]
        .id;
    let p = web.post_form(
        &format!("/portal/provider/packs/{mail_pack}"),
        &[
            ("csrf", &token),
            ("name", "Mine"),
            ("credits", "1"),
            ("price", "1"),
            ("currency", "EUR"),
        ],
    );
    assert_eq!(p.status, 404, "{}", p.body);
    assert_eq!(sc.db.store.packs(sms.id, false).expect("packs").len(), 3);

    // Trial credits.
    let p = web.post_form(
        "/portal/provider/trial",
        &[
            ("csrf", &token),
            ("trial_credits", "15"),
            ("trial_days", "30"),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let service = sc.db.store.service_by_name("sms").expect("sms");
    assert_eq!(
        (service.trial_credits, service.trial_days),
        (Credits::whole(15).expect("c"), 30)
    );

    // Figures per database: consumption by captures, revenue by credited orders.
    sc.grant(&sms, "tok-x", 50);
    let x = account_id(&sc, sms.id, "tok-x");
    let (_, hold, _) = sc
        .db
        .store
        .authorize(x, Credits::whole(8).expect("c"), 1, Some("SMS to 4 people"))
        .expect("hold");
    sc.db.store.capture(&hold, None, None).expect("capture");
    let order = sc
        .db
        .store
        .create_order(x, PackId::from_stored(1))
        .expect("order");
    sc.db
        .store
        .confirm_order(
            order.id,
            &iap_sidecar::payments::Confirmation {
                by: "test".into(),
                reference: None,
            },
        )
        .expect("confirm");
    let html = web.get("/portal/provider?days=all").body;
    assert!(html.contains(">8<") && html.contains("5.00 EUR"), "{html}");

    // Key rotation: the new key is shown once; the old key no longer signs in; this
    // session follows the new key.
    let p = web.post_form("/portal/provider/rotate-key", &[("csrf", &token)]);
    let html = p.expect(200, "rotation").to_owned();
    let at = html.find("id=\"new-key\">").expect("new key shown") + "id=\"new-key\">".len();
    let new_key = html[at..html[at..].find('<').map(|e| at + e).expect("end")].to_owned();
    assert!(new_key.starts_with("iapkey_"), "{new_key}");
    assert_eq!(
        web.get("/portal/provider").status,
        200,
        "session moved to the new key"
    );
    assert!(
        !web.get("/portal/provider").body.contains(&new_key),
        "shown once"
    );
    let fresh = Web::new(&sc.base);
    let token = csrf(&fresh.get("/portal/provider/login").body);
    assert_eq!(
        fresh
            .post_form(
                "/portal/provider/login",
                &[("csrf", &token), ("key", "key-sms")]
            )
            .status,
        401
    );
    assert_eq!(
        fresh
            .post_form(
                "/portal/provider/login",
                &[("csrf", &token), ("key", &new_key)]
            )
            .status,
        303
    );
    Ok(())
}
