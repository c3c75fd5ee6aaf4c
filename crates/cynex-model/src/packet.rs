//! One decoded darknet packet ([`PacketRecord`]), the meaning of its fingerprint and tag bits,
//! and the column builder that turns records into `packets` record batches.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, PrimitiveBuilder, RecordBatch, StringDictionaryBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{Int16Type, UInt16Type, UInt32Type, UInt8Type};
use datafusion::arrow::error::ArrowError;

use crate::schema::packets_schema;

/// Fingerprint bits, computed per packet at decode time from fields that flow records lose
/// (IP ID, TCP sequence number). Each bit is one published tool rule; see `cynex-ingest`'s
/// `fingerprint` module for the rules and their sources. Bit positions are stable: they are stored.
pub mod fp {
    /// ZMap before v4.1: IPv4 ID fixed at 54321.
    pub const ZMAP: u16 = 1 << 0;
    /// Masscan: IP ID == (dst ^ dport ^ seq) & 0xFFFF on a SYN.
    pub const MASSCAN: u16 = 1 << 1;
    /// Mirai family: TCP seq == destination IPv4 address on a SYN.
    pub const MIRAI: u16 = 1 << 2;
    /// Nmap SYN-scan trait: window 1024 and options exactly MSS 1460 (needs multi-packet
    /// confirmation: constant seq and source port per source).
    pub const NMAP_SYN: u16 = 1 << 3;
    /// Unicornscan trait: window 4128 with an MSS option (needs multi-packet confirmation).
    pub const UNICORN: u16 = 1 << 4;
    /// CAIDA Corsaro3 "large-scale scan" heuristic: SYN, no options, window 1024, TTL >= 200.
    pub const CORSARO_LSS: u16 = 1 << 5;

    /// Names for display, in bit order.
    pub const NAMES: [(u16, &str); 6] = [
        (ZMAP, "zmap"),
        (MASSCAN, "masscan"),
        (MIRAI, "mirai"),
        (NMAP_SYN, "nmap-syn"),
        (UNICORN, "unicorn"),
        (CORSARO_LSS, "corsaro-lss"),
    ];
}

/// Tag bits: what kind of traffic a packet is, independent of the tool that sent it.
pub mod tags {
    /// A reply to spoofed traffic (TCP SYN-ACK/RST, ICMP replies and errors).
    pub const BACKSCATTER: u16 = 1 << 0;
    /// An IP fragment (MF set or non-zero offset; IPv6 fragment header).
    pub const FRAGMENT: u16 = 1 << 1;
    /// Source cannot be genuine: reserved/bogon source, src == dst, or port 0.
    pub const SPOOF_SUSPECT: u16 = 1 << 2;
    /// Captured length shorter than the wire length (snap length cut the payload).
    pub const SNAPPED: u16 = 1 << 3;
    /// TCP options were malformed (length past the header); the signature ends with `!`.
    pub const BAD_OPTIONS: u16 = 1 << 4;
    /// Not an IP packet (ARP, LLDP, …): only the link-layer type is recorded.
    pub const NON_IP: u16 = 1 << 5;

    /// Names for display, in bit order.
    pub const NAMES: [(u16, &str); 6] = [
        (BACKSCATTER, "backscatter"),
        (FRAGMENT, "fragment"),
        (SPOOF_SUSPECT, "spoof-suspect"),
        (SNAPPED, "snapped"),
        (BAD_OPTIONS, "bad-options"),
        (NON_IP, "non-ip"),
    ];
}

