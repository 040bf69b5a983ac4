//! Which addresses Berth may contact.
//!
//! Berth fetches URLs that users type, so it is a server-side request forgery target. By default
//! it refuses loopback, link-local (which holds cloud metadata endpoints such as 169.254.169.254),
//! unspecified and multicast addresses. The rule is applied to the *resolved* address of every
//! connection, redirects included, by the HTTP layer; this module only decides.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Extra ranges an operator allowed (`BERTH_NETWORK_ALLOW`), which win over the defaults.
    allow: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid network range {0:?}: expected CIDR notation such as 10.0.0.0/8 or an address")]
pub struct BadRange(pub String);

impl NetworkPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        NetworkPolicy { allow }
    }

    /// Parses a comma-separated list of CIDRs or single addresses.
    pub fn parse_allow_list(s: &str) -> Result<Self, BadRange> {
        let mut allow = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BadRange(part.to_owned()))?;
            allow.push(net);
        }
        Ok(NetworkPolicy { allow })
    }

    pub fn allowed_ranges(&self) -> &[IpNet] {
        &self.allow
    }

    /// `None` when the address may be contacted, else why not.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = canonical(ip);
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        forbidden_reason(ip)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry,
/// so the mapping cannot be used to slip past the rules.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address (where cloud metadata services live)")
    } else if ip.is_unspecified() || ip.octets()[0] == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg0 = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if seg0 & 0xffc0 == 0xfe80 {
        Some("a link-local address (where cloud metadata services live)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible (::a.b.c.d) forms are deprecated but still routed by some stacks.
        if seg0 == 0 && ip.segments()[1..5].iter().all(|s| *s == 0) {
            forbidden_v4(v4)
        } else {
            None
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn defaults_refuse_loopback_link_local_unspecified() {
        let p = NetworkPolicy::default();
        for bad in ["127.0.0.1", "127.8.9.10", "169.254.169.254", "0.0.0.0", "::1", "::", "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1"] {
            assert!(!p.allows(ip(bad)), "{bad} should be refused");
        }
        for good in ["10.1.2.3", "192.168.1.1", "8.8.8.8", "2001:db8::1"] {
            assert!(p.allows(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn allow_list_overrides_defaults() {
        let p = NetworkPolicy::parse_allow_list(" 127.0.0.0/8, ::1 ").unwrap_or_default();
        assert!(p.allows(ip("127.0.0.1")));
        assert!(p.allows(ip("::1")));
        assert!(p.allows(ip("::ffff:127.0.0.1")));
        assert!(!p.allows(ip("169.254.169.254")));
        assert_eq!(NetworkPolicy::parse_allow_list("nope"), Err(BadRange("nope".into())));
    }
}
