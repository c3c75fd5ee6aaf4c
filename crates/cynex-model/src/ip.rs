//! IPv4/IPv6 helpers: CIDR blocks, bogon ranges and formatting of the lake's integer addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 CIDR block such as `198.18.0.0/20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    pub addr: u32,
    pub len: u8,
}

impl Ipv4Net {
    pub fn new(addr: u32, len: u8) -> Option<Self> {
        (len <= 32).then(|| Self { addr: addr & Self::mask_of(len), len })
    }

    fn mask_of(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - len as u32)
        }
    }

    pub fn mask(&self) -> u32 {
        Self::mask_of(self.len)
    }

    pub fn contains(&self, ip: u32) -> bool {
        ip & self.mask() == self.addr
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.len as u32)
    }

    /// The `i`-th address of the block (wrapping inside it).
    pub fn nth(&self, i: u64) -> u32 {
        self.addr | ((i % self.size()) as u32)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.parse().map_err(|e| format!("bad IPv4 address {a:?}: {e}"))?;
        let len: u8 = l.parse().map_err(|_| format!("bad prefix length {l:?}"))?;
        Ipv4Net::new(u32::from(addr), len).ok_or_else(|| format!("prefix length {len} > 32"))
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

/// Special-purpose IPv4 blocks that never source genuine Internet traffic: RFC 6890 (which
/// updates the RFC 5735 list CAIDA Corsaro3 uses for its "routed" tag,
/// `libcorsaro/libcorsaro_filtering.c`), plus shared address space (RFC 6598) and limited
/// broadcast.
pub const BOGONS_V4: [(u32, u8); 16] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0A00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link local
    (0xAC10_0000, 12), // 172.16.0.0/12 private
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xC0A8_0000, 16), // 192.168.0.0/16 private
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved (includes 255.255.255.255)
    (0xFFFF_FFFF, 32), // limited broadcast (explicit for readers)
];

pub fn is_bogon_v4(ip: u32) -> bool {
    BOGONS_V4.iter().any(|&(net, len)| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
        ip & mask == net
    })
}

/// IPv6 sources that cannot be genuine: unspecified, loopback, multicast, link-local,
/// documentation (2001:db8::/32), and IPv4-mapped.
pub fn is_bogon_v6(ip: &[u8; 16]) -> bool {
    let unspecified_or_loopback = ip[..15].iter().all(|&b| b == 0) && ip[15] <= 1;
    let mapped = ip[..10].iter().all(|&b| b == 0) && ip[10] == 0xff && ip[11] == 0xff;
    unspecified_or_loopback
        || mapped
        || ip[0] == 0xff
        || (ip[0] == 0xfe && ip[1] & 0xc0 == 0x80)
        || ip[..4] == [0x20, 0x01, 0x0d, 0xb8]
}

pub fn fmt_ip4(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_contains() {
        let n: Ipv4Net = "198.18.5.7/20".parse().unwrap();
        assert_eq!(n.to_string(), "198.18.0.0/20");
        assert_eq!(n.size(), 4096);
        assert!(n.contains(u32::from(Ipv4Addr::new(198, 18, 15, 255))));
        assert!(!n.contains(u32::from(Ipv4Addr::new(198, 18, 16, 0))));
        assert!("1.2.3.4/33".parse::<Ipv4Net>().is_err());
        assert!("1.2.3/8".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn bogons() {
        for (ip, bogon) in [
            ("10.1.2.3", true),
            ("192.168.1.1", true),
            ("8.8.8.8", false),
            ("255.255.255.255", true),
            ("0.1.2.3", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
        ] {
            let v = u32::from(ip.parse::<Ipv4Addr>().unwrap());
            assert_eq!(is_bogon_v4(v), bogon, "{ip}");
        }
    }
}
