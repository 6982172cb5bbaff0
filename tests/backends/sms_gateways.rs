//! The SMS gateways against real servers on loopback: an SMSC built on the SMPP 3.4
//! server of `smpp.twisted3` (`tests/sms/smsc.py`) and Twilio's Messages API as Twilio
//! documents it (`tests/sms/twilio_api.py`), both started here and driven through their
//! control interfaces. The adapters are built with `sms::gateway::build`, as the sidecar
//! builds them. No database is involved: each trial runs once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use iap_sidecar::config::Secret;
use iap_sidecar::sms::SmsMessageId;
use iap_sidecar::sms::gateway::smpp::SmppSettings;
use iap_sidecar::sms::gateway::twilio::TwilioSettings;
use iap_sidecar::sms::gateway::{
    Callback, CallbackError, Context, Gateway, GatewaySettings, Outgoing, Receipt, ReceiptSink,
    SubmitError, Submitted, build,
};
use iap_sidecar::sms::status::{Delivery, Failure};
use iap_sidecar::sms::text::segments;
use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const SYSTEM_ID: &str = "iapsidecar";
const PASSWORD: &str = "secret12";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
/// Bounds every wait on a server (start, bind, receipt).
const PATIENCE: Duration = Duration::from_secs(20);

type TestFn = fn() -> Result<(), Failed>;

const SMPP_TESTS: &[(&str, TestFn)] = &[
    (
        "smpp_texts_numbers_and_receipts",
        smpp_texts_numbers_and_receipts,
    ),
    ("smpp_refusals_and_outage", smpp_refusals_and_outage),
    ("smpp_session_keepalive", smpp_session_keepalive),
];

const TWILIO_TESTS: &[(&str, TestFn)] = &[
    (
        "twilio_submit_and_signed_callbacks",
        twilio_submit_and_signed_callbacks,
    ),
    ("twilio_refusals_and_outage", twilio_refusals_and_outage),
];

