//! Secrets kept outside the database and the primitives every credential check uses: key files
//! (32 random bytes, mode 0600, created on first use), randomness, SHA-256 and constant-time
//! comparison.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// A 32-byte secret read from a file, created (mode 0600) when missing. Webhook signing secrets and
/// TAXII paging cursors are derived from such keys, so that no secret of theirs is in the database.
#[derive(Clone)]
pub struct KeyFile([u8; 32]);

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFile(…)")
    }
}

impl KeyFile {
    /// Read the key at `path`, creating it on first use. Two processes racing to create it end up
    /// with the same key (the loser reads the winner's file).
    pub fn load_or_create(path: &Path) -> Result<KeyFile> {
        let io = |e: std::io::Error| Error::Invalid(format!("key file {}: {e}", path.display()));
        match std::fs::read(path) {
            Ok(b) => {
                let k: [u8; 32] = b.as_slice().try_into().map_err(|_| {
                    Error::Invalid(format!("key file {}: expected 32 bytes, found {}", path.display(), b.len()))
                })?;
                Ok(KeyFile(k))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = random_bytes::<32>()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(path) {
                    Ok(mut f) => {
                        f.write_all(&k).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        Ok(KeyFile(k))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => KeyFile::load_or_create(path),
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key for tests and in-memory servers, never written anywhere.
    pub fn ephemeral() -> Result<KeyFile> {
        Ok(KeyFile(random_bytes::<32>()?))
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// `N` bytes from the operating system's randomness.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Invalid(format!("no randomness from the operating system: {e}")))?;
    Ok(b)
}

pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// Equality that takes the same time wherever the inputs differ (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_persists_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/x.key");
        let a = KeyFile::load_or_create(&p).unwrap();
        let b = KeyFile::load_or_create(&p).unwrap();
        assert_eq!(a.mac(b"m"), b.mac(b"m"));
        assert_ne!(a.mac(b"m"), KeyFile::ephemeral().unwrap().mac(b"m"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&p, b"short").unwrap();
        assert!(KeyFile::load_or_create(&p).is_err());
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
