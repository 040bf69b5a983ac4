//! Which addresses Berth may contact.
//!
//! Berth fetches URLs that users type, so it is a server-side request forgery target. By default
//! it refuses loopback, link-local (which holds cloud metadata endpoints such as 169.254.169.254),
//! unspecified (0.0.0.0/8, which Linux connects to this machine), multicast and broadcast
//! addresses, and the cloud metadata endpoints that live outside link-local space. IPv6 forms
//! that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by the address they carry. The rule is applied to the *resolved* address of every
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
    } else if METADATA_V4.contains(&ip) {
        Some(METADATA)
    } else {
        None
    }
}

/// Cloud metadata services that are not in link-local space: AWS's IPv6 instance metadata
/// endpoint, Alibaba Cloud's metadata service and Azure's WireServer.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];
const METADATA_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(100, 100, 100, 200), Ipv4Addr::new(168, 63, 129, 16)];
const METADATA: &str = "a cloud metadata address";

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (where cloud metadata services live)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if METADATA_V6.contains(&ip) {
        Some(METADATA)
    } else if seg[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d) forms are deprecated but still routed by some stacks.
        forbidden_v4(embedded_v4(seg[6], seg[7]))
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix (RFC 6052): the gateway connects to the IPv4 address inside.
        forbidden_v4(embedded_v4(seg[6], seg[7]))
    } else if seg[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the operator's prefix
        // length, so it cannot be checked; an operator who uses it allows it explicitly.
        Some("a local-use NAT64 address, whose IPv4 destination cannot be checked")
    } else if seg[0] == 0x2002 {
        // 6to4 (RFC 3056): the relay sends to the IPv4 address in bits 16 to 47.
        forbidden_v4(embedded_v4(seg[1], seg[2]))
    } else {
        None
    }
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
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
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!p.allows(ip(bad)), "{bad} should be refused");
        }
        for good in ["10.1.2.3", "192.168.1.1", "8.8.8.8", "2001:db8::1"] {
            assert!(p.allows(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn every_spelling_of_a_forbidden_address_is_refused() {
        let p = NetworkPolicy::default();
        let cases = [
            ("0.1.2.3", "unspecified"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::ffff:7f00:1", "loopback"),
            ("::127.0.0.1", "loopback"),
            ("::169.254.169.254", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::169.254.169.254", "link-local"),
            ("64:ff9b:1::a00:1", "NAT64"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("fe80::1%1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("ff02::1", "multicast"),
            ("fd00:ec2::254", "metadata"),
            ("100.100.100.200", "metadata"),
            ("168.63.129.16", "metadata"),
            ("::ffff:100.100.100.200", "metadata"),
        ];
        for (addr, why) in cases {
            let parsed = addr.split('%').next().unwrap_or(addr);
            let reason = p.refusal(ip(parsed));
            assert!(reason.is_some_and(|r| r.contains(why)), "{addr}: {reason:?}, expected {why}");
        }
        // The embedded address decides: public ones inside the same wrappers stay allowed.
        for good in ["64:ff9b::808:808", "2002:808:808::1", "::ffff:10.0.0.1", "100.64.0.1", "fd00::1", "fec0::1"] {
            assert!(p.allows(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn allow_list_admits_wrapped_forms_it_names() {
        let p = NetworkPolicy::parse_allow_list("64:ff9b:1::/48").unwrap_or_default();
        assert!(p.allows(ip("64:ff9b:1::a00:1")));
        assert!(!p.allows(ip("64:ff9b::7f00:1")));
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
