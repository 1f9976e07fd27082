//! Where webhooks may be sent: http(s) URLs whose addresses — the resolved
//! ones, not just the URL's text — are public, or admitted by the
//! configured allow-list. Private, loopback, link-local and other special
//! addresses are refused otherwise, so that an endpoint cannot be pointed
//! at the server's own network (SSRF).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::error::{AppError, AppResult};

/// Longest accepted endpoint URL.
const MAX_URL: usize = 2048;

/// The message of a refused address, for the delivery log.
pub(crate) const REFUSED_ADDRESS: &str =
    "the endpoint's address is private, loopback or link-local, and not in webhooks.allowed_networks";

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// The policy admitting `allowed` besides public addresses.
    pub(crate) fn new(allowed: &[IpNet]) -> Self {
        Self {
            allowed: allowed.to_vec(),
        }
    }

    /// Whether a delivery may connect to `ip`.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            // `::ffff:10.0.0.1` is 10.0.0.1.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        // An IPv6 address that reaches an IPv4 one (NAT64, 6to4, the
        // deprecated compatible form) is what that IPv4 address is.
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = embedded_ipv4(v6)
            && !self.permits(IpAddr::V4(v4))
        {
            return false;
        }
        !is_special(ip)
    }

    /// Checks an endpoint URL: http or https, a host, no credentials, at
    /// most 2048 characters, and an address literal only if permitted
    /// (host names are checked when they are resolved, at each delivery).
    pub(crate) fn check_url(&self, field: &str, text: &str) -> AppResult<Url> {
        let text = text.trim();
        if text.len() > MAX_URL {
            return Err(AppError::bad_input(
                field,
                format!("at most {MAX_URL} characters"),
            ));
        }
        let url = Url::parse(text).map_err(|_| AppError::bad_input(field, "is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::bad_input(field, "must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::bad_input(
                field,
                "must not carry credentials: deliveries are signed instead",
            ));
        }
        if url.as_str().len() > MAX_URL {
            return Err(AppError::bad_input(
                field,
                format!("at most {MAX_URL} characters"),
            ));
        }
        match url.host() {
            None => return Err(AppError::bad_input(field, "must name a host")),
            Some(url::Host::Ipv4(ip)) if !self.permits(IpAddr::V4(ip)) => {
                return Err(AppError::bad_input(field, REFUSED_ADDRESS));
            }
            Some(url::Host::Ipv6(ip)) if !self.permits(IpAddr::V6(ip)) => {
                return Err(AppError::bad_input(field, REFUSED_ADDRESS));
            }
            Some(_) => {}
        }
        Ok(url)
    }
}

/// The IPv4 address an IPv6 one carries to: NAT64 (`64:ff9b::/96`,
/// `64:ff9b:1::/48`), 6to4 (`2002::/16`) and IPv4-compatible (`::/96`).
fn embedded_ipv4(ip: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let octets = ip.octets();
    let last = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(last),
        _ => None,
    }
}

/// Addresses that are not on the public internet.
fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || a == 0
                // Shared address space (carrier-grade NAT), 100.64.0.0/10.
                || (a == 100 && (64..128).contains(&b))
                // IETF protocol assignments and benchmarking.
                || (a == 192 && b == 0 && ip.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                // The 6to4 relay anycast, 192.88.99.0/24.
                || (a == 192 && b == 88 && ip.octets()[2] == 99)
                || a >= 240
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                // Unique local, fc00::/7.
                || (first & 0xfe00) == 0xfc00
                // Link-local, fe80::/10.
                || (first & 0xffc0) == 0xfe80
                // Documentation, 2001:db8::/32; Teredo, 2001::/32.
                || (first == 0x2001 && matches!(ip.segments()[1], 0x0db8 | 0))
                // Discard-only, 100::/64.
                || ip.segments()[..4] == [0x100, 0, 0, 0]
                // Site-local (deprecated), fec0::/10.
                || (first & 0xffc0) == 0xfec0
                || ip == Ipv4Addr::UNSPECIFIED.to_ipv6_mapped()
        }
    }
}

/// Resolves host names for deliveries, keeping only the addresses the
/// policy permits: the connection goes to a checked address, whatever the
/// name resolves to by then.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver(pub(crate) Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| policy.permits(address.ip()))
                .collect();
            if permitted.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    REFUSED_ADDRESS,
                ));
                return Err(refused);
            }
            let addresses: Addrs = Box::new(permitted.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused_unless_allowed() {
        let strict = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::",
            "2001::1",
            "100::1",
            "fec0::1",
            "192.88.99.1",
        ] {
            assert!(!strict.permits(ip(refused)), "{refused}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(strict.permits(ip(public)), "{public}");
        }
        let loopback = AddressPolicy::new(&["127.0.0.0/8".parse().unwrap_or_else(|_| panic!("a network"))]);
        assert!(loopback.permits(ip("127.0.0.1")));
        assert!(loopback.permits(ip("::ffff:127.0.0.1")));
        assert!(!loopback.permits(ip("10.0.0.1")));
    }

    #[test]
    fn only_http_urls_without_credentials_or_refused_literals_pass() {
        let strict = AddressPolicy::default();
        for (url, passes) in [
            ("https://hooks.example.org/session-manager", true),
            ("http://hooks.example.org:8080/x", true),
            ("ftp://hooks.example.org/", false),
            ("https://user:pass@hooks.example.org/", false),
            ("http://127.0.0.1:9000/", false),
            ("http://[::1]/", false),
            ("http://169.254.169.254/latest/meta-data", false),
            ("not a url", false),
        ] {
            assert_eq!(strict.check_url("url", url).is_ok(), passes, "{url}");
        }
    }
}
