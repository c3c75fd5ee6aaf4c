//! Streaming reader for pcap (both byte orders, µs and ns, and Kuznetzov's modified format) and
//! pcapng (several sections and interfaces, per-interface link type and timestamp resolution).
//!
//! Memory is bounded by the largest record accepted ([`MAX_BLOCK`]), whatever the file size.
//! A record that cannot be trusted is returned as a quarantine record with its byte offset, and the
//! reader resynchronises on the next plausible record so every good packet after it is kept.
//!
//! Formats: pcap per draft-ietf-opsawg-pcap (and libpcap `sf-pcap.c`), pcapng per
//! draft-ietf-opsawg-pcapng (and libpcap `sf-pcapng.c`).

use std::io::Read;

use crate::quarantine::QuarantineRecord;

/// Largest packet accepted: libpcap's `MAXIMUM_SNAPLEN` (262144, `pcap-int.h`). A record header
/// claiming more is absurd and triggers a resync.
pub const MAX_PACKET: u32 = 262_144;
/// Largest pcapng block accepted: libpcap's `MAX_BLOCKSIZE` for pcapng is 16 MiB (`sf-pcapng.c`).
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;
/// Garbage found while resynchronising is quarantined in pieces of at most this size.
const GARBAGE_CHUNK: usize = cynex_model::schema::QUARANTINE_RAW_MAX;

const FORMAT: &str = "pcap";

/// One captured frame, borrowed from the reader's buffer until the next call.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Byte offset of the record (header) in the decompressed input.
    pub offset: u64,
    /// LINKTYPE_* value of the interface the frame was captured on.
    pub linktype: u16,
    pub ts_us: i64,
    pub orig_len: u32,
    pub data: &'a [u8],
}

pub enum Item<'a> {
    Packet(Frame<'a>),
    Bad(QuarantineRecord),
}

/// Counters a reader keeps about its input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReaderStats {
    pub packets: u64,
    pub bad_records: u64,
    /// Packets whose sub-second timestamp field was out of range and was clamped.
    pub fixed_timestamps: u64,
    /// Bytes consumed from the decompressed stream.
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap,
    PcapNg,
}

#[derive(Debug, Clone)]
struct Interface {
    linktype: u16,
    snaplen: u32,
    /// Ticks per second is 10^exp (pow10) or 2^exp.
    res_pow10: bool,
    res_exp: u8,
    offset_secs: i64,
}

impl Interface {
    fn ticks_to_us(&self, ticks: u64) -> i64 {
        let us = if self.res_pow10 {
            if self.res_exp <= 6 {
                (ticks as u128) * 10u128.pow(6 - self.res_exp as u32)
            } else {
                (ticks as u128) / 10u128.pow((self.res_exp as u32 - 6).min(38))
            }
        } else {
            ((ticks as u128) * 1_000_000) >> (self.res_exp as u32).min(127)
        };
        (us.min(i64::MAX as u128 / 2) as i64).saturating_add(self.offset_secs.saturating_mul(1_000_000))
    }
}

enum State {
    Pcap {
        swapped: bool,
        nanos: bool,
        /// Kuznetzov's patched format: 8 more bytes per record header.
        modified: bool,
        snaplen: u32,
        linktype: u16,
        last_ts_sec: Option<u32>,
    },
    PcapNg {
        swapped: bool,
        /// False after an SHB we could not accept; blocks are then bad until the next good SHB.
        section_ok: bool,
        interfaces: Vec<Interface>,
        last_ts_us: i64,
    },
}

pub struct CaptureReader<R> {
    r: R,
    source: String,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    state: State,
    stats: ReaderStats,
}

/// Why a file could not be read as a capture at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACapture {
    pub reason: String,
    /// The bytes that were read while trying (kept for quarantine).
    pub head: Vec<u8>,
}

fn u16_at(b: &[u8], swapped: bool) -> u16 {
    let v = u16::from_le_bytes([b[0], b[1]]);
    if swapped {
        v.swap_bytes()
    } else {
        v
    }
}