/// IP protocol numbers used across the workspace.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as on the wire (byte 13 of the header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Everything cynex keeps of one captured packet. Field meanings are those of the `packets`
/// table columns of the same name (see [`crate::schema::packets_schema`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketRecord {
    pub ts_us: i64,
    pub ip_version: u8,
    pub src_ip4: Option<u32>,
    pub dst_ip4: Option<u32>,
    pub src_ip6: Option<[u8; 16]>,
    pub dst_ip6: Option<[u8; 16]>,
    pub proto: Option<u8>,
    pub ttl: Option<u8>,
    pub ip_id: Option<u16>,
    pub ip_len: Option<u16>,
    pub frag_offset: Option<u16>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub tcp_flags: Option<u8>,
    pub tcp_seq: Option<u32>,
    pub tcp_ack: Option<u32>,
    pub tcp_window: Option<u16>,
    pub tcp_opts: Option<TcpOptsSig>,
    pub tcp_mss: Option<u16>,
    pub tcp_wscale: Option<u8>,
    pub tcp_tsval: Option<u32>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub inner_proto: Option<u8>,
    pub inner_src_ip4: Option<u32>,
    pub inner_dst_ip4: Option<u32>,
    pub inner_src_ip6: Option<[u8; 16]>,
    pub inner_dst_ip6: Option<[u8; 16]>,
    pub inner_src_port: Option<u16>,
    pub inner_dst_port: Option<u16>,
    pub ethertype: Option<u16>,
    pub frame_len: u32,
    pub fp: u16,
    pub tags: u16,
}

/// A TCP options signature in the p0f spirit: one letter per option in wire order
/// (`M` MSS, `N` NOP, `W` window scale, `S` SACK-permitted, `K` SACK, `T` timestamps,
/// `E` end of list, `?` any other kind), `!` appended when the options were malformed, `~` when
/// the capture's snap length cut them.
/// Fixed capacity so that decoding allocates nothing; longer lists are cut with `+`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptsSig {
    len: u8,
    buf: [u8; TcpOptsSig::CAP],
}

impl TcpOptsSig {
    pub const CAP: usize = 24;