/// The trials: ignored when python3 (or, for SMPP, `smpp.twisted3`) is missing, except
/// on CI, where they run and fail with what is missing.
pub fn trials(ci: bool) -> Vec<Trial> {
    let python = |check: &str| {
        Command::new("python3")
            .args(["-c", check])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut trials = Vec::new();
    for (tests, available, missing) in [
        (
            SMPP_TESTS,
            python("import smpp.twisted.server"),
            "python3 with smpp.twisted3 (pip install smpp.twisted3)",
        ),
        (TWILIO_TESTS, python("import http.server"), "python3"),
    ] {
        if !available && !ci {
            eprintln!("SMS gateway tests ignored: they need {missing}");
        }
        for &(name, test) in tests {
            let full = format!("sms_gateways::{name}");
            trials.push(if available || ci {
                Trial::test(full, test)
            } else {
                Trial::test(full, move || {
                    Err(format!("{missing} is not installed").into())
                })
                .with_ignored_flag(true)
            });
        }
    }
    trials
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A test server process, killed when dropped.
pub(crate) struct Server {
    child: Child,
    /// The `key=value` pairs of its READY line.
    ready: Vec<(String, String)>,
}

impl Server {
    pub(crate) fn start(script: &str, args: &[&str]) -> Result<Server, Failed> {
        let path = format!("{}/tests/sms/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("python3 {script}: {e}"))?;
        // The READY line comes once the ports listen; a crash closes stdout instead.
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let mut server = Server {
            child,
            ready: Vec::new(),
        };
        match read {
            Ok(n) if n > 0 && line.starts_with("READY ") => {}
            _ => return Err(format!("{script} did not start: {line:?}").into()),
        }
        server.ready = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(server)
    }

    pub(crate) fn port(&self, key: &str) -> Result<u16, Failed> {
        self.ready
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| format!("no {key}= in the READY line").into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A receipt sink that hands receipts to the test.
fn sink() -> (ReceiptSink, mpsc::UnboundedReceiver<Receipt>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: ReceiptSink = Arc::new(move |receipt| {
        let _ = tx.send(receipt);
        Box::pin(async {})
    });
    (sink, rx)
}

fn context(name: &str, public_url: &str, receipts: ReceiptSink) -> Context {
    Context {
        name: name.into(),
        public_url: public_url.into(),
        receipts,
        http: reqwest::Client::new(),
    }
}

fn outgoing(id: i64, to: &str, sender: Option<&str>, text: &str) -> Outgoing {
    let s = segments(text);
    Outgoing {
        id: SmsMessageId::from_stored(id),
        uuid: format!("{id:032x}"),
        to: to.into(),
        sender: sender.map(str::to_owned),
        text: text.into(),
        encoding: s.encoding,
        segments: s.count,
    }
}

async fn control(http: &reqwest::Client, method: &str, url: String, body: Value) -> Value {
    let request = match method {
        "GET" => http.get(&url),
        _ => http.post(&url).json(&body),
    };
    let response = request.send().await.expect("control interface answers");
    response.json().await.unwrap_or(Value::Null)
}

async fn next_receipt(rx: &mut mpsc::UnboundedReceiver<Receipt>) -> Result<Receipt, Failed> {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .map_err(|_| "no receipt reached the sink")?
        .ok_or_else(|| "the sink was dropped".into())
}

/// Submits until the gateway takes the message or `PATIENCE` runs out: the session binds
/// (and rebinds after an outage) on its own schedule, and submits answer `Transient` at
/// once until it has.
async fn submit_when_bound(gw: &dyn Gateway, message: &Outgoing) -> Result<Submitted, Failed> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match gw.submit(message).await {
            Ok(done) => return Ok(done),
            Err(SubmitError::Transient(reason)) if Instant::now() < deadline => {
                let _ = reason;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(format!("not submitted: {e}").into()),
        }
    }
}

fn smpp_settings(port: u16, password: &str) -> GatewaySettings {
    GatewaySettings::Smpp(SmppSettings {
        host: "127.0.0.1".into(),
        port,
        system_id: SYSTEM_ID.into(),
        password: Secret::new(password),
        system_type: String::new(),
        source_addr: Some("IAPSidecar".into()),
        timeout_secs: 5,
        enquire_link_secs: 30,
    })
}

fn smsc(extra: &[&str]) -> Result<Server, Failed> {
    let mut args = vec![
        "--port",
        "0",
        "--control-port",
        "0",
        "--system-id",
        SYSTEM_ID,
        "--password",
        PASSWORD,
    ];
    args.extend_from_slice(extra);
    Server::start("smsc.py", &args)
}

fn smpp_texts_numbers_and_receipts() -> Result<(), Failed> {
    let server = smsc(&[])?;
    let control_url = format!("http://127.0.0.1:{}", server.port("control")?);
    let smpp_port = server.port("smpp")?;
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let (receipts, mut rx) = sink();
        let gw = build(
            &smpp_settings(smpp_port, PASSWORD),
            context("smsc", "http://127.0.0.1:1", receipts),
        )?;

        let gsm = outgoing(1, "+32470123456", None, "Hello @ £5 from Odoo: ÄÖÜ ok?");
        let ucs2 = outgoing(2, "+33612345678", Some("+15005550006"), "Привет 😀 €5");
        let long_text: String = (0..400)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let long = outgoing(3, "+15555550100", Some("ACME"), &long_text);
        assert_eq!(long.segments, 3);

        let gsm_ref = submit_when_bound(gw.as_ref(), &gsm).await?.gateway_ref;
        let ucs2_ref = gw.submit(&ucs2).await?.gateway_ref;
        let long_ref = gw.submit(&long).await?.gateway_ref;

        let messages = control(&http, "GET", format!("{control_url}/messages"), json!(null)).await;
        let messages = messages.as_array().ok_or("messages: not a list")?;
        assert_eq!(messages.len(), 5, "{messages:#?}");

        let m = &messages[0];
        assert_eq!(m["message_id"], gsm_ref);
        assert_eq!(m["destination"], "+32470123456");
        assert_eq!(m["dest_addr_ton"], "INTERNATIONAL");
        assert_eq!(m["text"], gsm.text);
        assert_eq!(m["data_coding"], 0);
        assert_eq!(m["source"], "IAPSidecar");
        assert_eq!(m["source_addr_ton"], "ALPHANUMERIC");
        assert_eq!(m["registered_delivery"], "SMSC_DELIVERY_RECEIPT_REQUESTED");
        assert_eq!(m["esm_class"], 0);

        let m = &messages[1];
        assert_eq!(m["message_id"], ucs2_ref);
        assert_eq!(m["destination"], "+33612345678");
        assert_eq!(m["text"], ucs2.text);
        assert_eq!(m["data_coding"], 8);
        assert_eq!(m["source"], "15005550006");
        assert_eq!(m["source_addr_ton"], "INTERNATIONAL");

        // Three parts, one submit_sm each, joined by their UDH; the message is known by
        // its first part's id.
        let parts = &messages[2..5];
        assert_eq!(parts[0]["message_id"], long_ref);
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part["esm_class"], 0x40);
            assert_eq!(part["destination"], "+15555550100");
            assert_eq!(part["source"], "ACME");
            assert_eq!(part["udh"]["total"], 3);
            assert_eq!(part["udh"]["seq"], i + 1);
            assert_eq!(part["udh"]["ref"], parts[0]["udh"]["ref"]);
            joined.push_str(part["text"].as_str().unwrap_or_default());
        }
        assert_eq!(joined, long_text);
        assert_eq!(parts[0]["text"].as_str().map(str::len), Some(153));

        // Receipts come back through the sink, in order.
        let send = |ids: Vec<&Value>, stat: &str| {
            control(
                &http,
                "POST",
                format!("{control_url}/receipts"),
                json!({"message_ids": ids, "stat": stat, "err": "000"}),
            )
        };
        assert_eq!(send(vec![&json!(gsm_ref)], "DELIVRD").await["sent"], 1);
        let r = next_receipt(&mut rx).await?;
        assert_eq!(r.gateway_ref, gsm_ref);
        assert_eq!(r.delivery, Delivery::Delivered);

        assert_eq!(send(vec![&json!(ucs2_ref)], "UNDELIV").await["sent"], 1);
        let r = next_receipt(&mut rx).await?;
        assert_eq!(
            (r.gateway_ref.as_str(), r.delivery),
            (ucs2_ref.as_str(), Delivery::Failed(Failure::NotDelivered))
        );

        // A state we do not know is acknowledged (the SMSC must not resend it) and
        // dropped: the next receipt in the sink is the one sent after it.
        assert_eq!(send(vec![&json!(gsm_ref)], "BOGUS").await["sent"], 1);
        assert_eq!(send(vec![&json!(long_ref)], "EXPIRED").await["sent"], 1);
        let r = next_receipt(&mut rx).await?;
        assert_eq!(
            (r.gateway_ref.as_str(), r.delivery),
            (long_ref.as_str(), Delivery::Failed(Failure::Expired))
        );
        assert_eq!(send(vec![&json!(long_ref)], "REJECTD").await["sent"], 1);
        assert_eq!(
            next_receipt(&mut rx).await?.delivery,
            Delivery::Failed(Failure::Rejected)
        );

        // SMPP takes no HTTP callbacks.
        let headers = HeaderMap::new();
        let callback = Callback {
            url: "http://127.0.0.1:1/sms/receipts/smsc",
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            gw.read_callback(&callback),
            Err(CallbackError::NotSupported)
        ));
        Ok(())
    })
}

