//! Opening inputs: expand directories, sniff gzip/zstd by magic and decompress transparently,
//! and identify an input by its first bytes so a re-run can tell it has seen it before.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Compression detected from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Expand files and directories (recursively, sorted by path, hidden entries skipped) into the
/// list of files to read. A path that does not exist is an error for that path only.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Error>) {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        walk(p, &mut out, &mut errs);
    }
    (out, errs)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>, errs: &mut Vec<Error>) {
    let io_err = |e| Error::Io { path: p.display().to_string(), source: e };
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(p) {
            Ok(rd) => {
                let mut entries: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|e| !e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                    .collect();
                entries.sort();
                for e in entries {
                    walk(&e, out, errs);
                }
            }
            Err(e) => errs.push(io_err(e)),
        },
        Ok(_) => out.push(p.to_path_buf()),
        Err(e) => errs.push(io_err(e)),
    }
}

/// An opened input: a decompressing reader plus what we learned while opening it.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub compression: Compression,
    /// Size of the file on disk (compressed size when compressed).
    pub file_len: u64,
}

/// Open a file, decompressing gzip or zstd when the magic says so.
pub fn open(path: &Path) -> Result<Opened> {
    let io_err = |e| Error::Io { path: path.display().to_string(), source: e };
    let mut f = File::open(path).map_err(io_err)?;
    let file_len = f.metadata().map_err(io_err)?.len();
    let mut head = [0u8; 4];
    let n = read_up_to(&mut f, &mut head).map_err(io_err)?;
    let compression = Compression::sniff(&head[..n]);
    let f = io::Cursor::new(head[..n].to_vec()).chain(f);
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f).map_err(io_err)?),
    };
    Ok(Opened { reader, compression, file_len })
}

/// Read until `buf` is full or EOF; returns bytes read.
pub fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// How many leading (decompressed) bytes identify an input. A file that grows keeps its identity,
/// so an interrupted or appended capture resumes instead of being read twice.
pub const IDENTITY_PREFIX: usize = 64 * 1024;

/// Identity of an input: BLAKE3 of its first [`IDENTITY_PREFIX`] decompressed bytes, hex.
/// Two files with the same prefix are the same input, whatever their names.
pub fn identity(path: &Path) -> Result<String> {
    Ok(identity_of_prefix(path, IDENTITY_PREFIX)?.0)
}

/// BLAKE3 (hex) of the first `len` decompressed bytes of an input, and how many there were
/// (fewer when the input is shorter). A file shorter than [`IDENTITY_PREFIX`] that grows can be
/// recognised by hashing its first `n` bytes again.
pub fn identity_of_prefix(path: &Path, len: usize) -> Result<(String, usize)> {
    let mut o = open(path)?;
    let mut buf = vec![0u8; len];
    let n =
        read_up_to(&mut o.reader, &mut buf).map_err(|e| Error::Io { path: path.display().to_string(), source: e })?;
    Ok((blake3::hash(&buf[..n]).to_hex().to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_zstd_are_transparent() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let plain = dir.path().join("a.bin");
        std::fs::write(&plain, &data).unwrap();
        let gz = dir.path().join("a.bin.gz");
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap();
        let zs = dir.path().join("a.bin.zst");
        std::fs::write(&zs, zstd::encode_all(&data[..], 1).unwrap()).unwrap();
        for (p, c) in [(&plain, Compression::None), (&gz, Compression::Gzip), (&zs, Compression::Zstd)] {
            let mut o = open(p).unwrap();
            assert_eq!(o.compression, c);
            let mut got = Vec::new();
            o.reader.read_to_end(&mut got).unwrap();
            assert_eq!(got, data);
        }
        assert_eq!(identity(&plain).unwrap(), identity(&zs).unwrap());
        let (files, errs) = expand_paths(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        assert_eq!(files.len(), 3);
        assert_eq!(errs.len(), 1);
    }
}