fn u32_at(b: &[u8], swapped: bool) -> u32 {
    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if swapped {
        v.swap_bytes()
    } else {
        v
    }
}

const SHB: u32 = 0x0A0D_0D0A;
const BOM: u32 = 0x1A2B_3C4D;

impl<R: Read> CaptureReader<R> {
    /// Read the file header and set up for records. Fails when the input is not a capture we can
    /// read at all (unknown magic, cut-off or unsupported header).
    pub fn new(r: R, source: &str) -> Result<Self, NotACapture> {
        let mut me = CaptureReader {
            r,
            source: source.to_string(),
            buf: vec![0; 1 << 20],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            state: State::Pcap {
                swapped: false,
                nanos: false,
                modified: false,
                snaplen: 0,
                linktype: 0,
                last_ts_sec: None,
            },
            stats: ReaderStats::default(),
        };
        let fail = |me: &mut Self, reason: String| {
            let have = me.ensure(GARBAGE_CHUNK);
            Err(NotACapture { reason, head: me.buf[me.pos..me.pos + have].to_vec() })
        };
        let have = me.ensure(4);
        if have == 0 {
            return fail(&mut me, "empty file".into());
        }
        if have < 4 {
            return fail(&mut me, format!("file of {have} bytes is too short for any capture header"));
        }
        let magic = u32_at(&me.buf[me.pos..], false);
        match magic {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 | 0xA1B2_CD34 | 0x34CD_B2A1 => {
                let swapped = matches!(magic, 0xD4C3_B2A1 | 0x4D3C_B2A1 | 0x34CD_B2A1);
                let have = me.ensure(24);
                if have < 24 {
                    return fail(&mut me, format!("truncated pcap file header: {have} of 24 bytes"));
                }
                let h = &me.buf[me.pos..me.pos + 24];
                let (major, minor) = (u16_at(&h[4..], swapped), u16_at(&h[6..], swapped));
                // libpcap accepts major 2 with minor <= 4 (older minors wrote the same records).
                if major != 2 || minor > 4 {
                    return fail(&mut me, format!("unsupported pcap version {major}.{minor}"));
                }
                let snaplen = u32_at(&h[16..], swapped);
                let lt_field = u32_at(&h[20..], swapped);
                // Bits 16-25 of the link-type field are reserved and must be zero
                // (draft-ietf-opsawg-pcap §4; libpcap sf-pcap.c "linktype reserved field not zero").
                if lt_field & 0x03FF_0000 != 0 {
                    return fail(&mut me, format!("pcap link-type reserved field not zero (0x{lt_field:08x})"));
                }
                me.state = State::Pcap {
                    swapped,
                    nanos: matches!(magic, 0xA1B2_3C4D | 0x4D3C_B2A1),
                    modified: matches!(magic, 0xA1B2_CD34 | 0x34CD_B2A1),
                    // A snap length of 0 or above the maximum is insane; use the maximum.
                    snaplen: if snaplen == 0 || snaplen > MAX_PACKET { MAX_PACKET } else { snaplen },
                    linktype: (lt_field & 0xFFFF) as u16,
                    last_ts_sec: None,
                };
                me.advance(24);
                Ok(me)
            }
            SHB => {
                let have = me.ensure(28);
                if have < 28 {
                    return fail(&mut me, format!("truncated pcapng section header: {have} of 28 bytes"));
                }
                match me.check_shb() {
                    Ok(()) => Ok(me),
                    Err(reason) => fail(&mut me, reason),
                }
            }
            _ => fail(&mut me, format!("unknown magic 0x{magic:08x} (not pcap or pcapng)")),
        }
    }