fn smpp_refusals_and_outage() -> Result<(), Failed> {
    let server = smsc(&["--reject-prefix", "+999"])?;
    let control_url = format!("http://127.0.0.1:{}", server.port("control")?);
    let smpp_port = server.port("smpp")?;
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let (receipts, _rx) = sink();
        let gw = build(
            &smpp_settings(smpp_port, PASSWORD),
            context("smsc", "http://127.0.0.1:1", receipts),
        )?;
        let first =
            submit_when_bound(gw.as_ref(), &outgoing(1, "+32470123456", None, "one")).await?;
        assert!(!first.gateway_ref.is_empty());

        // ESME_RINVDSTADR: never worth trying again.
        match gw.submit(&outgoing(2, "+99912345678", None, "two")).await {
            Err(SubmitError::Refused { failure, .. }) => {
                assert_eq!(failure, Failure::InvalidDestination)
            }
            other => return Err(format!("want a refusal, got {other:?}").into()),
        }

        // A wrong password never binds: every submit is transient.
        let (receipts, _rx2) = sink();
        let wrong = build(
            &smpp_settings(smpp_port, "wrongpw"),
            context("smsc-wrong", "http://127.0.0.1:1", receipts),
        )?;
        assert!(matches!(
            wrong.submit(&outgoing(3, "+32470123456", None, "x")).await,
            Err(SubmitError::Transient(_))
        ));

        // The SMSC goes down: transient, and nothing reaches it.
        control(&http, "POST", format!("{control_url}/down"), json!({})).await;
        let during = outgoing(4, "+32470123456", None, "during the outage");
        match gw.submit(&during).await {
            Err(SubmitError::Transient(_)) => {}
            other => return Err(format!("want a transient error, got {other:?}").into()),
        }
        // Back up: the session binds again by itself and the message goes.
        control(&http, "POST", format!("{control_url}/up"), json!({})).await;
        let after = submit_when_bound(gw.as_ref(), &during).await?;
        assert_ne!(after.gateway_ref, first.gateway_ref);
        let messages = control(&http, "GET", format!("{control_url}/messages"), json!(null)).await;
        let texts: Vec<&str> = messages
            .as_array()
            .ok_or("messages: not a list")?
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert_eq!(texts, vec!["one", "during the outage"]);

        // The process gone altogether: transient too.
        drop(server);
        match gw.submit(&outgoing(5, "+32470123456", None, "gone")).await {
            Err(SubmitError::Transient(_)) => Ok(()),
            other => Err(format!("want a transient error, got {other:?}").into()),
        }
    })
}

