//! Building wire-format frames (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP, with correct checksums)
//! and writing them as pcap or pcapng records.

use std::io::{self, Write};

/// Fields of an IPv4 header we set.
#[derive(Debug, Clone, Copy)]
pub struct Ip4 {
    pub src: u32,
    pub dst: u32,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
}

/// Fields of a TCP header we set; `opts` are raw option bytes (padded to 4 by the builder).
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub opts: &'a [u8],
}

/// Common TCP option byte strings.
pub mod opts {
    /// MSS 1460 only (Nmap SYN probes, ZMap 3.0-4.0, Unicornscan).
    pub const MSS1460: &[u8] = &[2, 4, 0x05, 0xb4];
    /// Windows 10 SYN: MSS 1460, NOP, WS 8, NOP, NOP, SACK-permitted (ZMap >= 4.1 default).
    pub const WINDOWS: &[u8] = &[2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2];
    /// Linux SYN: MSS 1460, SACK-permitted, timestamps, NOP, WS 7.
    pub const LINUX: &[u8] = &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7];
}

const ETH_HDR: [u8; 14] = [0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x5d, 0x00, 0x0c, 0x29, 0x11, 0x22, 0x33, 0x08, 0x00];

fn csum_add(mut sum: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [x] = chunks.remainder() {
        sum += (*x as u32) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A reusable frame buffer.
#[derive(Default)]
pub struct FrameBuf {
    pub buf: Vec<u8>,
}

impl FrameBuf {
    fn start_ipv4(&mut self, ip: &Ip4, proto: u8, l4_len: usize) -> usize {
        self.buf.clear();
        self.buf.extend_from_slice(&ETH_HDR);
        let total = (20 + l4_len) as u16;
        let flags: u16 = if ip.df { 0x4000 } else { 0 };
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&ip.id.to_be_bytes());
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        h[8] = ip.ttl;
        h[9] = proto;
        h[12..16].copy_from_slice(&ip.src.to_be_bytes());
        h[16..20].copy_from_slice(&ip.dst.to_be_bytes());
        let c = csum_fold(csum_add(0, &h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        self.buf.extend_from_slice(&h);
        self.buf.len()
    }

    fn pseudo4(ip: &Ip4, proto: u8, len: usize) -> u32 {
        let mut p = [0u8; 12];
        p[0..4].copy_from_slice(&ip.src.to_be_bytes());
        p[4..8].copy_from_slice(&ip.dst.to_be_bytes());
        p[9] = proto;
        p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
        csum_add(0, &p)
    }

    fn tcp_header(&mut self, t: &Tcp<'_>) -> usize {
        let opt_len = t.opts.len().div_ceil(4) * 4;
        let at = self.buf.len();
        self.buf.extend_from_slice(&t.sport.to_be_bytes());
        self.buf.extend_from_slice(&t.dport.to_be_bytes());
        self.buf.extend_from_slice(&t.seq.to_be_bytes());
        self.buf.extend_from_slice(&t.ack.to_be_bytes());
        self.buf.push((((20 + opt_len) / 4) as u8) << 4);
        self.buf.push(t.flags);
        self.buf.extend_from_slice(&t.window.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(t.opts);
        self.buf.resize(at + 20 + opt_len, 0);
        at
    }

    /// Ethernet + IPv4 + TCP (no payload).
    pub fn ipv4_tcp(&mut self, ip: &Ip4, t: &Tcp<'_>) -> &[u8] {
        let l4 = 20 + t.opts.len().div_ceil(4) * 4;
        self.start_ipv4(ip, 6, l4);
        let at = self.tcp_header(t);
        let c = csum_fold(csum_add(Self::pseudo4(ip, 6, l4), &self.buf[at..]));
        self.buf[at + 16..at + 18].copy_from_slice(&c.to_be_bytes());
        &self.buf
    }

    /// Ethernet + IPv4 + UDP with `payload`.
    pub fn ipv4_udp(&mut self, ip: &Ip4, sport: u16, dport: u16, payload: &[u8]) -> &[u8] {
        let l4 = 8 + payload.len();
        self.start_ipv4(ip, 17, l4);
        let at = self.buf.len();
        self.buf.extend_from_slice(&sport.to_be_bytes());
        self.buf.extend_from_slice(&dport.to_be_bytes());
        self.buf.extend_from_slice(&(l4 as u16).to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(payload);
        let c = csum_fold(csum_add(Self::pseudo4(ip, 17, l4), &self.buf[at..]));
        self.buf[at + 6..at + 8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        &self.buf
    }

    /// Ethernet + IPv4 + ICMP of `typ`/`code` with a 4-byte rest-of-header and `body`.
    pub fn ipv4_icmp(&mut self, ip: &Ip4, typ: u8, code: u8, rest: u32, body: &[u8]) -> &[u8] {
        let l4 = 8 + body.len();
        self.start_ipv4(ip, 1, l4);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[typ, code, 0, 0]);
        self.buf.extend_from_slice(&rest.to_be_bytes());
        self.buf.extend_from_slice(body);
        let c = csum_fold(csum_add(0, &self.buf[at..]));
        self.buf[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
        &self.buf
    }

    /// Ethernet + IPv6 + TCP SYN-style header (no payload).
    pub fn ipv6_tcp(&mut self, src: [u8; 16], dst: [u8; 16], hlim: u8, t: &Tcp<'_>) -> &[u8] {
        let l4 = 20 + t.opts.len().div_ceil(4) * 4;
        self.buf.clear();
        self.buf.extend_from_slice(&ETH_HDR[..12]);
        self.buf.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        self.buf.extend_from_slice(&(l4 as u16).to_be_bytes());
        self.buf.push(6);
        self.buf.push(hlim);
        self.buf.extend_from_slice(&src);
        self.buf.extend_from_slice(&dst);
        let at = self.tcp_header(t);
        let mut sum = csum_add(0, &src);
        sum = csum_add(sum, &dst);
        sum += l4 as u32 + 6;
        let c = csum_fold(csum_add(sum, &self.buf[at..]));
        self.buf[at + 16..at + 18].copy_from_slice(&c.to_be_bytes());
        &self.buf
    }
}

/// Capture container to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

/// Writes Ethernet frames as pcap (µs, little-endian) or pcapng (one section, one interface).
pub struct CaptureWriter<W: Write> {
    w: W,
    format: CaptureFormat,
    pub packets: u64,
    pub bytes: u64,
}

impl<W: Write> CaptureWriter<W> {
    pub fn new(mut w: W, format: CaptureFormat, snaplen: u32) -> io::Result<Self> {
        let mut bytes = 0;
        match format {
            CaptureFormat::Pcap => {
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
                h.extend_from_slice(&2u16.to_le_bytes());
                h.extend_from_slice(&4u16.to_le_bytes());
                h.extend_from_slice(&[0; 8]);
                h.extend_from_slice(&snaplen.to_le_bytes());
                h.extend_from_slice(&1u32.to_le_bytes());
                w.write_all(&h)?;
                bytes += 24;
            }
            CaptureFormat::PcapNg => {
                let mut shb = Vec::new();
                shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                // IDB: Ethernet, snaplen, if_tsresol = 6 (µs), end of options.
                let mut idb = Vec::new();
                idb.extend_from_slice(&1u32.to_le_bytes());
                idb.extend_from_slice(&32u32.to_le_bytes());
                idb.extend_from_slice(&1u16.to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&snaplen.to_le_bytes());
                idb.extend_from_slice(&[9, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
                idb.extend_from_slice(&32u32.to_le_bytes());
                w.write_all(&shb)?;
                w.write_all(&idb)?;
                bytes += (shb.len() + idb.len()) as u64;
            }
        }
        Ok(Self { w, format, packets: 0, bytes })
    }

    pub fn write(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        match self.format {
            CaptureFormat::Pcap => {
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
                h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
                h[8..12].copy_from_slice(&len.to_le_bytes());
                h[12..16].copy_from_slice(&len.to_le_bytes());
                self.w.write_all(&h)?;
                self.w.write_all(frame)?;
                self.bytes += 16 + len as u64;
            }
            CaptureFormat::PcapNg => {
                let pad = (4 - len % 4) % 4;
                let blen = 32 + len + pad;
                let mut h = [0u8; 28];
                h[0..4].copy_from_slice(&6u32.to_le_bytes());
                h[4..8].copy_from_slice(&blen.to_le_bytes());
                h[12..16].copy_from_slice(&(((ts_us as u64) >> 32) as u32).to_le_bytes());
                h[16..20].copy_from_slice(&(ts_us as u32).to_le_bytes());
                h[20..24].copy_from_slice(&len.to_le_bytes());
                h[24..28].copy_from_slice(&len.to_le_bytes());
                self.w.write_all(&h)?;
                self.w.write_all(frame)?;
                self.w.write_all(&[0u8; 3][..pad as usize])?;
                self.w.write_all(&blen.to_le_bytes())?;
                self.bytes += blen as u64;
            }
        }
        self.packets += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_verifies() {
        let mut f = FrameBuf::default();
        let ip = Ip4 { src: 0x0102_0304, dst: 0xC612_0001, ttl: 64, id: 1, df: false };
        let t = Tcp { sport: 1, dport: 23, seq: 5, ack: 0, flags: 2, window: 1024, opts: opts::MSS1460 };
        let fr = f.ipv4_tcp(&ip, &t).to_vec();
        assert_eq!(fr.len(), 14 + 20 + 24);
        // Summing a header including its checksum gives 0xffff.
        assert_eq!(csum_fold(csum_add(0, &fr[14..34])), 0);
        let tcp_sum = csum_add(FrameBuf::pseudo4(&ip, 6, 24), &fr[34..]);
        assert_eq!(csum_fold(tcp_sum), 0);
    }
}