    pub fn format(&self) -> FileFormat {
        match self.state {
            State::Pcap { .. } => FileFormat::Pcap,
            State::PcapNg { .. } => FileFormat::PcapNg,
        }
    }

    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Validate the SHB at `pos` (28 bytes available) and, when good, consume it and start a
    /// section. On failure nothing is consumed.
    fn check_shb(&mut self) -> Result<(), String> {
        let b = &self.buf[self.pos..self.pos + 28];
        let swapped = match u32_at(&b[8..], false) {
            BOM => false,
            x if x == BOM.swap_bytes() => true,
            x => return Err(format!("pcapng section header has bad byte-order magic 0x{x:08x}")),
        };
        let blen = u32_at(&b[4..], swapped);
        let (major, minor) = (u16_at(&b[12..], swapped), u16_at(&b[14..], swapped));
        if blen < 28 || !blen.is_multiple_of(4) || blen > MAX_BLOCK {
            return Err(format!("pcapng section header length {blen} is invalid"));
        }
        if major != 1 {
            return Err(format!("unsupported pcapng version {major}.{minor}"));
        }
        let have = self.ensure(blen as usize);
        if have < blen as usize {
            return Err(format!("truncated pcapng section header: {have} of {blen} bytes"));
        }
        let trailer = u32_at(&self.buf[self.pos + blen as usize - 4..], swapped);
        if trailer != blen {
            return Err(format!("pcapng block total length in header {blen} and trailer {trailer} don't match"));
        }
        self.state = State::PcapNg { swapped, section_ok: true, interfaces: Vec::new(), last_ts_us: 0 };
        self.advance(blen as usize);
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
        self.stats.bytes += n as u64;
    }

