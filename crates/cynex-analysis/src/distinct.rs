//! Counting distinct 32-bit values (addresses, /24s, /16s) in bounded memory: exact up to
//! [`EXACT_MAX`] values, then a HyperLogLog with 2^10 registers (standard error 1.04/√1024 ≈ 3.3%,
//! Flajolet et al. 2007; linear counting below 2.5·m as in Heule et al. 2013). Sets merge, so
//! 5-minute counts combine into hourly and daily ones.

use serde::{Deserialize, Serialize};

/// Values kept exactly before switching to the sketch.
pub const EXACT_MAX: usize = 64;
const P: u32 = 10;
const M: usize = 1 << P;

/// Values held inline (no heap allocation): most sets in darknet data stay this small.
const INLINE: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Distinct {
    Inline(u8, [u32; INLINE]),
    Exact(Vec<u32>),
    Sketch(Vec<u8>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Inline(0, [0; INLINE])
    }
}

impl PartialEq for Distinct {
    fn eq(&self, other: &Self) -> bool {
        match (self.values(), other.values()) {
            (Some(a), Some(b)) => {
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
            (None, None) => matches!((self, other), (Distinct::Sketch(a), Distinct::Sketch(b)) if a == b),
            _ => false,
        }
    }
}

/// A 64-bit mix of a 32-bit value (the SplitMix64 finaliser): every input bit reaches every
/// output bit, which HyperLogLog needs.
#[inline]
fn mix(v: u32) -> u64 {
    let mut z = (v as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn sketch_add(reg: &mut [u8], v: u32) {
    let h = mix(v);
    let idx = (h >> (64 - P)) as usize;
    let rest = h << P;
    let rank = (rest.leading_zeros().min(64 - P) + 1) as u8;
    if reg[idx] < rank {
        reg[idx] = rank;
    }
}

/// Whether `vals` holds `v`: compared eight at a time without an early exit per value, which
/// the compiler turns into vector compares (`contains` stops at each element).
#[inline]
fn holds(vals: &[u32], v: u32) -> bool {
    let mut chunks = vals.chunks_exact(8);
    for c in &mut chunks {
        if c.iter().fold(false, |hit, &x| hit | (x == v)) {
            return true;
        }
    }
    chunks.remainder().contains(&v)
}

impl Distinct {
    /// Add a value. The common cases (a sketch, a small set with room) are inlined; growing and
    /// the exact phase's search are not.
    #[inline]
    pub fn insert(&mut self, v: u32) {
        match self {
            Distinct::Sketch(reg) => sketch_add(reg, v),
            Distinct::Inline(n, vals) if (*n as usize) < INLINE => {
                let n8 = *n as usize;
                if !vals[..n8].contains(&v) {
                    vals[n8] = v;
                    *n += 1;
                }
            }
            _ => self.insert_slow(v),
        }
    }

    #[inline(never)]
    fn insert_slow(&mut self, v: u32) {
        match self {
            Distinct::Inline(n, vals) => {
                let n8 = *n as usize;
                if vals[..n8].contains(&v) {
                    return;
                }
                if n8 < INLINE {
                    vals[n8] = v;
                    *n += 1;
                    return;
                }
                let mut big = Vec::with_capacity(16);
                big.extend_from_slice(&vals[..]);
                big.push(v);
                *self = Distinct::Exact(big);
            }
            Distinct::Exact(vals) => {
                if holds(vals, v) {
                    return;
                }
                if vals.len() < EXACT_MAX {
                    vals.push(v);
                    return;
                }
                let mut reg = vec![0u8; M];
                for &x in vals.iter() {
                    sketch_add(&mut reg, x);
                }
                sketch_add(&mut reg, v);
                *self = Distinct::Sketch(reg);
            }
            Distinct::Sketch(reg) => sketch_add(reg, v),
        }
    }

    pub fn merge(&mut self, other: &Distinct) {
        match other {
            Distinct::Inline(..) | Distinct::Exact(_) => {
                for &v in other.values().unwrap_or(&[]) {
                    self.insert(v);
                }
            }
            Distinct::Sketch(o) => {
                if let Some(vals) = self.values() {
                    let mut reg = vec![0u8; M];
                    for &x in vals {
                        sketch_add(&mut reg, x);
                    }
                    *self = Distinct::Sketch(reg);
                }
                if let Distinct::Sketch(reg) = self {
                    for (a, b) in reg.iter_mut().zip(o) {
                        *a = (*a).max(*b);
                    }
                }
            }
        }
    }

    /// The number of distinct values (exact up to [`EXACT_MAX`], estimated above).
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Inline(n, _) => *n as u64,
            Distinct::Exact(v) => v.len() as u64,
            Distinct::Sketch(reg) => {
                let m = M as f64;
                let mut sum = 0.0;
                let mut zeros = 0usize;
                for &r in reg {
                    sum += f64::from_bits((1023 - r as u64) << 52); // 2^-r
                    zeros += (r == 0) as usize;
                }
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let raw = alpha * m * m / sum;
                let est = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
                // Never report fewer than the exact phase had already seen.
                (est.round() as u64).max(EXACT_MAX as u64 + 1)
            }
        }
    }

    /// Heap bytes held (beyond the value itself).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Distinct::Inline(..) => 0,
            Distinct::Exact(v) => v.capacity() * 4,
            Distinct::Sketch(r) => r.capacity(),
        }
    }

    pub fn is_exact(&self) -> bool {
        !matches!(self, Distinct::Sketch(_))
    }

    /// The exact values, when the set is still exact.
    pub fn values(&self) -> Option<&[u32]> {
        match self {
            Distinct::Inline(n, v) => Some(&v[..*n as usize]),
            Distinct::Exact(v) => Some(v),
            Distinct::Sketch(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_estimated_within_error() {
        for n in [0u32, 1, 10, 64, 65, 100, 1_000, 10_000, 100_000, 1_000_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.insert(i.wrapping_mul(2_654_435_761));
                d.insert(i.wrapping_mul(2_654_435_761)); // duplicates do not count
            }
            let c = d.count() as f64;
            if n as usize <= EXACT_MAX {
                assert_eq!(c as u32, n);
            } else {
                let err = (c - n as f64).abs() / n as f64;
                assert!(err < 0.1, "n={n} estimate {c} error {err}");
            }
        }
    }

    #[test]
    fn merge_is_union() {
        let (mut a, mut b, mut all) = (Distinct::default(), Distinct::default(), Distinct::default());
        for i in 0..5_000u32 {
            a.insert(i);
            all.insert(i);
        }
        for i in 2_500..7_500u32 {
            b.insert(i);
            all.insert(i);
        }
        let mut small = Distinct::default();
        small.insert(1);
        small.insert(9_999);
        a.merge(&b);
        a.merge(&small);
        all.insert(9_999);
        assert_eq!(a, all);
        let err = (a.count() as f64 - 7_501.0).abs() / 7_501.0;
        assert!(err < 0.1, "{}", a.count());
    }
}