fn smpp_session_keepalive() -> Result<(), Failed> {
    // The SMSC sends enquire_link after 0.3 s idle and drops a session that leaves one
    // unanswered for 1 s; the gateway sends its own every second.
    let server = smsc(&["--enquire-link-secs", "0.3", "--response-secs", "1"])?;
    let control_url = format!("http://127.0.0.1:{}", server.port("control")?);
    let smpp_port = server.port("smpp")?;
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let (receipts, _rx) = sink();
        let mut settings = smpp_settings(smpp_port, PASSWORD);
        if let GatewaySettings::Smpp(s) = &mut settings {
            s.enquire_link_secs = 1;
        }
        let gw = build(&settings, context("smsc", "http://127.0.0.1:1", receipts))?;
        submit_when_bound(gw.as_ref(), &outgoing(1, "+32470123456", None, "first")).await?;

        let deadline = Instant::now() + PATIENCE;
        let sessions = loop {
            let s = control(&http, "GET", format!("{control_url}/sessions"), json!(null)).await;
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            if n("enquire_links") >= 3 && n("enquire_links_answered") >= 3 {
                break s;
            }
            if Instant::now() > deadline {
                return Err(format!("no enquire_link exchange: {s}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Still the first session: no enquire_link went unanswered either way.
        assert_eq!(sessions["binds"], 1, "{sessions}");
        assert_eq!(sessions["bound"], 1, "{sessions}");
        gw.submit(&outgoing(2, "+32470123456", None, "second"))
            .await
            .map_err(|e| format!("after idle time: {e}"))?;
        Ok(())
    })
}

/// One request as the callback listener received it.
struct Captured {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 listener standing in for the sidecar's `/sms/receipts/{gateway}`:
/// it answers 204 and hands each request to the test, which feeds it to `read_callback`.
async fn callback_listener() -> Result<(String, mpsc::UnboundedReceiver<Captured>), Failed> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or_default()
                    .to_owned();
                let mut headers = HeaderMap::new();
                let mut length = 0;
                for line in lines {
                    if let Some((name, value)) = line.split_once(':') {
                        let value = value.trim();
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.parse().unwrap_or(0);
                        }
                        if let (Ok(n), Ok(v)) =
                            (HeaderName::from_str(name), HeaderValue::from_str(value))
                        {
                            headers.append(n, v);
                        }
                    }
                }
                let mut body = data[head_end + 4..].to_vec();
                while body.len() < length {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tx.send(Captured {
                    path,
                    headers,
                    body,
                });
            });
        }
    });
    Ok((origin, rx))
}

fn twilio_api(extra: &[&str]) -> Result<Server, Failed> {
    let mut args = vec![
        "--port",
        "0",
        "--account-sid",
        ACCOUNT_SID,
        "--auth-token",
        AUTH_TOKEN,
    ];
    args.extend_from_slice(extra);
    Server::start("twilio_api.py", &args)
}

