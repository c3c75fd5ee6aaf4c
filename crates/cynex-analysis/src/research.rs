//! Known research scanners: organisations that scan the Internet for measurement and publish the
//! addresses they scan from. Their traffic is benign by intent, so reports show it as a share of
//! the total and alerts leave it out.
//!
//! The list is a plain text file an operator maintains (`--research FILE`): one `CIDR  Name` per
//! line, `#` starts a comment. The built-in list holds ranges the organisations themselves have
//! published on their opt-out pages, as recalled at the time of writing (2026-11) — verify them
//! against the current pages before relying on them, and keep your own file up to date.

use cynex_model::ip::Ipv4Net;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearchOrg {
    pub name: String,
    pub prefixes: Vec<Ipv4Net>,
}

const BUILTIN: &str = "\
# Censys (censys.com/opt-out)
162.142.125.0/24 Censys
167.94.138.0/24  Censys
167.94.145.0/24  Censys
167.94.146.0/24  Censys
167.248.133.0/24 Censys
199.45.154.0/24  Censys
199.45.155.0/24  Censys
206.168.34.0/24  Censys
# The Shadowserver Foundation (shadowserver.org scanning FAQ)
184.105.139.64/26 Shadowserver
184.105.247.192/26 Shadowserver
216.218.206.64/26 Shadowserver
74.82.47.0/26     Shadowserver
65.49.20.64/26    Shadowserver
64.62.197.0/24    Shadowserver
# Palo Alto Networks Cortex Xpanse
205.210.31.0/24  Palo Alto Networks Xpanse
198.235.24.0/24  Palo Alto Networks Xpanse
147.185.132.0/23 Palo Alto Networks Xpanse
";

/// The built-in list.
pub fn default_list() -> Vec<ResearchOrg> {
    parse(BUILTIN).unwrap_or_default()
}

/// Parse a research-scanner list; errors name the line.
pub fn parse(text: &str) -> Result<Vec<ResearchOrg>, String> {
    let mut orgs: Vec<ResearchOrg> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (cidr, name) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("line {}: expected `CIDR NAME`, got {line:?}", i + 1))?;
        let net: Ipv4Net = cidr.parse().map_err(|e| format!("line {}: {e}", i + 1))?;
        let name = name.trim().to_string();
        match orgs.iter_mut().find(|o| o.name == name) {
            Some(o) => o.prefixes.push(net),
            None => orgs.push(ResearchOrg { name, prefixes: vec![net] }),
        }
    }
    Ok(orgs)
}

/// Longest-prefix lookup over a small list (research lists have tens of prefixes). The analysis
/// looks up every packet's source, nearly all outside the list: a bit per /16 holding any listed
/// address answers those with one load.
#[derive(Debug, Clone, Default)]
pub struct ResearchIndex {
    /// (prefix, org index), longest prefixes first.
    nets: Vec<(Ipv4Net, u16)>,
    names: Vec<String>,
    /// Bit `a >> 16` set when /16 `a` overlaps a listed prefix (empty when the list is).
    sixteens: Vec<u64>,
}

impl ResearchIndex {
    pub fn new(orgs: &[ResearchOrg]) -> Self {
        let mut nets: Vec<(Ipv4Net, u16)> =
            orgs.iter().enumerate().flat_map(|(i, o)| o.prefixes.iter().map(move |p| (*p, i as u16))).collect();
        nets.sort_by_key(|(n, _)| std::cmp::Reverse(n.len));
        let mut sixteens = if nets.is_empty() { Vec::new() } else { vec![0u64; 1 << 10] };
        for (n, _) in &nets {
            let first = n.addr >> 16;
            let last = (n.addr | !n.mask()) >> 16;
            for s in first..=last {
                sixteens[(s >> 6) as usize] |= 1 << (s & 63);
            }
        }
        ResearchIndex { nets, names: orgs.iter().map(|o| o.name.clone()).collect(), sixteens }
    }

    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<&str> {
        let s = ip >> 16;
        if self.sixteens.get((s >> 6) as usize).is_none_or(|w| w & (1 << (s & 63)) == 0) {
            return None;
        }
        self.nets.iter().find(|(n, _)| n.contains(ip)).map(|(_, i)| self.names[*i as usize].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_looks_up() {
        let idx = ResearchIndex::new(&default_list());
        assert_eq!(idx.lookup(u32::from(std::net::Ipv4Addr::new(162, 142, 125, 7))), Some("Censys"));
        assert_eq!(idx.lookup(u32::from(std::net::Ipv4Addr::new(8, 8, 8, 8))), None);
        // Same /16 as a listed /24, outside it.
        assert_eq!(idx.lookup(u32::from(std::net::Ipv4Addr::new(162, 142, 124, 7))), None);
        // Prefixes shorter than /16 mark every /16 they cover.
        let wide = ResearchIndex::new(&parse("10.0.0.0/8 Ten\n0.0.0.0/0 All\n").unwrap());
        assert_eq!(wide.lookup(u32::from(std::net::Ipv4Addr::new(10, 255, 1, 1))), Some("Ten"));
        assert_eq!(wide.lookup(u32::from(std::net::Ipv4Addr::new(11, 0, 0, 1))), Some("All"));
        assert_eq!(wide.lookup(u32::MAX), Some("All"));
        assert_eq!(ResearchIndex::new(&[]).lookup(1), None);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("# ok\n10.0.0.0/8 Ten\nbogus\n").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        let e = parse("300.0.0.0/8 X\n").unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
    }
}
