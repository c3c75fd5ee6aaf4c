//! Detector thresholds. Defaults and their sources (see ../shared/reference/darknet.md §2):
//!
//! - Scan events close after 624 s without a packet and are reported with at least 10 unique
//!   destinations and an estimated global rate of at least 10 packets/s: the example settings of
//!   Merit ORION's darknet-events (README; `cmd/parse/parse.go`), in line with Durumeric et al.,
//!   "An Internet-Wide View of Internet-Wide Scanning" (USENIX Security 2014), who extrapolate
//!   rates by 2^32 / dark-block size.
//! - Tool attribution needs `tool_min_packets` (3) matching probes, because a random packet
//!   matches the Masscan rule with probability 2^-16 (Merit annotates on several sampled packets).
//! - Backscatter attacks follow CAIDA Corsaro3's dos plugin defaults (`corsaro_dos.c`): at least
//!   25 packets, 60 s, and 30 packets in some 60 s window sliding by 10 s; attackers (our spoofed
//!   dark addresses) counted by /16. A vector ends after 300 s without a packet, the flow timeout
//!   of Moore et al., "Inferring Internet Denial-of-Service Activity" (ACM TOCS 2006).
//! - Port surges: unique sources per (protocol, port, hour) against the median and MAD of the
//!   previous 24 hours, plus a CUSUM for slower onsets (design note in darknet.md §2.4). The CUSUM
//!   runs on tens of thousands of ports at once, so its in-control run length must be huge:
//!   k = 1, h = 10 gives about 10^9 hours per port (Siegmund's approximation), where the textbook
//!   k = 0.5, h = 8 gives about 2·10^4 and alerts on noise every hour.

use cynex_model::ip::Ipv4Net;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The dark blocks the telescope listens on (for global-rate extrapolation and per-address
    /// rates). Empty: the number of distinct destinations seen stands in for the block size.
    pub dark: Vec<Ipv4Net>,
    pub scan_timeout_s: u64,
    pub scan_min_uniques: u64,
    pub scan_min_rate_pps: f64,
    pub tool_min_packets: u32,
    /// A source is closed (and its attribution reported) after this long without a packet.
    pub source_timeout_s: u64,
    pub dos_timeout_s: u64,
    pub dos_min_packets: u64,
    pub dos_min_duration_s: u64,
    pub dos_min_60s_packets: u32,
    pub surge_baseline_hours: usize,
    /// Hours of data seen before surges are judged at all.
    pub surge_min_history_hours: usize,
    /// Fewest unique sources in the hour for a surge.
    pub surge_min_sources: u64,
    /// The hour must have at least this multiple of the baseline median.
    pub surge_min_ratio: f64,
    pub surge_z: f64,
    /// CUSUM slack (in robust standard deviations) and decision threshold.
    pub cusum_k: f64,
    pub cusum_h: f64,
    /// Memory for analysis state (MiB). Past it the least recently active scan events and sources
    /// are closed early — their findings are written, nothing is dropped — so a run never fails
    /// for memory; an event or source that comes back later starts a new finding. Statistics
    /// (two days of 5-minute bins and hourly port counts) are not evicted.
    pub memory_mb: u64,
    /// Research scanners: name and prefixes (see `research.rs` for the default list).
    pub research: Vec<crate::research::ResearchOrg>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            dark: Vec::new(),
            scan_timeout_s: 624,
            scan_min_uniques: 10,
            scan_min_rate_pps: 10.0,
            tool_min_packets: 3,
            source_timeout_s: 86_400,
            dos_timeout_s: 300,
            dos_min_packets: 25,
            dos_min_duration_s: 60,
            dos_min_60s_packets: 30,
            surge_baseline_hours: 24,
            surge_min_history_hours: 6,
            surge_min_sources: 10,
            surge_min_ratio: 2.0,
            surge_z: 5.0,
            cusum_k: 1.0,
            cusum_h: 10.0,
            memory_mb: 4_096,
            research: crate::research::default_list(),
        }
    }
}

impl AnalysisConfig {
    /// Addresses in the dark blocks, if configured.
    pub fn dark_size(&self) -> Option<u64> {
        (!self.dark.is_empty()).then(|| self.dark.iter().map(|n| n.size()).sum())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.tool_min_packets == 0 {
            return Err("tool_min_packets must be at least 1".into());
        }
        if self.surge_baseline_hours < 3 {
            return Err("surge_baseline_hours must be at least 3".into());
        }
        for (n, v) in [("scan_timeout_s", self.scan_timeout_s), ("dos_timeout_s", self.dos_timeout_s)] {
            if v == 0 {
                return Err(format!("{n} must be positive"));
            }
        }
        Ok(())
    }
}
