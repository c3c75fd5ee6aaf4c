//! A JSON reader made for the EVE normaliser: it reads the few keys that have columns, borrowing
//! strings from the line unless they hold escapes, and steps over everything else without
//! building anything. A record of a few hundred bytes with a dozen nested sections is read in one
//! pass with no allocation.
//!
//! It accepts and refuses what `serde_json` does, as the serde visitors it replaced did (the
//! tests compare the two on generated records): strict RFC 8259 grammar, no trailing commas or
//! trailing characters, control characters refused in strings, surrogate escapes paired in the
//! strings that are read, numbers out of `f64` range refused where they are read. Where those
//! visitors only skipped a value, so does this reader, with the same leniency: a skipped string
//! may hold a lone surrogate escape and a skipped number may be `1e400`. Skipping is iterative,
//! so no nesting depth can overflow the stack.
//!
//! Errors name the byte offset in the record and what was expected there.

use std::borrow::Cow;
use std::fmt;

/// Where and why a record is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    what: &'static str,
    at: usize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

type Result<T> = std::result::Result<T, Error>;

/// A JSON value where a scalar is expected.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    U64(u64),
    /// A negative integer.
    I64(i64),
    F64(f64),
    Bool(bool),
    /// An object or array.
    Nested,
}

impl<'a> Scalar<'a> {
    /// As text: strings as they are (borrowed from the line unless escaped), numbers and
    /// booleans as JSON prints them.
    pub(crate) fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::U64(n) => Some(n.to_string().into()),
            Scalar::I64(n) => Some(n.to_string().into()),
            Scalar::F64(f) => {
                Some(serde_json::Number::from_f64(*f).map_or_else(|| f.to_string(), |n| n.to_string()).into())
            }
            Scalar::Bool(b) => Some(b.to_string().into()),
            _ => None,
        }
    }

    /// A string only (no numbers).
    pub(crate) fn string(&self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// As an unsigned number: a non-negative integer, or a string holding one.
    pub(crate) fn u64(&self) -> Option<u64> {
        match self {
            Scalar::U64(n) => Some(*n),
            Scalar::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A section that is used only when it is a JSON object (anything else is skipped).
#[derive(Debug)]
pub(crate) struct Obj<T>(pub(crate) Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

/// The first element of an array of objects (anything else is skipped).
#[derive(Debug)]
pub(crate) struct First<T>(pub(crate) Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

/// Something the reader can read where a value starts.
pub(crate) trait Read<'a>: Sized {
    fn read(r: &mut Reader<'a>) -> Result<Self>;
}

/// A struct of the keys wanted from one JSON object; made by [`section!`].
pub(crate) trait Section<'a>: Default {
    /// Read the value of `key` (the reader is at the value) into its field, or skip it.
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> Result<()>;
}

impl<'a> Read<'a> for Scalar<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.scalar()
    }
}

impl<'a, S: Section<'a>> Read<'a> for Obj<S> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.section().map(Obj)
    }
}

impl<'a, S: Section<'a>> Read<'a> for First<S> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.first().map(First)
    }
}

/// A struct of the keys we want from a JSON object. A key that appears twice is not an error:
/// the last one wins, as with a tree (real EVE writers repeat keys). Other keys are skipped.
macro_rules! section {
    ($name:ident { $($key:literal => $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default)]
        pub(crate) struct $name<'a> {
            $( pub(crate) $field: $ty, )*
        }

        impl<'a> $crate::eve::scan::Section<'a> for $name<'a> {
            fn field(
                &mut self,
                key: &str,
                r: &mut $crate::eve::scan::Reader<'a>,
            ) -> ::std::result::Result<(), $crate::eve::scan::Error> {
                match key {
                    $( $key => self.$field = $crate::eve::scan::Read::read(r)?, )*
                    _ => r.skip_value()?,
                }
                Ok(())
            }
        }

        #[cfg(test)]
        impl<'a> $crate::eve::scan::tests::Project for $name<'a> {
            fn project(&self) -> Option<serde_json::Value> {
                let mut m = serde_json::Map::new();
                $(
                    if let Some(v) = $crate::eve::scan::tests::Project::project(&self.$field) {
                        m.insert($key.into(), v);
                    }
                )*
                Some(m.into())
            }
            fn expect(v: &serde_json::Value) -> Option<serde_json::Value> {
                let v = v.as_object()?;
                let mut m = serde_json::Map::new();
                $(
                    if let Some(e) = v.get($key).and_then(<$ty as $crate::eve::scan::tests::Project>::expect) {
                        m.insert($key.into(), e);
                    }
                )*
                Some(m.into())
            }
        }
    };
}
pub(crate) use section;

