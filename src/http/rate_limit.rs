//! A token bucket per client address for the routes that need no key: each address may
//! make `burst` requests at once, then `per_second` on average. Keyed requests (providers,
//! operators) are not counted: their key already says who they are.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::LimitSettings;

/// Bounds memory whatever the callers send: past this many addresses, the full buckets
/// (addresses that have not been limited lately) are forgotten first.
const MAX_CLIENTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    trusted_proxies: Vec<IpAddr>,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A request refused: how long until the address may ask again.
#[derive(Clone, Copy, Debug)]
pub struct Limited {
    pub retry_after_secs: u64,
}

impl RateLimiter {
    pub fn new(settings: &LimitSettings) -> RateLimiter {
        RateLimiter {
            per_second: settings.unauthenticated_per_second,
            burst: f64::from(settings.unauthenticated_burst),
            trusted_proxies: settings.trusted_proxies.clone(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the bucket of the client that sent `req`.
    pub fn check(&self, req: &actix_web::HttpRequest) -> Result<(), Limited> {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        let client = client_address(
            req.peer_addr().map(|a| a.ip()),
            forwarded,
            &self.trusted_proxies,
        );
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        // Without a peer address (not over TCP) there is no stranger to tell apart.
        let Some(client) = client else {
            return Ok(());
        };
        // Buckets are plain numbers: a panic elsewhere cannot leave one half-written.
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (per_second, burst) = (self.per_second, self.burst);
            clients.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
            });
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        let bucket = clients.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            // Saturating float-to-int cast: a tiny rate cannot overflow.
            Err(Limited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            })
        }
    }
}

/// Who the client is: the peer, unless the peer is a trusted proxy; then the last
/// `X-Forwarded-For` address (proxies append the address they received from) that is not
/// itself a trusted proxy. Addresses before it were written by the client and prove
/// nothing; a header that cannot be read leaves the proxy as the client, so a broken
/// proxy shares one bucket rather than letting a caller pick its own.
fn client_address<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(addr) if trusted.contains(&addr) => continue,
            Ok(addr) => return Some(addr),
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = RateLimiter::new(&LimitSettings {
            unauthenticated_per_second: 1000.0,
            unauthenticated_burst: 3,
            accounts_per_database: 1,
            trusted_proxies: Vec::new(),
        });
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        let passed = (0..10).filter(|_| limiter.check_at(a, t0).is_ok()).count();
        assert_eq!(passed, 3, "the burst, then nothing in the same instant");
        let refused = limiter.check_at(a, t0).expect_err("empty bucket");
        assert_eq!(refused.retry_after_secs, 1);
        assert!(
            limiter.check_at(b, t0).is_ok(),
            "another address has its own bucket"
        );
        let later = t0 + std::time::Duration::from_millis(2);
        assert_eq!(
            (0..10)
                .filter(|_| limiter.check_at(a, later).is_ok())
                .count(),
            2,
            "2 ms at 1000/s refill two requests"
        );
        assert!(limiter.check_at(None, t0).is_ok());
    }

    #[test]
    fn forwarded_address_only_from_trusted_proxies() {
        let proxy = IpAddr::from([127, 0, 0, 1]);
        let inner = IpAddr::from([10, 0, 0, 9]);
        let client = IpAddr::from([203, 0, 113, 7]);
        let trusted = [proxy, inner];
        let of = |peer, headers: &[&'static str]| {
            client_address(Some(peer), headers.iter().copied(), &trusted)
        };
        // A caller that is not a proxy cannot name another address.
        assert_eq!(
            client_address(Some(client), ["198.51.100.1"].into_iter(), &trusted),
            Some(client)
        );
        // Behind the proxy: the address it appended.
        assert_eq!(of(proxy, &["203.0.113.7"]), Some(client));
        // What the client wrote itself comes first and is passed over.
        assert_eq!(of(proxy, &["198.51.100.1, 203.0.113.7"]), Some(client));
        // Two proxies, one header each.
        assert_eq!(of(proxy, &["203.0.113.7", "10.0.0.9"]), Some(client));
        // No header, or one that is not an address: the proxy itself.
        assert_eq!(of(proxy, &[]), Some(proxy));
        assert_eq!(of(proxy, &["bogus"]), Some(proxy));
        assert_eq!(of(proxy, &["bogus, 203.0.113.7"]), Some(client));
        assert_eq!(client_address(None, [].into_iter(), &trusted), None);
    }
}
