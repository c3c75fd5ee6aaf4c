//! STIX 2.1 patterning (STIX 2.1 part 9): a lexer and recursive-descent parser for the grammar
//! of the OASIS `STIXPattern.g4` (as shipped in `stix2-patterns` 2.1), the semantic checks its
//! validator adds (a qualifier type at most once directly on an observation, hash values of the
//! right form), plus the MUSTs of §9.6 that the grammar cannot say (WITHIN and REPEATS positive,
//! STOP later than START).
//!
//! The tree is kept so other code can ask what a pattern talks about: [`Pattern::equalities`] lists
//! the `object-type:path = 'value'` tests, which is what lists, Suricata rules and correlation need.

use std::fmt;

use super::time::{parse_timestamp, timestamp_syntax_ok};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Byte offset in the pattern where the problem was found.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for PatternError {}

type PResult<T> = Result<T, PatternError>;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Base64 text of a binary literal (`b'…'`).
    Binary(String),
    /// Hex digits of a hex literal (`h'…'`).
    Hex(String),
    /// A timestamp literal's text (`t'…'`).
    Timestamp(String),
    Set(Vec<Literal>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
    Exists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Prop(String),
    Index(i64),
    AnyIndex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub object_type: String,
    pub steps: Vec<Step>,
}

impl ObjectPath {
    /// `value`, `hashes.SHA-256`, `extensions.x.sections[*].entropy`.
    pub fn property_path(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            match st {
                Step::Prop(p) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(p);
                }
                Step::Index(i) => s.push_str(&format!("[{i}]")),
                Step::AnyIndex => s.push_str("[*]"),
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropTest {
    pub path: ObjectPath,
    pub negated: bool,
    pub op: Op,
    /// `None` for EXISTS.
    pub value: Option<Literal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Test(PropTest),
    And(Vec<Comparison>),
    Or(Vec<Comparison>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    Within(f64),
    Repeats(i64),
    StartStop(String, String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// `[ comparison ]` with its qualifiers.
    Simple(Comparison, Vec<Qualifier>),
    /// `( observations )` with its qualifiers.
    Group(Box<Observation>, Vec<Qualifier>),
    And(Vec<Observation>),
    Or(Vec<Observation>),
    FollowedBy(Vec<Observation>),
}

/// A parsed, validated STIX pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub root: Observation,
}

/// One `type:path = 'value'` test (not negated), wherever it stands in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equality {
    pub object_type: String,
    pub path: String,
    pub value: String,
}

impl Pattern {
    pub fn parse(text: &str) -> PResult<Pattern> {
        let tokens = lex(text)?;
        let mut p = Parser { toks: tokens, pos: 0, end: text.len() };
        let root = p.observations()?;
        if let Some(t) = p.peek() {
            return Err(PatternError { offset: t.at, message: format!("unexpected {} after the pattern", t.kind) });
        }
        let pat = Pattern { root };
        pat.check()?;
        Ok(pat)
    }

    /// The equality tests with a string value, in pattern order.
    pub fn equalities(&self) -> Vec<Equality> {
        let mut out = Vec::new();
        walk_obs(&self.root, &mut |t| {
            if let (Op::Eq, false, Some(Literal::Str(v))) = (t.op, t.negated, &t.value) {
                out.push(Equality {
                    object_type: t.path.object_type.clone(),
                    path: t.path.property_path(),
                    value: v.clone(),
                });
            }
        });
        out
    }

    /// Every property test, in pattern order.
    pub fn tests(&self) -> Vec<&PropTest> {
        let mut out = Vec::new();
        collect_tests(&self.root, &mut out);
        out
    }

    fn check(&self) -> PResult<()> {
        let mut err = None;
        walk_obs(&self.root, &mut |t| {
            if err.is_some() {
                return;
            }
            if let Some(e) = check_hash(t) {
                err = Some(e);
            }
        });
        match err {
            Some(message) => Err(PatternError { offset: 0, message }),
            None => Ok(()),
        }
    }
}

fn collect_tests<'a>(o: &'a Observation, out: &mut Vec<&'a PropTest>) {
    fn cmp<'a>(c: &'a Comparison, out: &mut Vec<&'a PropTest>) {
        match c {
            Comparison::Test(t) => out.push(t),
            Comparison::And(v) | Comparison::Or(v) => v.iter().for_each(|c| cmp(c, out)),
        }
    }
    match o {
        Observation::Simple(c, _) => cmp(c, out),
        Observation::Group(g, _) => collect_tests(g, out),
        Observation::And(v) | Observation::Or(v) | Observation::FollowedBy(v) => {
            v.iter().for_each(|o| collect_tests(o, out))
        }
    }
}