    /// Make at least `n` bytes available from `pos` if the input has them; returns how many are.
    fn ensure(&mut self, n: usize) -> usize {
        if self.end - self.pos >= n || self.eof {
            return self.end - self.pos;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A broken compressed stream or a read error ends the input here; what was
                    // read so far stays good and the caller sees the cut as a truncated record.
                    tracing::warn!(source = %self.source, offset = self.base + self.end as u64, error = %e, "input read failed; treating as end of input");
                    self.eof = true;
                    break;
                }
            }
        }
        self.end - self.pos
    }

    fn bad(&mut self, len: usize, reason: String) -> QuarantineRecord {
        let off = self.offset();
        let q = QuarantineRecord::new(FORMAT, &self.source, off, reason, &self.buf[self.pos..self.pos + len]);
        self.advance(len);
        self.stats.bad_records += 1;
        q
    }

    /// The next packet or bad record; `None` at the end of the input.
    pub fn next_item(&mut self) -> Option<Item<'_>> {
        match self.state {
            State::Pcap { .. } => self.next_pcap(),
            State::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self) -> Option<Item<'_>> {
        let State::Pcap { swapped, nanos, modified, snaplen, linktype, .. } = self.state else {
            unreachable!("next_pcap on a pcapng reader")
        };
        let hl = if modified { 24 } else { 16 };
        let have = self.ensure(hl);
        if have == 0 {
            return None;
        }
        if have < hl {
            return Some(Item::Bad(
                self.bad(have, format!("truncated record header at end of file: {have} of {hl} bytes")),
            ));
        }
        let h = &self.buf[self.pos..self.pos + hl];
        let ts_sec = u32_at(h, swapped);
        let mut frac = u32_at(&h[4..], swapped);
        let caplen = u32_at(&h[8..], swapped);
        let orig_len = u32_at(&h[12..], swapped);
        if caplen > MAX_PACKET {
            let off = self.offset();
            return Some(Item::Bad(
                self.resync_pcap(format!("record length {caplen} is absurd (> {MAX_PACKET}) at offset {off}")),
            ));
        }
        let total = hl + caplen as usize;
        let have = self.ensure(total);
        if have < total {
            return Some(Item::Bad(self.bad(
                have,
                format!("truncated record at end of file: header says {caplen} bytes, {} remain", have - hl),
            )));
        }
        if caplen > snaplen {
            return Some(Item::Bad(
                self.bad(total, format!("record length {caplen} exceeds the file's snap length {snaplen}")),
            ));
        }
        let limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if frac >= limit {
            frac = limit - 1;
            self.stats.fixed_timestamps += 1;
        }
        let sub_us = if nanos { frac / 1000 } else { frac } as i64;
        let ts_us = ts_sec as i64 * 1_000_000 + sub_us;
        let offset = self.offset();
        let start = self.pos + hl;
        if let State::Pcap { last_ts_sec, .. } = &mut self.state {
            *last_ts_sec = Some(ts_sec);
        }
        self.advance(total);
        self.stats.packets += 1;
        Some(Item::Packet(Frame { offset, linktype, ts_us, orig_len, data: &self.buf[start..start + caplen as usize] }))
    }

    /// Does a plausible pcap record header sit at `p` (relative to `pos`), judged against the
    /// file header and the last good timestamp? Returns the record's total length.
    fn pcap_plausible(&self, p: usize) -> Option<usize> {
        let State::Pcap { swapped, nanos, modified, snaplen, last_ts_sec, .. } = self.state else {
            return None;
        };
        let hl = if modified { 24 } else { 16 };
        let h = self.buf.get(self.pos + p..self.pos + p + hl)?;
        if self.pos + p + hl > self.end {
            return None;
        }
        let ts = u32_at(h, swapped);
        let frac = u32_at(&h[4..], swapped);
        let cap = u32_at(&h[8..], swapped);
        let orig = u32_at(&h[12..], swapped);
        let limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        let ts_ok = last_ts_sec.is_none_or(|l| (ts as i64 - l as i64).abs() <= 7 * 86_400);
        (frac < limit && cap > 0 && cap <= snaplen && cap <= orig && orig <= MAX_PACKET * 4 && ts_ok)
            .then_some(hl + cap as usize)
    }

    /// After an untrustworthy record header at `pos`: find the next position where a plausible
    /// record starts and is followed by another plausible record (or the exact end of file), and
    /// quarantine the bytes before it (in chunks of at most [`GARBAGE_CHUNK`]).
    fn resync_pcap(&mut self, reason: String) -> QuarantineRecord {
        let window = GARBAGE_CHUNK + 2 * (MAX_PACKET as usize + 24);
        let have = self.ensure(window);
        let limit = have.min(GARBAGE_CHUNK);
        for p in 1..limit {
            let Some(len) = self.pcap_plausible(p) else { continue };
            let next = p + len;
            if next == have && self.eof || self.pcap_plausible(next).is_some() {
                return self.bad(p, format!("{reason}; skipped {p} bytes to the next plausible record"));
            }
        }
        self.bad(limit, format!("{reason}; no plausible record in the next {limit} bytes"))
    }

    fn next_pcapng(&mut self) -> Option<Item<'_>> {
        loop {
            let State::PcapNg { swapped, section_ok, .. } = self.state else {
                unreachable!("next_pcapng on a pcap reader")
            };
            let have = self.ensure(12);
            if have == 0 {
                return None;
            }
            if have < 12 {
                return Some(Item::Bad(self.bad(have, format!("truncated block at end of file: {have} bytes"))));
            }
            let btype = u32_at(&self.buf[self.pos..], swapped);
            if btype == SHB {
                let have = self.ensure(28);
                if have < 28 {
                    return Some(Item::Bad(
                        self.bad(have, format!("truncated section header at end of file: {have} bytes")),
                    ));
                }
                match self.check_shb() {
                    Ok(()) => continue,
                    Err(reason) => {
                        if let State::PcapNg { section_ok, .. } = &mut self.state {
                            *section_ok = false;
                        }
                        return Some(Item::Bad(self.resync_pcapng(reason)));
                    }
                }
            }
            let blen = u32_at(&self.buf[self.pos + 4..], swapped);
            if blen < 12 {
                return Some(Item::Bad(self.resync_pcapng(format!("block has a length of {blen} < 12"))));
            }
            if !blen.is_multiple_of(4) {
                return Some(Item::Bad(
                    self.resync_pcapng(format!("block has a length of {blen} that is not a multiple of 4")),
                ));
            }
            if blen > MAX_BLOCK {
                return Some(Item::Bad(self.resync_pcapng(format!("block length {blen} is absurd (> {MAX_BLOCK})"))));
            }
            let have = self.ensure(blen as usize);
            if have < blen as usize {
                return Some(Item::Bad(
                    self.bad(have, format!("truncated block at end of file: length {blen}, {have} bytes remain")),
                ));
            }
            let trailer = u32_at(&self.buf[self.pos + blen as usize - 4..], swapped);
            if trailer != blen {
                return Some(Item::Bad(
                    self.resync_pcapng(format!(
                        "block total length in header {blen} and trailer {trailer} don't match"
                    )),
                ));
            }
            if !section_ok {
                return Some(Item::Bad(
                    self.bad(blen as usize, "block inside a section that could not be read".into()),
                ));
            }
            match btype {
                1 => {
                    if let Err(reason) = self.idb(blen as usize, swapped) {
                        return Some(Item::Bad(self.bad(blen as usize, reason)));
                    }
                    self.advance(blen as usize);
                }
                2 | 3 | 6 => return Some(self.packet_block(btype, blen as usize, swapped)),
                // NRB, ISB, DSB, custom and unknown blocks carry no packets.
                _ => self.advance(blen as usize),
            }
        }
    }

    fn idb(&mut self, blen: usize, swapped: bool) -> Result<(), String> {
        if blen < 20 {
            return Err(format!("interface description block too short ({blen} bytes)"));
        }
        let b = &self.buf[self.pos..self.pos + blen];
        let mut ifc = Interface {
            linktype: u16_at(&b[8..], swapped),
            snaplen: u32_at(&b[12..], swapped),
            res_pow10: true,
            res_exp: 6,
            offset_secs: 0,
        };
        // Options: code u16, length u16, value padded to 4 bytes; code 0 ends the list.
        let mut o = 16;
        while o + 4 <= blen - 4 {
            let code = u16_at(&b[o..], swapped);
            let len = u16_at(&b[o + 2..], swapped) as usize;
            let v = o + 4;
            if code == 0 || v + len > blen - 4 {
                break;
            }
            match (code, len) {
                // if_tsresol: MSB clear -> 10^-v, set -> 2^-v.
                (9, 1) => {
                    let r = b[v];
                    ifc.res_pow10 = r & 0x80 == 0;
                    ifc.res_exp = r & 0x7f;
                    if ifc.res_pow10 && ifc.res_exp > 19 {
                        return Err(format!("interface timestamp resolution 10^-{} is unsupported", ifc.res_exp));
                    }
                }
                // if_tsoffset: seconds to add to every timestamp.
                (14, 8) => {
                    let lo = u32_at(&b[v..], swapped) as u64;
                    let hi = u32_at(&b[v + 4..], swapped) as u64;
                    ifc.offset_secs = if swapped { (lo << 32) | hi } else { (hi << 32) | lo } as i64;
                }
                _ => {}
            }
            o = v + len.div_ceil(4) * 4;
        }
        if let State::PcapNg { interfaces, .. } = &mut self.state {
            interfaces.push(ifc);
        }
        Ok(())
    }

    fn packet_block(&mut self, btype: u32, blen: usize, swapped: bool) -> Item<'_> {
        let State::PcapNg { interfaces, last_ts_us, .. } = &self.state else {
            unreachable!("packet_block on a pcap reader")
        };
        let b = &self.buf[self.pos..self.pos + blen];
        // (interface, timestamp ticks, captured length, original length, data start)
        let parsed = match btype {
            // EPB (6) and the obsolete PB (2) share a layout; PB's interface id is 16 bits
            // followed by a 16-bit drop count.
            6 | 2 if blen >= 32 => {
                let ts = ((u32_at(&b[12..], swapped) as u64) << 32) | u32_at(&b[16..], swapped) as u64;
                let ifid =
                    if btype == 6 { u32_at(&b[8..], swapped) as usize } else { u16_at(&b[8..], swapped) as usize };
                Ok((ifid, Some(ts), u32_at(&b[20..], swapped), u32_at(&b[24..], swapped), 28))
            }
            3 if blen >= 16 => {
                let orig = u32_at(&b[8..], swapped);
                let room = (blen - 16) as u32;
                let snap = interfaces.first().map_or(0, |i| i.snaplen);
                let cap = orig.min(room).min(if snap == 0 { u32::MAX } else { snap });
                Ok((0, None, cap, orig, 12))
            }
            _ => Err(format!("packet block of type {btype} too short ({blen} bytes)")),
        };
        let (ifid, ticks, caplen, orig_len, start) = match parsed {
            Ok(p) => p,
            Err(reason) => return Item::Bad(self.bad(blen, reason)),
        };
        let Some(ifc) = interfaces.get(ifid) else {
            let reason = if interfaces.is_empty() {
                "packet block before any interface description block".to_string()
            } else {
                format!("packet block refers to interface {ifid}, but only {} are described", interfaces.len())
            };
            return Item::Bad(self.bad(blen, reason));
        };
        if caplen > MAX_PACKET {
            return Item::Bad(self.bad(blen, format!("captured length {caplen} is absurd (> {MAX_PACKET})")));
        }
        if start + caplen as usize > blen - 4 {
            return Item::Bad(self.bad(blen, format!("captured length {caplen} overruns its block of {blen} bytes")));
        }
        // A simple packet block has no timestamp: it inherits the last one seen in the section.
        let ts_us = ticks.map_or(*last_ts_us, |t| ifc.ticks_to_us(t));
        let linktype = ifc.linktype;
        if let State::PcapNg { last_ts_us, .. } = &mut self.state {
            *last_ts_us = ts_us;
        }
        let offset = self.offset();
        let s = self.pos + start;
        self.advance(blen);
        self.stats.packets += 1;
        Item::Packet(Frame { offset, linktype, ts_us, orig_len, data: &self.buf[s..s + caplen as usize] })
    }

    /// Does a well-formed block (known type, sane length, matching trailer) start at `p`?
    fn pcapng_plausible(&self, p: usize, swapped: bool) -> bool {
        let at = self.pos + p;
        if at + 12 > self.end {
            return false;
        }
        let t = u32_at(&self.buf[at..], swapped);
        if !matches!(t, 1..=10 | SHB | 0x0000_0BAD | 0x4000_0BAD) {
            return false;
        }
        let sw = if t == SHB && at + 12 <= self.end {
            match u32_at(&self.buf[at + 8..], false) {
                BOM => false,
                x if x == BOM.swap_bytes() => true,
                _ => return false,
            }
        } else {
            swapped
        };
        let len = u32_at(&self.buf[at + 4..], sw) as usize;
        len >= 12
            && len.is_multiple_of(4)
            && len <= MAX_BLOCK as usize
            && at + len <= self.end
            && u32_at(&self.buf[at + len - 4..], sw) as usize == len
    }

    fn resync_pcapng(&mut self, reason: String) -> QuarantineRecord {
        let State::PcapNg { swapped, .. } = self.state else { unreachable!("resync_pcapng on a pcap reader") };
        let window = GARBAGE_CHUNK + MAX_PACKET as usize + 64 * 1024;
        let have = self.ensure(window);
        let limit = have.min(GARBAGE_CHUNK);
        for p in 1..limit {
            if self.pcapng_plausible(p, swapped) {
                return self.bad(p, format!("{reason}; skipped {p} bytes to the next well-formed block"));
            }
        }
        self.bad(limit, format!("{reason}; no well-formed block in the next {limit} bytes"))
    }
}
