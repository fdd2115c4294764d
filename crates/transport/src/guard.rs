//! The network guard: which addresses a call may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Decides whether an address may be dialled (spec section 6).
///
/// Every non-public range is refused unless the allow list names it: by
/// address or CIDR range, or by host name (then every address that name
/// resolves to is allowed). The client applies the guard at connect time to
/// the addresses it actually dials, and to IP literals in URLs, so neither a
/// redirect nor a DNS answer that changes between check and connect gets
/// around it.
#[derive(Clone, Debug, Default)]
pub struct NetworkGuard {
    allowed_nets: Vec<IpNet>,
    allowed_hosts: Vec<String>,
}

/// An allow-list entry that is neither an address, a CIDR range nor a host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a host name, an IP address or a CIDR range")]
pub struct InvalidAllowEntry(pub String);

impl NetworkGuard {
    /// A guard that refuses every non-public address.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard that also allows what `entries` name: host names (`localhost`,
    /// `api.internal`), addresses (`127.0.0.1`, `::1`) or ranges (`10.0.0.0/8`).
    pub fn with_allowed<I, S>(entries: I) -> Result<Self, InvalidAllowEntry>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut guard = Self::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let unbracketed = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = entry.parse::<IpNet>() {
                guard.allowed_nets.push(net);
            } else if let Ok(ip) = unbracketed.parse::<IpAddr>() {
                guard.allowed_nets.push(IpNet::from(ip));
            } else if is_host_name(entry) {
                guard.allowed_hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(InvalidAllowEntry(entry.to_owned()));
            }
        }
        Ok(guard)
    }

    /// Whether `host` (a name as written in a URL) is on the allow list.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.contains(&host)
    }

    /// Whether `ip`, reached through `host`, may be dialled.
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        is_public(ip)
            || self
                .allowed_nets
                .iter()
                .any(|net| net.contains(&canonical(ip)))
            || self.allowed_nets.iter().any(|net| net.contains(&ip))
            || host.is_some_and(|host| self.allows_host(host))
    }
}

impl NetworkGuard {
    /// Checks the host of a URL before any connection: an IP literal (in any
    /// spelling the URL parser normalises, such as `2130706433` or `0x7f.1`)
    /// must be permitted; a name is checked later, on each address it
    /// resolves to. Returns the refused address.
    pub fn check_url(&self, url: &url::Url) -> Result<(), IpAddr> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) | None => return Ok(()),
        };
        if self.permits(None, ip) {
            Ok(())
        } else {
            Err(ip)
        }
    }
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The IPv4 address an IPv6 address carries, where it embeds one:
/// IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`), NAT64
/// (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`, whose
/// client address is stored inverted).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let octets = ip.octets();
    let last_four = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last_four),
        [0, 0, 0, 0, 0, 0, _, _] if !matches!(segments[6..], [0, 0] | [0, 1]) => Some(last_four),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_four),
        [0x2002, _, _, _, _, _, _, _] => {
            Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]))
        }
        [0x2001, 0, _, _, _, _, _, _] => Some(Ipv4Addr::new(
            !octets[12],
            !octets[13],
            !octets[14],
            !octets[15],
        )),
        _ => None,
    }
}

/// The address judged: the IPv4 inside an embedding IPv6 form, or itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether an address is public: outside every range spec section 6 lists.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            // The embedding prefix is public only if what it carries is.
            Some(v4) => is_public_v4(v4) && !is_denied_v6(v6, true),
            None => !is_denied_v6(v6, false),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const DENIED: &[(u8, u8, u8, u8, u8)] = &[
        (0, 0, 0, 0, 8),      // "this network", unspecified
        (10, 0, 0, 0, 8),     // private
        (100, 64, 0, 0, 10),  // CGNAT
        (127, 0, 0, 0, 8),    // loopback
        (169, 254, 0, 0, 16), // link-local
        (172, 16, 0, 0, 12),  // private
        (192, 0, 0, 0, 24),   // IETF protocol assignments
        (192, 168, 0, 0, 16), // private
        (198, 18, 0, 0, 15),  // benchmarking
        (224, 0, 0, 0, 4),    // multicast
        (240, 0, 0, 0, 4),    // reserved, broadcast
    ];
    let address = u32::from(ip);
    !DENIED.iter().any(|&(a, b, c, d, prefix)| {
        let network = u32::from(Ipv4Addr::new(a, b, c, d));
        let mask = u32::MAX << (32 - u32::from(prefix));
        address & mask == network
    })
}

/// Non-public IPv6 ranges; `embedding` skips the prefixes that only carry
/// an IPv4 address (judged by that address instead).
fn is_denied_v6(ip: Ipv6Addr, embedding: bool) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xff00) == 0xff00 // multicast ff00::/8
        || (!embedding && ip.segments()[..6] == [0, 0, 0, 0, 0, 0]) // ::/96 leftovers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            assert!(is_public(ip), "{ip} should be public");
        }
    }

    #[test]
    fn allow_list_opens_exactly_what_it_names() {
        let guard = NetworkGuard::with_allowed(["127.0.0.1", "10.1.0.0/16", "api.internal"])
            .expect("valid entries");
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        assert!(guard.permits(None, ip("127.0.0.1")));
        assert!(guard.permits(None, ip("::ffff:127.0.0.1")));
        assert!(!guard.permits(None, ip("127.0.0.2")));
        assert!(guard.permits(None, ip("10.1.2.3")));
        assert!(!guard.permits(None, ip("10.2.0.1")));
        assert!(guard.permits(Some("API.internal."), ip("10.9.9.9")));
        assert!(!guard.permits(Some("other.internal"), ip("10.9.9.9")));
        assert!(NetworkGuard::with_allowed(["not a host"]).is_err());
    }
}