fn twilio_settings(port: u16, token: &str) -> GatewaySettings {
    GatewaySettings::Twilio(TwilioSettings {
        account_sid: ACCOUNT_SID.into(),
        auth_token: Secret::new(token),
        from: Some("+15005550006".into()),
        messaging_service_sid: None,
        api_base: format!("http://127.0.0.1:{port}"),
        timeout_secs: 5,
    })
}

fn twilio_submit_and_signed_callbacks() -> Result<(), Failed> {
    let server = twilio_api(&[])?;
    let port = server.port("port")?;
    let api = format!("http://127.0.0.1:{port}");
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let (origin, mut captured) = callback_listener().await?;
        let (receipts, _rx) = sink();
        let cx = context("twilio", &origin, receipts);
        let callback_url = cx.callback_url();
        let gw = build(&twilio_settings(port, AUTH_TOKEN), cx)?;

        let gsm = outgoing(1, "+32470123456", None, "Your code: 123456");
        let ucs2 = outgoing(2, "+33612345678", Some("ACME"), "Привет 😀");
        let gsm_sid = gw.submit(&gsm).await?.gateway_ref;
        let ucs2_sid = gw.submit(&ucs2).await?.gateway_ref;
        assert!(
            gsm_sid.starts_with("SM") && gsm_sid.len() == 34,
            "{gsm_sid}"
        );

        let messages = control(
            &http,
            "GET",
            format!("{api}/_control/messages"),
            json!(null),
        )
        .await;
        let messages = messages.as_array().ok_or("messages: not a list")?;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["sid"], gsm_sid);
        assert_eq!(messages[0]["to"], "+32470123456");
        assert_eq!(messages[0]["from"], "+15005550006");
        assert_eq!(messages[0]["body"], gsm.text);
        assert_eq!(messages[0]["status_callback"], callback_url);
        assert_eq!(messages[1]["sid"], ucs2_sid);
        assert_eq!(messages[1]["from"], "ACME");
        assert_eq!(messages[1]["body"], ucs2.text);

        // The emulator posts a signed callback; read_callback checks and reads it.
        let mut status = async |sid: &str, status: &str, code: Option<u32>| {
            let mut body = json!({"sid": sid, "status": status});
            if let Some(code) = code {
                body["error_code"] = json!(code);
            }
            http.post(format!("{api}/_control/status"))
                .json(&body)
                .send()
                .await
                .expect("control answers");
            tokio::time::timeout(PATIENCE, captured.recv())
                .await
                .ok()
                .flatten()
                .expect("the callback reached the listener")
        };
        let read = |c: &Captured, url: &str| {
            gw.read_callback(&Callback {
                url,
                headers: &c.headers,
                body: &c.body,
            })
        };

        let delivered = status(&gsm_sid, "delivered", None).await;
        assert_eq!(delivered.path, "/sms/receipts/twilio");
        let r = read(&delivered, &callback_url)?;
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].gateway_ref.as_str(), r[0].delivery),
            (gsm_sid.as_str(), Delivery::Delivered)
        );

        let sent = status(&ucs2_sid, "sent", None).await;
        assert_eq!(read(&sent, &callback_url)?[0].delivery, Delivery::Sent);
        let unknown_handset = status(&ucs2_sid, "undelivered", Some(30005)).await;
        assert_eq!(
            read(&unknown_handset, &callback_url)?[0].delivery,
            Delivery::Failed(Failure::InvalidDestination)
        );
        let filtered = status(&ucs2_sid, "undelivered", Some(30007)).await;
        assert_eq!(
            read(&filtered, &callback_url)?[0].delivery,
            Delivery::Failed(Failure::NotAllowed)
        );
        let failed = status(&gsm_sid, "failed", Some(30008)).await;
        assert_eq!(
            read(&failed, &callback_url)?[0].delivery,
            Delivery::Failed(Failure::Rejected)
        );
        let failed = status(&gsm_sid, "failed", Some(30006)).await;
        assert_eq!(
            read(&failed, &callback_url)?[0].delivery,
            Delivery::Failed(Failure::InvalidDestination)
        );

        // Bad signatures: a body changed on the way, another URL, no header at all.
        let mut tampered = Captured {
            path: delivered.path.clone(),
            headers: delivered.headers.clone(),
            body: String::from_utf8_lossy(&delivered.body)
                .replace("MessageStatus=delivered", "MessageStatus=undelivered")
                .into_bytes(),
        };
        assert_ne!(tampered.body, delivered.body);
        assert!(matches!(
            read(&tampered, &callback_url),
            Err(CallbackError::BadSignature)
        ));
        assert!(matches!(
            read(&delivered, &format!("{callback_url}x")),
            Err(CallbackError::BadSignature)
        ));
        tampered.body = delivered.body.clone();
        tampered.headers.remove("x-twilio-signature");
        assert!(matches!(
            read(&tampered, &callback_url),
            Err(CallbackError::BadSignature)
        ));

        // A status Twilio never sends, correctly signed: refused, not guessed.
        let bogus = status(&gsm_sid, "teleported", None).await;
        assert!(matches!(
            read(&bogus, &callback_url),
            Err(CallbackError::Invalid(_))
        ));
        Ok(())
    })
}

