//! Where the bridge may connect. A registration names any URL, so without a rule the
//! sidecar would call, on a stranger's behalf, whatever its own network reaches:
//! loopback services, a cloud's metadata address, the private network. Such addresses
//! are refused unless the operator lists the host in `odoo.allowed_hosts`.
//!
//! Names are resolved here and every address is checked; the connection then goes only
//! to the addresses checked (reqwest connects to what the resolver answers), so a name
//! that resolves elsewhere a second time (DNS rebinding) changes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Hosts the operator allows although they are, or resolve to, internal addresses.
#[derive(Clone, Debug, Default)]
pub struct TargetPolicy {
    allowed: Arc<Vec<String>>,
}

impl TargetPolicy {
    /// `hosts`: names or IP addresses as written in URLs (IPv6 with or without brackets),
    /// compared without regard to case.
    pub fn allowing<S: AsRef<str>>(hosts: &[S]) -> TargetPolicy {
        TargetPolicy {
            allowed: Arc::new(hosts.iter().map(|h| normalize(h.as_ref())).collect()),
        }
    }

    fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        self.allowed.contains(&host)
    }

    /// Checks a URL's host when it is an IP literal (literals are not resolved, so the
    /// resolver never sees them). `Err` names the refused host.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
        let Ok(ip) = normalize(host).parse::<IpAddr>() else {
            return Ok(());
        };
        if is_internal(ip) && !self.allows(&ip.to_string()) {
            return Err(ip.to_string());
        }
        Ok(())
    }

    /// The resolver the bridge's HTTP client uses.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            policy: self.clone(),
        })
    }
}

fn normalize(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A name resolved to an address the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves to an internal address ({address}); list it in odoo.allowed_hosts to allow it"
)]
pub struct RefusedTarget {
    pub host: String,
    pub address: IpAddr,
}

/// Resolves with the system resolver, then refuses the name if any of its addresses is
/// internal and the name is not allowed.
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.policy.allows(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allowed && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
                return Err(Box::new(RefusedTarget {
                    host,
                    address: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Loopback, private, link-local, unspecified, shared (carrier NAT), multicast, broadcast
/// and reserved addresses: nothing a public Odoo answers on.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_internal_v4(Ipv4Addr::new(a, b, c, d));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || is_v4_compatible(v6)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (b & 0xc0) == 64) // shared address space 100.64.0.0/10
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved 240.0.0.0/4
}

/// `::a.b.c.d` (deprecated IPv4-compatible form): some stacks still route it to IPv4.
fn is_v4_compatible(ip: Ipv6Addr) -> bool {
    ip.segments()[..6] == [0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn literals_are_checked_and_allowed_hosts_pass() {
        let strict = TargetPolicy::default();
        assert!(strict.check_url("http://127.0.0.1:8069").is_err());
        assert!(strict.check_url("http://[::1]:8069").is_err());
        assert!(strict.check_url("http://odoo.example.org").is_ok());
        assert!(strict.check_url("http://8.8.8.8").is_ok());
        let allowing = TargetPolicy::allowing(&["127.0.0.1", "[::1]", "Odoo"]);
        assert!(allowing.check_url("http://127.0.0.1:8069").is_ok());
        assert!(allowing.check_url("http://[::1]:8069").is_ok());
        assert!(allowing.check_url("http://10.0.0.1").is_err());
        assert!(allowing.allows("odoo"));
    }
}
