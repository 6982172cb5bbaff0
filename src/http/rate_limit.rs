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
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), Limited> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = RateLimiter::new(&LimitSettings {
            unauthenticated_per_second: 1000.0,
            unauthenticated_burst: 3,
            accounts_per_database: 1,
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
}
