//! One keep-alive HTTP/1.1 connection per virtual client (hyper's connection-level
//! client: no pool, no hidden retries), posting Odoo's JSON-RPC envelopes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Where the sidecar is: a loopback socket address, the Host header, a base path.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    /// Prefix of every route, without a trailing slash (usually empty).
    pub base_path: String,
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

impl Target {
    /// Parses `http://HOST[:PORT][/PATH]` and resolves HOST; refuses anything that is not
    /// on this machine's loopback (127.0.0.0/8, ::1).
    pub async fn resolve(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url {url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("--url {url:?}: expected http://HOST[:PORT][/PATH]"));
        }
        if path.contains(['?', '#']) {
            return Err(format!("--url {url:?}: no query or fragment, please"));
        }
        // host:port, with IPv6 literals in brackets.
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("--url {url:?}: unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p,
                None if after.is_empty() => "80",
                None => return Err(format!("--url {url:?}: bad port")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (authority, "80"),
            }
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("--url {url:?}: bad port {port:?}"))?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("--url {url:?}: cannot resolve {host:?}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("--url {url:?}: {host:?} resolves to nothing"));
        }
        if let Some(bad) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(format!(
                "--url {url:?}: {host:?} resolves to {}, which is not a loopback address; \
                 loadgen only targets this machine (127.0.0.0/8, ::1)",
                bad.ip()
            ));
        }
        Ok(Target {
            addr: addrs[0],
            host: authority.to_owned(),
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// Why a call did not give a result; the label used in the error counts.
#[derive(Debug)]
pub struct CallError {
    pub name: String,
    /// The connection cannot be reused.
    pub broken: bool,
}

impl CallError {
    fn broken(name: impl Into<String>) -> Self {
        CallError {
            name: name.into(),
            broken: true,
        }
    }
    fn answer(name: impl Into<String>) -> Self {
        CallError {
            name: name.into(),
            broken: false,
        }
    }
}

/// A virtual client's connection; reconnects lazily after a failure.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    id_state: u64,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Conn {
    pub fn new(target: Target, seed: u64) -> Conn {
        Conn {
            target,
            sender: None,
            id_state: seed,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, CallError> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .map_err(|e| CallError::broken(format!("connect: {}", e.kind())))?;
            stream
                .set_nodelay(true)
                .map_err(|e| CallError::broken(format!("connect: {}", e.kind())))?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| CallError::broken(format!("handshake: {e}")))?;
            tokio::spawn(async move {
                // Ends when the sender is dropped or the server closes the connection.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just set"))
    }

    /// A fresh JSON-RPC id: 32 hex digits, like Odoo's `uuid4().hex`.
    fn next_id(&mut self) -> String {
        let a = super::splitmix(&mut self.id_state);
        let b = super::splitmix(&mut self.id_state);
        format!("{a:016x}{b:016x}")
    }

    /// POSTs `{"jsonrpc":"2.0","method":"call","params":params,"id":"<hex>"}` to `route`
    /// and returns `result`, or the error's `data.name`.
    pub async fn call(&mut self, route: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id();
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": params,
            "id": id,
        });
        let body = serde_json::to_vec(&body).map_err(|e| CallError::answer(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{route}", self.target.base_path))
            .header(HOST, self.target.host.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::answer(format!("request: {e}")))?;
        let outcome = tokio::time::timeout(CALL_TIMEOUT, self.exchange(request)).await;
        let (status, bytes) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                if e.broken {
                    self.sender = None;
                }
                return Err(e);
            }
            Err(_) => {
                self.sender = None;
                return Err(CallError::broken("timeout (30 s)"));
            }
        };
        if status != 200 {
            return Err(CallError::answer(format!("HTTP {status}")));
        }
        let mut answer: Value =
            serde_json::from_slice(&bytes).map_err(|_| CallError::answer("answer is not JSON"))?;
        if answer.get("id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(CallError::answer("answer id does not match"));
        }
        if let Some(error) = answer.get("error") {
            let name = error
                .pointer("/data/name")
                .and_then(Value::as_str)
                .unwrap_or("error without data.name");
            return Err(CallError::answer(name));
        }
        match answer.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(CallError::answer("answer without result")),
        }
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), CallError> {
        let sender = self.connect().await?;
        sender
            .ready()
            .await
            .map_err(|e| CallError::broken(format!("connection: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| CallError::broken(format!("send: {e}")))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::broken(format!("read: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_targets() {
        for ok in [
            "http://127.0.0.1:8070",
            "http://127.1.2.3:1/",
            "http://[::1]:8070",
            "http://localhost:8070/base/",
        ] {
            let t = Target::resolve(ok).await;
            assert!(t.is_ok(), "{ok}: {t:?}");
        }
        assert_eq!(
            Target::resolve("http://localhost:8070/base/")
                .await
                .unwrap()
                .base_path,
            "/base"
        );
        for bad in [
            "http://10.0.0.1:8070",
            "http://192.168.1.1",
            "http://8.8.8.8:80",
            "http://[::ffff:10.0.0.1]:80",
            "https://127.0.0.1:8070",
            "ftp://127.0.0.1",
            "http://user@127.0.0.1:80",
            "http://0.0.0.0:8070",
        ] {
            assert!(Target::resolve(bad).await.is_err(), "{bad} accepted");
        }
    }
}