fn walk_obs(o: &Observation, f: &mut dyn FnMut(&PropTest)) {
    fn cmp(c: &Comparison, f: &mut dyn FnMut(&PropTest)) {
        match c {
            Comparison::Test(t) => f(t),
            Comparison::And(v) | Comparison::Or(v) => v.iter().for_each(|c| cmp(c, f)),
        }
    }
    match o {
        Observation::Simple(c, _) => cmp(c, f),
        Observation::Group(g, _) => walk_obs(g, f),
        Observation::And(v) | Observation::Or(v) | Observation::FollowedBy(v) => v.iter().for_each(|o| walk_obs(o, f)),
    }
}

/// stix2-patterns' `object_validator`: a `…hashes.<ALGO>` test against a string must have a
/// value of that algorithm's form.
fn check_hash(t: &PropTest) -> Option<String> {
    let Some(Literal::Str(v)) = &t.value else { return None };
    let has_hashes = t.path.steps.iter().any(|s| matches!(s, Step::Prop(p) if p == "hashes"));
    let Some(Step::Prop(algo)) = t.path.steps.last() else { return None };
    if !has_hashes {
        return None;
    }
    let norm = algo.to_ascii_uppercase().replace('-', "");
    let hex_len: &[usize] = match norm.as_str() {
        "MD5" => &[32],
        "MD6" => &[32, 40, 56, 64, 96, 128],
        "RIPEMD160" | "SHA1" => &[40],
        "SHA224" | "SHA3224" => &[56],
        "SHA256" | "SHA3256" => &[64],
        "SHA384" | "SHA3384" => &[96],
        "SHA512" | "SHA3512" | "WHIRLPOOL" => &[128],
        "SSDEEP" => {
            let ok = (1..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b':' | b'.'));
            return (!ok).then(|| format!("'{v}' is not a valid {algo} hash"));
        }
        _ => return None,
    };
    let ok = hex_len.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit());
    (!ok).then(|| format!("'{v}' is not a valid {algo} hash"))
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Star,
    Cmp(Op),
    /// A word: a keyword (upper case, as the grammar is case-sensitive) or an identifier.
    Word(String),
    Str(String),
    Int(i64),
    Float(f64),
    Binary(String),
    Hex(String),
    Timestamp(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::LBrack => f.write_str("'['"),
            Kind::RBrack => f.write_str("']'"),
            Kind::LParen => f.write_str("'('"),
            Kind::RParen => f.write_str("')'"),
            Kind::Comma => f.write_str("','"),
            Kind::Colon => f.write_str("':'"),
            Kind::Dot => f.write_str("'.'"),
            Kind::Star => f.write_str("'*'"),
            Kind::Cmp(op) => write!(f, "operator {op:?}"),
            Kind::Word(w) => write!(f, "'{w}'"),
            Kind::Str(s) => write!(f, "string '{s}'"),
            Kind::Int(i) => write!(f, "integer {i}"),
            Kind::Float(x) => write!(f, "number {x}"),
            Kind::Binary(_) => f.write_str("binary literal"),
            Kind::Hex(_) => f.write_str("hex literal"),
            Kind::Timestamp(t) => write!(f, "timestamp t'{t}'"),
        }
    }
}