fn twilio_refusals_and_outage() -> Result<(), Failed> {
    let server = twilio_api(&[])?;
    let port = server.port("port")?;
    let api = format!("http://127.0.0.1:{port}");
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let (receipts, _rx) = sink();
        let gw = build(
            &twilio_settings(port, AUTH_TOKEN),
            context("twilio", "http://127.0.0.1:1", receipts.clone()),
        )?;

        // Twilio's test numbers: not a mobile (21614), unsubscribed (21610), no route
        // (21612), region not enabled (21408).
        for (to, want) in [
            ("+15005550009", Failure::InvalidDestination),
            ("+15005550004", Failure::NotAllowed),
            ("+15005550002", Failure::InvalidDestination),
            ("+15005550003", Failure::NotAllowed),
        ] {
            match gw.submit(&outgoing(1, to, None, "hi")).await {
                Err(SubmitError::Refused { failure, .. }) => assert_eq!(failure, want, "{to}"),
                other => return Err(format!("{to}: want a refusal, got {other:?}").into()),
            }
        }
        // A wrong auth token is the operator's to fix: transient.
        let wrong = build(
            &twilio_settings(port, "0000feed0000feed0000feed0000feed"),
            context("twilio", "http://127.0.0.1:1", receipts.clone()),
        )?;
        assert!(matches!(
            wrong.submit(&outgoing(2, "+32470123456", None, "hi")).await,
            Err(SubmitError::Transient(_))
        ));

        // 503 while down; taken once up again.
        control(&http, "POST", format!("{api}/_control/down"), json!({})).await;
        let message = outgoing(3, "+32470123456", None, "after the outage");
        assert!(matches!(
            gw.submit(&message).await,
            Err(SubmitError::Transient(_))
        ));
        control(&http, "POST", format!("{api}/_control/up"), json!({})).await;
        let sid = gw.submit(&message).await?.gateway_ref;
        let messages = control(
            &http,
            "GET",
            format!("{api}/_control/messages"),
            json!(null),
        )
        .await;
        let messages = messages.as_array().ok_or("messages: not a list")?;
        assert_eq!(
            messages.len(),
            1,
            "refused and failed requests create nothing"
        );
        assert_eq!(messages[0]["sid"], sid);

        // Through a Messaging Service instead of a number: Twilio picks the sender.
        let service = format!("MG{}", "ab".repeat(16));
        let mut settings = twilio_settings(port, AUTH_TOKEN);
        if let GatewaySettings::Twilio(s) = &mut settings {
            s.from = None;
            s.messaging_service_sid = Some(service.clone());
        }
        let pooled = build(&settings, context("twilio", "http://127.0.0.1:1", receipts))?;
        let sid = pooled.submit(&message).await?.gateway_ref;
        let messages = control(
            &http,
            "GET",
            format!("{api}/_control/messages"),
            json!(null),
        )
        .await;
        let last = &messages[1];
        assert_eq!(last["sid"], sid);
        assert_eq!(last["messaging_service_sid"], service);
        assert_eq!(last["from"], Value::Null);
        assert_eq!(last["status"], "accepted");

        // Nobody listening at all: transient.
        drop(server);
        match gw.submit(&message).await {
            Err(SubmitError::Transient(_)) => Ok(()),
            other => Err(format!("want a transient error, got {other:?}").into()),
        }
    })
}