/// Open containers while skipping: one bit per level (set for an object), spilling to the heap
/// only past 128 levels.
struct Stack {
    bits: u128,
    depth: usize,
    deep: Vec<bool>,
}

impl Stack {
    fn push(&mut self, object: bool) {
        if self.depth < 128 {
            self.bits = (self.bits & !(1 << self.depth)) | (u128::from(object) << self.depth);
        } else {
            self.deep.push(object);
        }
        self.depth += 1;
    }

    /// The innermost open container: `Some(true)` for an object.
    fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 128 => Some((self.bits >> (d - 1)) & 1 == 1),
            _ => self.deep.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 128 {
            self.deep.pop();
        }
        self.depth -= 1;
    }
}

/// A cursor over one record.
pub(crate) struct Reader<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader { text, s: text.as_bytes(), pos: 0 }
    }

    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(Error { what, at: self.pos })
    }

    /// The next byte after whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.s.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Only whitespace may follow the value.
    pub(crate) fn finish(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.err("trailing characters"),
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        match self.peek() {
            Some(c) if c == b => {
                self.pos += 1;
                Ok(())
            }
            None => self.err("end of record"),
            Some(_) => self.err(what),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("expected a value")
        }
    }

    /// The end of the number at the cursor and whether it is an integer (RFC 8259 grammar).
    fn number_end(&self) -> Result<(usize, bool)> {
        let s = self.s;
        let digits = |mut i: usize| {
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let bad = |i| Err(Error { what: "invalid number", at: i });
        let mut i = self.pos + usize::from(s[self.pos] == b'-');
        i = match s.get(i) {
            Some(b'0') => i + 1,
            Some(b'1'..=b'9') => digits(i + 1),
            _ => return bad(i),
        };
        let mut integer = true;
        if s.get(i) == Some(&b'.') {
            integer = false;
            let end = digits(i + 1);
            if end == i + 1 {
                return bad(end);
            }
            i = end;
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return bad(end);
            }
            i = end;
        }
        Ok((i, integer))
    }

    /// A number as `serde_json` reads it: non-negative integers as `u64`, negative ones as `i64`,
    /// the rest (and integers too big for those) as `f64`, refused when out of its range.
    fn number(&mut self) -> Result<Scalar<'a>> {
        let (end, integer) = self.number_end()?;
        let t = &self.text[self.pos..end];
        let n = if integer {
            match t.strip_prefix('-') {
                None => t.parse().ok().map(Scalar::U64),
                // -0 is a float to serde_json; -2^63 the last integer.
                Some("0") => Some(Scalar::F64(-0.0)),
                Some(m) => {
                    m.parse::<u64>().ok().filter(|m| *m <= 1 << 63).map(|m| Scalar::I64(0i64.wrapping_sub(m as i64)))
                }
            }
        } else {
            None
        };
        let n = match n {
            Some(n) => n,
            None => match t.parse::<f64>() {
                Ok(f) if f.is_finite() => Scalar::F64(f),
                _ => return self.err("number out of range"),
            },
        };
        self.pos = end;
        Ok(n)
    }

    /// The end of the string run starting at `i`: the index of the next `"` or `\`, after
    /// checking that no control character comes before it. Eight bytes at a time: a byte is
    /// flagged by the "has a zero byte" trick (`(x - 0x01..) & !x & 0x80..`) applied to the
    /// word itself (bytes below 0x20) and to the word xor'ed with each delimiter. Only bytes
    /// above a true match can be flagged falsely, so the lowest flag is the first stop.
    fn run_end(&self, mut i: usize) -> Result<usize> {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGH: u64 = ONES << 7;
        let s = self.s;
        while let Some(chunk) = s.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_le_bytes(*chunk);
            let quote = w ^ (ONES * u64::from(b'"'));
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let stops = (w.wrapping_sub(ONES * 0x20) & !w)
                | (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash);
            let stops = stops & HIGH;
            if stops != 0 {
                i += stops.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
        while let Some(&b) = s.get(i) {
            match b {
                b'"' | b'\\' => return Ok(i),
                0..=0x1f => return Err(Error { what: "control character in a string", at: i }),
                _ => i += 1,
            }
        }
        Err(Error { what: "end of record in a string", at: s.len() })
    }

    /// Four hex digits after `\u`.
    fn hex4(&mut self) -> Result<u16> {
        let mut n = 0u16;
        for _ in 0..4 {
            let d = match self.s.get(self.pos) {
                Some(b) => (*b as char).to_digit(16),
                None => return self.err("end of record in an escape"),
            };
            match d {
                Some(d) => n = n << 4 | d as u16,
                None => return self.err("invalid \\u escape"),
            }
            self.pos += 1;
        }
        Ok(n)
    }

    /// A string, the cursor at its opening quote: borrowed from the record unless it has escapes.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos + 1;
        let end = self.run_end(start)?;
        if self.s[end] == b'"' {
            self.pos = end + 1;
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        let mut out = String::with_capacity(end - start + 16);
        out.push_str(&self.text[start..end]);
        self.pos = end;
        loop {
            // At a backslash.
            self.pos += 1;
            let Some(&c) = self.s.get(self.pos) else { return self.err("end of record in an escape") };
            self.pos += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => {
                    self.pos -= 1;
                    return self.err("invalid escape");
                }
            }
            let end = self.run_end(self.pos)?;
            out.push_str(&self.text[self.pos..end]);
            self.pos = end;
            if self.s[end] == b'"' {
                self.pos += 1;
                return Ok(Cow::Owned(out));
            }
        }
    }

    /// The character of a `\u` escape (the cursor after the `u`): a surrogate must be a leading
    /// one followed by a trailing one.
    fn unicode_escape(&mut self) -> Result<char> {
        let n = self.hex4()?;
        let c = match n {
            0xDC00..=0xDFFF => return self.err("lone trailing surrogate in a \\u escape"),
            0xD800..=0xDBFF => {
                if !self.s[self.pos..].starts_with(b"\\u") {
                    return self.err("lone leading surrogate in a \\u escape");
                }
                self.pos += 2;
                let m = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&m) {
                    return self.err("lone leading surrogate in a \\u escape");
                }
                0x1_0000 + ((u32::from(n) - 0xD800) << 10 | (u32::from(m) - 0xDC00))
            }
            _ => u32::from(n),
        };
        // Every value left is a scalar value.
        char::from_u32(c).map_or_else(|| self.err("invalid \\u escape"), Ok)
    }

    /// Step over a string, the cursor at its opening quote. As when `serde_json` ignores one,
    /// escapes must be well formed but `\u` may name any code unit.
    fn skip_string(&mut self) -> Result<()> {
        let mut i = self.pos + 1;
        loop {
            i = self.run_end(i)?;
            if self.s[i] == b'"' {
                self.pos = i + 1;
                return Ok(());
            }
            self.pos = i + 1;
            match self.s.get(self.pos) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                Some(b'u') => {
                    self.pos += 1;
                    self.hex4()?;
                }
                Some(_) => return self.err("invalid escape"),
                None => return self.err("end of record in an escape"),
            }
            i = self.pos;
        }
    }

    /// Step over one value of any kind and size, without building it.
    pub(crate) fn skip_value(&mut self) -> Result<()> {
        let mut open = Stack { bits: 0, depth: 0, deep: Vec::new() };
        loop {
            // A value starts here.
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'}') => self.pos += 1,
                        Some(b'"') => {
                            self.skip_string()?;
                            self.expect(b':', "expected ':'")?;
                            open.push(true);
                            continue;
                        }
                        None => return self.err("end of record in an object"),
                        Some(_) => return self.err("expected a key or '}'"),
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b'-' | b'0'..=b'9') => self.pos = self.number_end()?.0,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                None => return self.err("end of record where a value was expected"),
                Some(_) => return self.err("expected a value"),
            }
            // A value ended: close what it ends, until one more value is due.
            loop {
                let Some(object) = open.top() else { return Ok(()) };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            if self.peek() != Some(b'"') {
                                return self.err("expected a key");
                            }
                            self.skip_string()?;
                            self.expect(b':', "expected ':'")?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        open.pop();
                    }
                    None => return self.err("end of record in an object or array"),
                    Some(_) if object => return self.err("expected ',' or '}'"),
                    Some(_) => return self.err("expected ',' or ']'"),
                }
            }
        }
    }

    /// Any value, read as a [`Scalar`]: objects and arrays are skipped and say only that they
    /// were there.
    pub(crate) fn scalar(&mut self) -> Result<Scalar<'a>> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true").map(|_| Scalar::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|_| Scalar::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|_| Scalar::Null),
            Some(b'{' | b'[') => self.skip_value().map(|_| Scalar::Nested),
            None => self.err("end of record where a value was expected"),
            Some(_) => self.err("expected a value"),
        }
    }

    /// An object read into `S`; any other value is read (scalars) or skipped (arrays) and gives
    /// `None`.
    pub(crate) fn section<S: Section<'a>>(&mut self) -> Result<Option<S>> {
        match self.peek() {
            Some(b'{') => {}
            Some(b'[') => return self.skip_value().map(|_| None),
            _ => return self.scalar().map(|_| None),
        }
        self.pos += 1;
        let mut out = S::default();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Some(out));
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.err("expected a key");
            }
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            out.field(&key, self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Some(out));
                }
                None => return self.err("end of record in an object"),
                Some(_) => return self.err("expected ',' or '}'"),
            }
        }
    }

    /// The first element of an array, read as [`Obj`] reads it; any other value gives `None`.
    fn first<S: Section<'a>>(&mut self) -> Result<Option<S>> {
        match self.peek() {
            Some(b'[') => {}
            Some(b'{') => return self.skip_value().map(|_| None),
            _ => return self.scalar().map(|_| None),
        }
        self.pos += 1;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(None);
        }
        let first = self.section()?;
        loop {
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_value()?;
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(first);
                }
                None => return self.err("end of record in an array"),
                Some(_) => return self.err("expected ',' or ']'"),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The typed view as a JSON tree (`project`), and what it should be, taken from the record
    /// parsed by `serde_json` into a tree (`expect`). `None` is "not there".
    pub(crate) trait Project {
        fn project(&self) -> Option<Value>;
        fn expect(v: &Value) -> Option<Value>;
    }

    impl Project for Scalar<'_> {
        fn project(&self) -> Option<Value> {
            Some(match self {
                Scalar::Absent => return None,
                Scalar::Null => Value::Null,
                Scalar::Str(s) => Value::String(s.to_string()),
                Scalar::U64(n) => (*n).into(),
                Scalar::I64(n) => (*n).into(),
                Scalar::F64(f) => (*f).into(),
                Scalar::Bool(b) => (*b).into(),
                Scalar::Nested => "<nested>".into(),
            })
        }
        fn expect(v: &Value) -> Option<Value> {
            Some(match v {
                Value::Object(_) | Value::Array(_) => "<nested>".into(),
                v => v.clone(),
            })
        }
    }

    impl<S: Project> Project for Obj<S> {
        fn project(&self) -> Option<Value> {
            self.0.as_ref()?.project()
        }
        fn expect(v: &Value) -> Option<Value> {
            S::expect(v)
        }
    }

    impl<S: Project> Project for First<S> {
        fn project(&self) -> Option<Value> {
            self.0.as_ref()?.project()
        }
        fn expect(v: &Value) -> Option<Value> {
            S::expect(v.as_array()?.first()?)
        }
    }

    section!(Inner { "k" => k: Scalar<'a>, "x" => x: Scalar<'a> });
    section!(Outer {
        "a" => a: Scalar<'a>,
        "b" => b: Scalar<'a>,
        "k" => k: Scalar<'a>,
        "o" => o: Obj<Inner<'a>>,
        "l" => l: First<Inner<'a>>,
    });

    /// Read a whole record as the normaliser does.
    fn read<S: Section<'static>>(text: &'static str) -> Result<Option<S>> {
        let mut r = Reader::new(text);
        let s = r.section::<S>()?;
        r.finish()?;
        Ok(s)
    }

    /// Numbers equal, allowing for `serde_json`'s float parsing, which is not always the
    /// correctly rounded one (its `float_roundtrip` feature is off).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    /// Compare the reader with `serde_json` on one record: both accept or both refuse, and when
    /// they accept the typed view is what the tree holds. With `skips_may_be_lenient`, a record
    /// the tree refuses only for a lone surrogate or a number out of range may be accepted (the
    /// reader, like the visitors it replaced, does not look into values it skips).
    fn agree(text: &str, skips_may_be_lenient: bool) -> std::result::Result<(), TestCaseError> {
        let text: &'static str = Box::leak(text.to_string().into_boxed_str());
        let tree = serde_json::from_str::<Value>(text);
        let ours = read::<Outer>(text);
        match (&tree, &ours) {
            (Ok(t), Ok(o)) => {
                let want = Obj::<Outer>::expect(t);
                let got = o.as_ref().and_then(Project::project);
                prop_assert!(
                    match (&want, &got) {
                        (Some(w), Some(g)) => same(w, g),
                        (w, g) => w == g,
                    },
                    "{text}\nwant {want:?}\n got {got:?}"
                );
            }
            (Err(_), Err(_)) => {}
            (Err(e), Ok(_))
                if skips_may_be_lenient
                    && ["surrogate", "hex escape", "out of range"].iter().any(|m| e.to_string().contains(m)) => {}
            _ => {
                prop_assert!(false, "{text}\nserde_json: {:?}\nreader: {:?}", tree.as_ref().err(), ours.as_ref().err())
            }
        }
        Ok(())
    }

    /// JSON text: strings with every kind of escape and non-ASCII text, numbers of every shape
    /// (within `f64` range, where the tree and the reader must agree), nesting, keys from the
    /// section's set and others, and random whitespace.
    fn json() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z ]{0,6}",
            Just("é€😀".to_string()),
            Just("\\\"".to_string()),
            Just("\\\\".to_string()),
            Just("\\/\\b\\f\\n\\r\\t".to_string()),
            Just("\\u00e9".to_string()),
            Just("\\u20AC".to_string()),
            Just("\\ud83d\\ude00".to_string()),
        ];
        let string = proptest::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()));
        let number = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("-0".to_string()),
            Just("18446744073709551616".to_string()),
            Just("-9223372036854775809".to_string()),
            (-1e6f64..1e6).prop_map(|f| f.to_string()),
            (any::<i32>(), -300i32..298).prop_map(|(m, e)| format!("{m}e{e}")),
            (0u32..1000, 0u32..1000, -20i32..20).prop_map(|(a, b, e)| format!("{a}.{b:03}E{e:+}")),
        ];
        let key = prop_oneof![
            Just("a"),
            Just("b"),
            Just("k"),
            Just("o"),
            Just("l"),
            Just("x"),
            Just("other"),
            Just("\\u006b"),
        ]
        .prop_map(|k| format!("\"{k}\""));
        let ws = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
        let leaf =
            prop_oneof![string, number, Just("true".to_string()), Just("false".to_string()), Just("null".to_string()),];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            let ws = ws.clone();
            prop_oneof![
                (proptest::collection::vec(inner.clone(), 0..5), ws.clone())
                    .prop_map(|(v, w)| format!("[{w}{}{w}]", v.join(&format!("{w},{w}")))),
                (proptest::collection::vec((key.clone(), inner), 0..6), ws).prop_map(|(v, w)| format!(
                    "{{{w}{}{w}}}",
                    v.iter().map(|(k, v)| format!("{k}{w}:{w}{v}")).collect::<Vec<_>>().join(&format!("{w},{w}"))
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Generated records, and the same records cut short or with one byte changed.
        #[test]
        fn the_reader_agrees_with_serde_json(
            text in json(),
            cut in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:\\0-.eE \x01tfnu".to_vec()),
            how in 0u8..3,
        ) {
            agree(&text, false)?;
            let mut broken = text.into_bytes();
            let at = cut.index(broken.len().max(1)).min(broken.len());
            match how {
                0 => broken.truncate(at),
                1 => broken.insert(at, byte),
                _ => if at < broken.len() { broken[at] = byte },
            }
            if let Ok(text) = String::from_utf8(broken) {
                agree(&text, true)?;
            }
        }
    }

    #[test]
    fn edge_cases_agree_with_serde_json() {
        for text in [
            r#"{}"#,
            r#" { "a" : 1 } "#,
            r#"{"a":1,}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1}"#,
            r#"{"a":{"x":1]}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"nul\u{0}\"}",
            r#"{"a":"x","a":2}"#,
            r#"{"o":{"k":1},"o":5}"#,
            r#"{"o":[1,{"k":2}],"l":[{"k":"v"},{"k":"w"}]}"#,
            r#"{"l":[7,{"k":2}]}"#,
            r#"{"l":{"k":2}}"#,
            r#"{"l":[]}"#,
            r#"{"a":-0,"b":-9223372036854775808,"k":18446744073709551615}"#,
            r#"{"a":18446744073709551616,"b":-9223372036854775809}"#,
            r#"{"a":1e308,"b":-2.5E-3}"#,
            // Out of range where read: refused, as serde_json refuses it.
            r#"{"a":1e400}"#,
            r#"{"o":1e400}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83dx"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"\ud83d":1}"#,
            r#"{"o":"\udc00"}"#,
            r#"{"\u0061":"\ud83d\ude00é"}"#,
        ] {
            agree(text, false).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn skipped_values_are_as_lenient_as_serde_json_ignoring_them() {
        // What the reader only skips, serde_json only ignores: a lone surrogate escape or a
        // number beyond f64 is no error there, in values or keys.
        for text in [
            r#"{"other":"\ud83d"}"#,
            r#"{"other":{"\udc00":1e400}}"#,
            r#"{"a":[{"x":"\ud800"}]}"#,
            r#"{"l":[{"k":1},"\udfff",1e999]}"#,
        ] {
            assert!(read::<Outer>(text).is_ok(), "{text}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(), "{text}");
        }
        // Nesting as deep as you like is skipped without recursion.
        let deep = format!("{{\"other\":{}1{}}}", "[{\"z\":".repeat(100_000), "}]".repeat(100_000));
        let deep: &'static str = Box::leak(deep.into_boxed_str());
        assert!(read::<Outer>(deep).is_ok());
        let unbalanced: &'static str = Box::leak(deep.replacen("}]", "]]", 1).into_boxed_str());
        assert_eq!(read::<Outer>(unbalanced).unwrap_err().what, "expected ',' or '}'");
    }

    #[test]
    fn borrowed_unless_escaped_and_errors_say_where() {
        let o = read::<Outer>(r#"{"a":"plain","b":"esc\naped","o":{"k":"x"}}"#).unwrap().unwrap();
        assert!(matches!(o.a, Scalar::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&o.b, Scalar::Str(Cow::Owned(s)) if s == "esc\naped"));
        assert!(matches!(o.o.0.unwrap().k, Scalar::Str(Cow::Borrowed("x"))));
        let e = read::<Outer>(r#"{"a":"x","b":[1,2,}"#).unwrap_err();
        assert_eq!(e.to_string(), "expected a value at byte 18");
        let e = read::<Outer>(r#"{"a":"x" "b":1}"#).unwrap_err();
        assert_eq!(e.to_string(), "expected ',' or '}' at byte 9");
        let e = read::<Outer>("{\"a\":\"x\u{1}\"}").unwrap_err();
        assert_eq!(e.to_string(), "control character in a string at byte 7");
        let e = read::<Outer>(r#"{"a":"x"#).unwrap_err();
        assert_eq!(e.to_string(), "end of record in a string at byte 7");
    }
}