#[derive(Debug, Clone)]
struct Tok {
    kind: Kind,
    at: usize,
}

const KEYWORDS: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "true",
    "false",
    "WITHIN",
    "REPEATS",
    "TIMES",
];

fn lex(text: &str) -> PResult<Vec<Tok>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, m: String| PatternError { offset: at, message: m };
    while i < b.len() {
        let c = b[i];
        let at = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => return Err(err(at, "unterminated comment".into())),
            },
            b'[' | b']' | b'(' | b')' | b',' | b':' | b'.' | b'*' => {
                // A '.' followed by a digit starts a number (`.5`), else it is a path step.
                if c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    let (k, n) = number(text, i).map_err(|m| err(at, m))?;
                    out.push(Tok { kind: k, at });
                    i = n;
                    continue;
                }
                let kind = match c {
                    b'[' => Kind::LBrack,
                    b']' => Kind::RBrack,
                    b'(' => Kind::LParen,
                    b')' => Kind::RParen,
                    b',' => Kind::Comma,
                    b':' => Kind::Colon,
                    b'.' => Kind::Dot,
                    _ => Kind::Star,
                };
                out.push(Tok { kind, at });
                i += 1;
            }
            b'=' => {
                i += if b.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                out.push(Tok { kind: Kind::Cmp(Op::Eq), at });
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                out.push(Tok { kind: Kind::Cmp(Op::Neq), at });
            }
            b'<' => {
                let (op, n) = match b.get(i + 1) {
                    Some(b'=') => (Op::Le, 2),
                    Some(b'>') => (Op::Neq, 2),
                    _ => (Op::Lt, 1),
                };
                i += n;
                out.push(Tok { kind: Kind::Cmp(op), at });
            }
            b'>' => {
                let (op, n) = if b.get(i + 1) == Some(&b'=') { (Op::Ge, 2) } else { (Op::Gt, 1) };
                i += n;
                out.push(Tok { kind: Kind::Cmp(op), at });
            }
            b'\'' => {
                let (s, n) = string(text, i).map_err(|m| err(at, m))?;
                out.push(Tok { kind: Kind::Str(s), at });
                i = n;
            }
            b't' | b'b' | b'h' if b.get(i + 1) == Some(&b'\'') => {
                let end = text[i + 2..]
                    .find('\'')
                    .map(|e| i + 2 + e)
                    .ok_or_else(|| err(at, "unterminated literal".into()))?;
                let body = &text[i + 2..end];
                let kind = match c {
                    b't' => {
                        if !timestamp_literal_ok(body) {
                            return Err(err(
                                at,
                                format!("t'{body}' is not a timestamp of the form YYYY-MM-DDTHH:MM:SS[.s]Z"),
                            ));
                        }
                        Kind::Timestamp(body.to_string())
                    }
                    b'b' => {
                        if !base64_ok(body) {
                            return Err(err(at, format!("b'{body}' is not valid base64")));
                        }
                        Kind::Binary(body.to_string())
                    }
                    _ => {
                        if !body.len().is_multiple_of(2) || !body.bytes().all(|x| x.is_ascii_hexdigit()) {
                            return Err(err(at, format!("h'{body}' is not an even number of hex digits")));
                        }
                        Kind::Hex(body.to_string())
                    }
                };
                out.push(Tok { kind, at });
                i = end + 1;
            }
            b'0'..=b'9' | b'+' | b'-' => {
                let (k, n) = number(text, i).map_err(|m| err(at, m))?;
                out.push(Tok { kind: k, at });
                i = n;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
                    j += 1;
                }
                out.push(Tok { kind: Kind::Word(text[i..j].to_string()), at });
                i = j;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(err(at, format!("unexpected character {ch:?}")));
            }
        }
    }
    Ok(out)
}