    pub fn push(&mut self, c: u8) {
        let len = self.len as usize;
        if len < Self::CAP - 1 {
            self.buf[len] = c;
            self.len += 1;
        } else if len == Self::CAP - 1 {
            self.buf[len] = b'+';
            self.len += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever pushed.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("?")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for TcpOptsSig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl From<&str> for TcpOptsSig {
    fn from(s: &str) -> Self {
        let mut sig = TcpOptsSig::default();
        for b in s.bytes() {
            sig.push(b);
        }
        sig
    }
}

/// Column builders for the `packets` table. Append records, then [`finish`](Self::finish)
/// into a record batch; the builder is reusable afterwards.
pub struct PacketColumns {
    ts: TimestampMicrosecondBuilder,
    ip_version: PrimitiveBuilder<UInt8Type>,
    src_ip4: PrimitiveBuilder<UInt32Type>,
    dst_ip4: PrimitiveBuilder<UInt32Type>,
    src_ip6: FixedSizeBinaryBuilder,
    dst_ip6: FixedSizeBinaryBuilder,
    proto: PrimitiveBuilder<UInt8Type>,
    ttl: PrimitiveBuilder<UInt8Type>,
    ip_id: PrimitiveBuilder<UInt16Type>,
    ip_len: PrimitiveBuilder<UInt16Type>,
    frag_offset: PrimitiveBuilder<UInt16Type>,
    src_port: PrimitiveBuilder<UInt16Type>,
    dst_port: PrimitiveBuilder<UInt16Type>,
    tcp_flags: PrimitiveBuilder<UInt8Type>,
    tcp_seq: PrimitiveBuilder<UInt32Type>,
    tcp_ack: PrimitiveBuilder<UInt32Type>,
    tcp_window: PrimitiveBuilder<UInt16Type>,
    tcp_opts: StringDictionaryBuilder<Int16Type>,
    tcp_mss: PrimitiveBuilder<UInt16Type>,
    tcp_wscale: PrimitiveBuilder<UInt8Type>,
    tcp_tsval: PrimitiveBuilder<UInt32Type>,
    icmp_type: PrimitiveBuilder<UInt8Type>,
    icmp_code: PrimitiveBuilder<UInt8Type>,
    inner_proto: PrimitiveBuilder<UInt8Type>,
    inner_src_ip4: PrimitiveBuilder<UInt32Type>,
    inner_dst_ip4: PrimitiveBuilder<UInt32Type>,
    inner_src_ip6: FixedSizeBinaryBuilder,
    inner_dst_ip6: FixedSizeBinaryBuilder,
    inner_src_port: PrimitiveBuilder<UInt16Type>,
    inner_dst_port: PrimitiveBuilder<UInt16Type>,
    ethertype: PrimitiveBuilder<UInt16Type>,
    frame_len: PrimitiveBuilder<UInt32Type>,
    fp: PrimitiveBuilder<UInt16Type>,
    tags: PrimitiveBuilder<UInt16Type>,
    rows: usize,
}

fn ip6_append(b: &mut FixedSizeBinaryBuilder, v: &Option<[u8; 16]>) {
    match v {
        // The builder was created with width 16, so a 16-byte value always fits.
        Some(a) => b.append_value(a).expect("16-byte value in a 16-byte column"),
        None => b.append_null(),
    }
}

impl PacketColumns {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            ts: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            ip_version: PrimitiveBuilder::with_capacity(n),
            src_ip4: PrimitiveBuilder::with_capacity(n),
            dst_ip4: PrimitiveBuilder::with_capacity(n),
            src_ip6: FixedSizeBinaryBuilder::new(16),
            dst_ip6: FixedSizeBinaryBuilder::new(16),
            proto: PrimitiveBuilder::with_capacity(n),
            ttl: PrimitiveBuilder::with_capacity(n),
            ip_id: PrimitiveBuilder::with_capacity(n),
            ip_len: PrimitiveBuilder::with_capacity(n),
            frag_offset: PrimitiveBuilder::with_capacity(n),
            src_port: PrimitiveBuilder::with_capacity(n),
            dst_port: PrimitiveBuilder::with_capacity(n),
            tcp_flags: PrimitiveBuilder::with_capacity(n),
            tcp_seq: PrimitiveBuilder::with_capacity(n),
            tcp_ack: PrimitiveBuilder::with_capacity(n),
            tcp_window: PrimitiveBuilder::with_capacity(n),
            tcp_opts: StringDictionaryBuilder::new(),
            tcp_mss: PrimitiveBuilder::with_capacity(n),
            tcp_wscale: PrimitiveBuilder::with_capacity(n),
            tcp_tsval: PrimitiveBuilder::with_capacity(n),
            icmp_type: PrimitiveBuilder::with_capacity(n),
            icmp_code: PrimitiveBuilder::with_capacity(n),
            inner_proto: PrimitiveBuilder::with_capacity(n),
            inner_src_ip4: PrimitiveBuilder::with_capacity(n),
            inner_dst_ip4: PrimitiveBuilder::with_capacity(n),
            inner_src_ip6: FixedSizeBinaryBuilder::new(16),
            inner_dst_ip6: FixedSizeBinaryBuilder::new(16),
            inner_src_port: PrimitiveBuilder::with_capacity(n),
            inner_dst_port: PrimitiveBuilder::with_capacity(n),
            ethertype: PrimitiveBuilder::with_capacity(n),
            frame_len: PrimitiveBuilder::with_capacity(n),
            fp: PrimitiveBuilder::with_capacity(n),
            tags: PrimitiveBuilder::with_capacity(n),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, r: &PacketRecord) {
        self.ts.append_value(r.ts_us);
        self.ip_version.append_value(r.ip_version);
        self.src_ip4.append_option(r.src_ip4);
        self.dst_ip4.append_option(r.dst_ip4);
        ip6_append(&mut self.src_ip6, &r.src_ip6);
        ip6_append(&mut self.dst_ip6, &r.dst_ip6);
        self.proto.append_option(r.proto);
        self.ttl.append_option(r.ttl);
        self.ip_id.append_option(r.ip_id);
        self.ip_len.append_option(r.ip_len);
        self.frag_offset.append_option(r.frag_offset);
        self.src_port.append_option(r.src_port);
        self.dst_port.append_option(r.dst_port);
        self.tcp_flags.append_option(r.tcp_flags);
        self.tcp_seq.append_option(r.tcp_seq);
        self.tcp_ack.append_option(r.tcp_ack);
        self.tcp_window.append_option(r.tcp_window);
        match &r.tcp_opts {
            // At most 2^15 distinct signatures per batch is far above what real traffic shows;
            // past it the value is kept as null rather than failing the batch.
            Some(sig) => {
                if self.tcp_opts.append(sig.as_str()).is_err() {
                    self.tcp_opts.append_null();
                }
            }
            None => self.tcp_opts.append_null(),
        }
        self.tcp_mss.append_option(r.tcp_mss);
        self.tcp_wscale.append_option(r.tcp_wscale);
        self.tcp_tsval.append_option(r.tcp_tsval);
        self.icmp_type.append_option(r.icmp_type);
        self.icmp_code.append_option(r.icmp_code);
        self.inner_proto.append_option(r.inner_proto);
        self.inner_src_ip4.append_option(r.inner_src_ip4);
        self.inner_dst_ip4.append_option(r.inner_dst_ip4);
        ip6_append(&mut self.inner_src_ip6, &r.inner_src_ip6);
        ip6_append(&mut self.inner_dst_ip6, &r.inner_dst_ip6);
        self.inner_src_port.append_option(r.inner_src_port);
        self.inner_dst_port.append_option(r.inner_dst_port);
        self.ethertype.append_option(r.ethertype);
        self.frame_len.append_value(r.frame_len);
        self.fp.append_value(r.fp);
        self.tags.append_value(r.tags);
        self.rows += 1;
    }

    /// Build a record batch of everything appended so far and reset the builders.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.ip_version.finish()),
            Arc::new(self.src_ip4.finish()),
            Arc::new(self.dst_ip4.finish()),
            Arc::new(self.src_ip6.finish()),
            Arc::new(self.dst_ip6.finish()),
            Arc::new(self.proto.finish()),
            Arc::new(self.ttl.finish()),
            Arc::new(self.ip_id.finish()),
            Arc::new(self.ip_len.finish()),
            Arc::new(self.frag_offset.finish()),
            Arc::new(self.src_port.finish()),
            Arc::new(self.dst_port.finish()),
            Arc::new(self.tcp_flags.finish()),
            Arc::new(self.tcp_seq.finish()),
            Arc::new(self.tcp_ack.finish()),
            Arc::new(self.tcp_window.finish()),
            Arc::new(self.tcp_opts.finish()),
            Arc::new(self.tcp_mss.finish()),
            Arc::new(self.tcp_wscale.finish()),
            Arc::new(self.tcp_tsval.finish()),
            Arc::new(self.icmp_type.finish()),
            Arc::new(self.icmp_code.finish()),
            Arc::new(self.inner_proto.finish()),
            Arc::new(self.inner_src_ip4.finish()),
            Arc::new(self.inner_dst_ip4.finish()),
            Arc::new(self.inner_src_ip6.finish()),
            Arc::new(self.inner_dst_ip6.finish()),
            Arc::new(self.inner_src_port.finish()),
            Arc::new(self.inner_dst_port.finish()),
            Arc::new(self.ethertype.finish()),
            Arc::new(self.frame_len.finish()),
            Arc::new(self.fp.finish()),
            Arc::new(self.tags.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(packets_schema(), cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opts_sig_caps_and_marks_overflow() {
        let mut s = TcpOptsSig::default();
        for _ in 0..40 {
            s.push(b'N');
        }
        assert_eq!(s.as_str().len(), TcpOptsSig::CAP);
        assert!(s.as_str().ends_with('+'));
        assert_eq!(TcpOptsSig::from("MSTNW").as_str(), "MSTNW");
    }

    #[test]
    fn builder_round_trips_a_record() {
        let mut b = PacketColumns::with_capacity(4);
        let r = PacketRecord {
            ts_us: 1_700_000_000_000_000,
            ip_version: 4,
            src_ip4: Some(0x01020304),
            dst_ip4: Some(0xC6120001),
            proto: Some(proto::TCP),
            tcp_opts: Some("M".into()),
            src_ip6: None,
            inner_dst_ip6: Some([1; 16]),
            fp: fp::NMAP_SYN,
            ..Default::default()
        };
        b.append(&r);
        b.append(&PacketRecord::default());
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), packets_schema().fields().len());
        assert!(b.is_empty());
    }
}