/// A quoted string: `\'` and `\\` are the only escapes.
fn string(text: &str, start: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    let mut it = text[start + 1..].char_indices();
    while let Some((k, ch)) = it.next() {
        match ch {
            '\'' => return Ok((s, start + 1 + k + 1)),
            '\\' => match it.next() {
                Some((_, '\'')) => s.push('\''),
                Some((_, '\\')) => s.push('\\'),
                Some((_, other)) => return Err(format!("invalid escape \\{other} in a string (only \\' and \\\\)")),
                None => break,
            },
            c => s.push(c),
        }
    }
    Err("unterminated string".into())
}

/// `[+-]?(0|[1-9][0-9]*)` or `[+-]?[0-9]*\.[0-9]+` (no exponent, no leading zeros).
fn number(text: &str, start: usize) -> Result<(Kind, usize), String> {
    let b = text.as_bytes();
    let mut i = start;
    if matches!(b[i], b'+' | b'-') {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &text[digits_start..i];
    if i < b.len() && b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let v: f64 = text[start..i].parse().map_err(|_| format!("bad number {:?}", &text[start..i]))?;
        return Ok((Kind::Float(v), i));
    }
    if int_part.is_empty() {
        return Err(format!("{:?} is not a number", &text[start..i.max(start + 1)]));
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        return Err(format!("integer {:?} has a leading zero", &text[start..i]));
    }
    if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
        return Err(format!("{:?} is not a number", &text[start..=i]));
    }
    let v: i64 = text[start..i].parse().map_err(|_| format!("integer {:?} out of range", &text[start..i]))?;
    Ok((Kind::Int(v), i))
}

fn timestamp_literal_ok(s: &str) -> bool {
    timestamp_syntax_ok(s)
}

fn base64_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let alpha = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    for (gi, g) in b.chunks(4).enumerate() {
        let last = gi == b.len() / 4 - 1;
        let ok = match g {
            [a, b2, b'=', b'='] if last => alpha(*a) && alpha(*b2),
            [a, b2, c, b'='] if last => alpha(*a) && alpha(*b2) && alpha(*c),
            [a, b2, c, d] => alpha(*a) && alpha(*b2) && alpha(*c) && alpha(*d),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&Kind> {
        self.peek().map(|t| &t.kind)
    }

    fn at(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    fn fail<T>(&self, expected: &str) -> PResult<T> {
        let found = self.peek().map_or("the end of the pattern".to_string(), |t| t.kind.to_string());
        Err(PatternError { offset: self.at(), message: format!("expected {expected}, found {found}") })
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek_kind(), Some(Kind::Word(x)) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, k: Kind, what: &str) -> PResult<()> {
        if self.peek_kind() == Some(&k) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    // observations := or (FOLLOWEDBY or)*
    fn observations(&mut self) -> PResult<Observation> {
        let mut v = vec![self.obs_or()?];
        while self.eat_word("FOLLOWEDBY") {
            v.push(self.obs_or()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Observation::FollowedBy(v) })
    }

    fn obs_or(&mut self) -> PResult<Observation> {
        let mut v = vec![self.obs_and()?];
        while self.eat_word("OR") {
            v.push(self.obs_and()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Observation::Or(v) })
    }

    fn obs_and(&mut self) -> PResult<Observation> {
        let mut v = vec![self.observation()?];
        while self.eat_word("AND") {
            v.push(self.observation()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Observation::And(v) })
    }

    fn observation(&mut self) -> PResult<Observation> {
        match self.peek_kind() {
            Some(Kind::LBrack) => {
                self.pos += 1;
                let c = self.comparison()?;
                self.expect(Kind::RBrack, "']' closing the observation expression")?;
                let q = self.qualifiers(true)?;
                Ok(Observation::Simple(c, q))
            }
            Some(Kind::LParen) => {
                self.pos += 1;
                let inner = self.observations()?;
                self.expect(Kind::RParen, "')'")?;
                let q = self.qualifiers(false)?;
                Ok(Observation::Group(Box::new(inner), q))
            }
            _ => self.fail("'[' or '(' starting an observation expression"),
        }
    }

    fn qualifiers(&mut self, simple: bool) -> PResult<Vec<Qualifier>> {
        let mut q = Vec::new();
        loop {
            let at = self.at();
            let next = if self.eat_word("WITHIN") {
                let n = match self.peek_kind() {
                    Some(Kind::Int(i)) if *i > 0 => *i as f64,
                    Some(Kind::Float(x)) if *x > 0.0 => *x,
                    _ => return self.fail("a positive number of seconds after WITHIN"),
                };
                self.pos += 1;
                if !self.eat_word("SECONDS") {
                    return self.fail("'SECONDS'");
                }
                Qualifier::Within(n)
            } else if self.eat_word("REPEATS") {
                let n = match self.peek_kind() {
                    Some(Kind::Int(i)) if *i > 0 => *i,
                    _ => return self.fail("a positive integer after REPEATS"),
                };
                self.pos += 1;
                if !self.eat_word("TIMES") {
                    return self.fail("'TIMES'");
                }
                Qualifier::Repeats(n)
            } else if self.eat_word("START") {
                let a = self.timestamp("a timestamp t'…' after START")?;
                if !self.eat_word("STOP") {
                    return self.fail("'STOP'");
                }
                let b = self.timestamp("a timestamp t'…' after STOP")?;
                let (ta, tb) = (parse_timestamp(&a), parse_timestamp(&b));
                if ta.is_some() && tb.is_some() && tb <= ta {
                    return Err(PatternError {
                        offset: at,
                        message: format!("STOP t'{b}' must be later than START t'{a}'"),
                    });
                }
                Qualifier::StartStop(a, b)
            } else {
                return Ok(q);
            };
            if simple && q.iter().any(|x| std::mem::discriminant(x) == std::mem::discriminant(&next)) {
                let name = match next {
                    Qualifier::Within(_) => "WITHIN",
                    Qualifier::Repeats(_) => "REPEATS",
                    Qualifier::StartStop(..) => "START/STOP",
                };
                return Err(PatternError {
                    offset: at,
                    message: format!("duplicate {name} qualifier on one observation"),
                });
            }
            q.push(next);
        }
    }

    fn timestamp(&mut self, what: &str) -> PResult<String> {
        match self.peek_kind() {
            Some(Kind::Timestamp(t)) => {
                let t = t.clone();
                self.pos += 1;
                Ok(t)
            }
            _ => self.fail(what),
        }
    }

    fn comparison(&mut self) -> PResult<Comparison> {
        let mut v = vec![self.comparison_and()?];
        while self.eat_word("OR") {
            v.push(self.comparison_and()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Comparison::Or(v) })
    }

    fn comparison_and(&mut self) -> PResult<Comparison> {
        let mut v = vec![self.prop_test()?];
        while self.eat_word("AND") {
            v.push(self.prop_test()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Comparison::And(v) })
    }

    fn prop_test(&mut self) -> PResult<Comparison> {
        if self.peek_kind() == Some(&Kind::LParen) {
            self.pos += 1;
            let c = self.comparison()?;
            self.expect(Kind::RParen, "')'")?;
            return Ok(c);
        }
        if self.is_word("NOT") || self.is_word("EXISTS") {
            let negated = self.eat_word("NOT");
            if !self.eat_word("EXISTS") {
                return self.fail("'EXISTS'");
            }
            let path = self.object_path()?;
            return Ok(Comparison::Test(PropTest { path, negated, op: Op::Exists, value: None }));
        }
        let path = self.object_path()?;
        let negated = self.eat_word("NOT");
        let op = match self.peek_kind() {
            Some(Kind::Cmp(op)) => *op,
            Some(Kind::Word(w)) => match w.as_str() {
                "IN" => Op::In,
                "LIKE" => Op::Like,
                "MATCHES" => Op::Matches,
                "ISSUBSET" => Op::IsSubset,
                "ISSUPERSET" => Op::IsSuperset,
                _ => return self.fail("a comparison operator"),
            },
            _ => return self.fail("a comparison operator"),
        };
        self.pos += 1;
        let value = match op {
            Op::Eq | Op::Neq => self.literal(true)?,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => self.literal(false)?,
            Op::In => self.set()?,
            _ => match self.peek_kind() {
                Some(Kind::Str(s)) => {
                    let s = s.clone();
                    self.pos += 1;
                    Literal::Str(s)
                }
                _ => return self.fail("a quoted string"),
            },
        };
        Ok(Comparison::Test(PropTest { path, negated, op, value: Some(value) }))
    }

    fn literal(&mut self, allow_bool: bool) -> PResult<Literal> {
        let lit = match self.peek_kind() {
            Some(Kind::Int(i)) => Literal::Int(*i),
            Some(Kind::Float(x)) => Literal::Float(*x),
            Some(Kind::Str(s)) => Literal::Str(s.clone()),
            Some(Kind::Binary(s)) => Literal::Binary(s.clone()),
            Some(Kind::Hex(s)) => Literal::Hex(s.clone()),
            Some(Kind::Timestamp(s)) => Literal::Timestamp(s.clone()),
            Some(Kind::Word(w)) if allow_bool && (w == "true" || w == "false") => Literal::Bool(w == "true"),
            _ => return self.fail(if allow_bool { "a literal value" } else { "an orderable literal (not a boolean)" }),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn set(&mut self) -> PResult<Literal> {
        self.expect(Kind::LParen, "'(' starting a set")?;
        let mut v = Vec::new();
        if self.peek_kind() == Some(&Kind::RParen) {
            self.pos += 1;
            return Ok(Literal::Set(v));
        }
        loop {
            v.push(self.literal(true)?);
            match self.peek_kind() {
                Some(Kind::Comma) => self.pos += 1,
                Some(Kind::RParen) => {
                    self.pos += 1;
                    return Ok(Literal::Set(v));
                }
                _ => return self.fail("',' or ')' in a set"),
            }
        }
    }

    fn object_path(&mut self) -> PResult<ObjectPath> {
        let object_type = match self.peek_kind() {
            Some(Kind::Word(w)) if !KEYWORDS.contains(&w.as_str()) => w.clone(),
            _ => return self.fail("an object type such as ipv4-addr"),
        };
        self.pos += 1;
        self.expect(Kind::Colon, "':' after the object type")?;
        let mut steps = vec![self.path_name("a property name")?];
        loop {
            match self.peek_kind() {
                Some(Kind::Dot) => {
                    self.pos += 1;
                    steps.push(self.path_name("a property name after '.'")?);
                }
                Some(Kind::LBrack) => {
                    // An index step `[n]` or `[*]`; anything else ends the path.
                    let step = match self.toks.get(self.pos + 1).map(|t| &t.kind) {
                        Some(Kind::Star) => Step::AnyIndex,
                        Some(Kind::Int(i)) => Step::Index(*i),
                        _ => break,
                    };
                    if self.toks.get(self.pos + 2).map(|t| &t.kind) != Some(&Kind::RBrack) {
                        break;
                    }
                    self.pos += 3;
                    steps.push(step);
                }
                _ => break,
            }
        }
        Ok(ObjectPath { object_type, steps })
    }

    fn path_name(&mut self, what: &str) -> PResult<Step> {
        let s = match self.peek_kind() {
            Some(Kind::Word(w)) if !w.contains('-') && !KEYWORDS.contains(&w.as_str()) => w.clone(),
            Some(Kind::Str(s)) => s.clone(),
            _ => return self.fail(what),
        };
        self.pos += 1;
        Ok(Step::Prop(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pass and fail cases from stix2-patterns 2.1 (`stix2patterns/test/v21/test_validator.py` and
    // `spec_examples.txt`, BSD-3-Clause, OASIS), which is the validator stix2-validator uses.
    const SPEC: &str = include_str!("../../tests/data/pattern_spec_examples.txt");

    const PASS: &[&str] = &[
        "[file:size = 1280]",
        "[file:size != 1280]",
        "[file:size < 1024]",
        "[file:size <= 1024]",
        "[file:size > 1024]",
        "[file:size >= 1024]",
        "[file:file_name = 'my_file_name']",
        "[file:extended_properties.'ntfs-ext'.sid = '234']",
        r"[emailaddr:value MATCHES '.+\\@ibm\\.com$' OR file:name MATCHES '^Final Report.+\\.exe$']",
        "[ipv4addr:value ISSUBSET '192.168.0.1/24']",
        "[ipv4addr:value NOT ISSUBSET '192.168.0.1/24']",
        "[user-account:value = 'Peter'] AND [user-account:value != 'Paul'] AND [user-account:value = 'Mary'] WITHIN 5 SECONDS",
        "[file:file_system_properties.file_name LIKE 'name%']",
        "[file:file_name IN ('test.txt', 'test2.exe', 'README')]",
        "[file:size IN (1024, 2048, 4096)]",
        "[network-connection:extended_properties[0].source_payload MATCHES 'dGVzdHRlc3R0ZXN0']",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] WITHIN 5 SECONDS",
        "[x_whatever:detected == t'2018-03-22T12:11:14.1Z']",
        "[artifact:payload_bin = b'dGhpcyBpcyBhIHRlc3Q=']",
        "[foo:bar=1] REPEATS 9 TIMES",
        "[network-traffic:start = '2018-04-20T12:36:24.558Z']",
        "( [(network-traffic:dst_port IN(443,6443,8443) AND network-traffic:src_packets != 0) ])",
        "([win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar']) WITHIN 5 SECONDS WITHIN 6 SECONDS",
        "([win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] REPEATS 2 TIMES) REPEATS 2 TIMES",
        "[network-traffic:src_port = 37020 AND user-account:user_id = 'root'] START t'2016-06-01T01:30:00.123Z' STOP t'2016-06-01T02:20:00.123Z' OR [ipv4-addr:value = '192.168.122.83'] START t'2016-06-01T03:55:00.123Z' STOP t'2016-06-01T04:30:24.743Z'",
        "[file:hashes[*] = '8665c8d477534008b3058b72e2dae8ae']",
        "[x:created = t'2024-01-15T12:30:45.123456Z']",
        "[x:created = t'2024-02-29T12:00:00Z']",
        // Checked against stix2-patterns by hand.
        "[a:b = 'x\\'y']",
        "[a:b = +1]",
        "[a:b = -0]",
        "[a:b = .5]",
        "[a:'b' = 1]",
        "[a:b IN ()]",
        "[a:b NOT = 1]",
        "[NOT EXISTS a:b]",
        "[a-:b = 1]",
        "[a:b = 'x'] // comment",
        "[a:b = 1] /* c */",
        "[ a : b = 1 ]",
        "[a:b [0] = 1]",
        "[a:b = 1]WITHIN 5 SECONDS",
        "[a:b = 'é']",
        "[a:b = t'2020-01-01T00:00:60Z']",
        "[a:b < b'YQ==']",
        "[a:b IN (1, 'a', true)]",
    ];

    const FAIL: &[&str] = &[
        "file:size = 1280",
        "[file:size = ]",
        "[file:hashes.MD5 = cead3f77f6cda6ec00f57d76c9a6879f]",
        "[file.size = 1280]",
        "[file:name MATCHES /.*\\.dll/]",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] WITHIN ]",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] WITHIN 5 HOURS]",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] WITHIN -5 SECONDS]",
        "[network-traffic:dst_ref.value ISSUBSET ]",
        "[file:hashes.MD5 =? 'cead3f77f6cda6ec00f57d76c9a6879f']",
        "[x_whatever:detected == t'2457-73-22T32:81:84.1Z']",
        "[artifact:payload_bin = b'====']",
        "[foo:bar=1] within 2 seconds",
        "[file:hashes.'SHA-256' = 'f00']",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] WITHIN 5 SECONDS WITHIN 6 SECONDS",
        "([win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] REPEATS 2 TIMES REPEATS 3 TIMES)",
        "[win-registry-key:key = 'hkey_local_machine\\\\foo\\\\bar'] START t'2016-06-01T01:30:00.123Z' STOP t'2016-06-01T02:20:00.123Z' START t'2016-06-01T01:30:00.123Z' STOP t'2016-06-01T02:20:00.123Z'",
        "[x:created = t'2024-13-01T12:00:00Z']",
        "[x:created = t'2024-00-01T12:00:00Z']",
        "[x:created = t'2024-01-32T12:00:00Z']",
        "[x:created = t'2024-01-15T25:00:00Z']",
        "[x:created = t'2024-01-15T12:60:00Z']",
        "[x:created = t'2024-01-15T12:30:61Z']",
        "[x:created = t'2024-01-15T12:30:45']",
        "[x:created = t'not-a-timestamp']",
        "[x:created = t'2024/01/15T12:30:45Z']",
        // Checked against stix2-patterns by hand.
        "[a:b = 'x\\ny']",
        "[a:b = 1.]",
        "[a:b = 1e5]",
        "[a:b > true]",
        "[NOT a:b = 1]",
        "[a:b = h'abc']",
        "[a:b = b'YQ=']",
        "[-a:b = 1]",
        "[1a:b = 1]",
        "[a:b-c = 1]",
        "[]",
        "[a:b = 1] OR",
        "[a:b = 01]",
        "[ipv4-addr:value = '1.2.3.4'] LAST",
        "[a:b LIKE 1]",
        "[a:b=t'2020-01-01T00:00:00.Z']",
        "[a:b = 'x''y']",
        "[a:b.c-d = 1]",
        "[a:b='x'] AND NOT [c:d='y']",
        // Stricter than the grammar, as STIX 2.1 §9.6 requires.
        "[a:b = 1] WITHIN 0 SECONDS",
        "[a:b = 1] REPEATS 0 TIMES",
        "[a:b = 1] START t'2020-01-01T00:00:00Z' STOP t'2019-01-01T00:00:00Z'",
    ];

    #[test]
    fn spec_examples_parse() {
        for line in SPEC.lines().filter(|l| !l.trim().is_empty()) {
            Pattern::parse(line.trim()).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn pass_and_fail_cases_agree_with_stix2_patterns() {
        for p in PASS {
            Pattern::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        for p in FAIL {
            assert!(Pattern::parse(p).is_err(), "{p} should fail");
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = Pattern::parse("[file:size = ]").unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("expected a literal value"), "{e}");
        let e = Pattern::parse("[file:hashes.'SHA-256' = 'f00']").unwrap_err();
        assert!(e.message.contains("not a valid SHA-256 hash"), "{e}");
    }

    #[test]
    fn equalities_are_extracted() {
        let p = Pattern::parse(
            "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value != '10.0.0.1'] AND \
             [file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
        )
        .unwrap();
        let e = p.equalities();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].object_type.as_str(), e[0].path.as_str(), e[0].value.as_str()),
            ("ipv4-addr", "value", "198.51.100.1")
        );
        assert_eq!(e[1].path, "hashes.SHA-256");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = Pattern::parse(&s);
        }

        #[test]
        fn arbitrary_bracketed_never_panics(s in "\\[[a-z:=' .0-9\\[\\]*()-]{0,40}\\]( (AND|OR|WITHIN|REPEATS|START) .{0,20})?") {
            let _ = Pattern::parse(&s);
        }
    }
}
