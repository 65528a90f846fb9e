//! Opening the inputs subcommands name: a file, or `-` for stdin. Inputs
//! are recognised by their first bytes, so tcpdump's rotated `dump.pcap1`,
//! `.PCAP` or extensionless captures are read, and gzip'd captures are
//! decompressed as they stream.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// What an input is, by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pcap,
    Pcapng,
    Gzip,
    Zip,
}

/// Recognises a capture, a gzip stream or a zip by its magic number
/// (pcap: the four byte orders and nanosecond variants of 0xa1b2c3d4;
/// pcapng: the Section Header Block type 0x0a0d0d0a; gzip: 1f 8b, RFC 1952
/// §2.3.1; zip: a local file header or an empty archive's end record).
pub fn sniff(prefix: &[u8]) -> Option<Kind> {
    const PCAP: [[u8; 4]; 4] = [
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x4d, 0x3c, 0xb2, 0xa1],
    ];
    let head = prefix.get(..4)?;
    if PCAP.iter().any(|m| m == head) {
        Some(Kind::Pcap)
    } else if head == [0x0a, 0x0d, 0x0d, 0x0a] {
        Some(Kind::Pcapng)
    } else if head[..2] == [0x1f, 0x8b] {
        Some(Kind::Gzip)
    } else if crate::capture::bugreport::looks_like_zip(head) {
        Some(Kind::Zip)
    } else {
        None
    }
}

fn sniff_file(path: &Path) -> Option<Kind> {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .ok()
        .and_then(|_| sniff(&magic))
}

/// Opens a capture; a gzip'd one is decompressed as it is read (members
/// concatenated, as `gzip -c a b >c` writes them).
pub fn open(path: &str) -> io::Result<Box<dyn Read>> {
    let mut r: Box<dyn BufRead> = if path == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin().lock()))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, File::open(path)?))
    };
    let gzip = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(r),
        )))
    } else {
        Ok(r)
    }
}

/// Name used in diagnostics.
pub fn display_name(path: &str) -> &str {
    if path == "-" { "<stdin>" } else { path }
}

/// Expands directories into the captures under them (sorted, recursive),
/// so `tether flows corpora/` reads the whole corpus. Named files are kept
/// as given (a bad one is then reported, not skipped); finding nothing is
/// an error that says where it looked and what it takes.
pub fn expand(paths: &[String]) -> Result<Vec<String>, String> {
    expand_inputs(paths, false)
}

/// Like [`expand`], and bug-report zips in directories too.
pub fn expand_with_zips(paths: &[String]) -> Result<Vec<String>, String> {
    expand_inputs(paths, true)
}

/// A file in a directory is an input when its first bytes say so, or when
/// its name says so (any case): a `.pcap` that is not one is reported as
/// unreadable rather than skipped.
fn wanted(path: &Path, zips: bool) -> bool {
    let ext = path
        .extension()
        .and_then(|x| x.to_str())
        .map(str::to_ascii_lowercase);
    let by_name = matches!(ext.as_deref(), Some("pcap" | "pcapng" | "cap"))
        || (zips && ext.as_deref() == Some("zip"));
    by_name
        || match sniff_file(path) {
            Some(Kind::Zip) => zips,
            Some(_) => true,
            None => false,
        }
}

fn expand_inputs(paths: &[String], zips: bool) -> Result<Vec<String>, String> {
    fn walk(dir: &Path, zips: bool, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, zips, out);
            } else if wanted(&p, zips) {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    let mut empty_dirs = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if p != "-" && path.is_dir() {
            let before = out.len();
            walk(path, zips, &mut out);
            if out.len() == before {
                empty_dirs.push(p.as_str());
            }
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no input found in {}: looked for pcap and pcapng captures (gzip'd too){} by their first bytes, whatever their names, in every subdirectory",
            empty_dirs.join(", "),
            if zips { " and bug-report zips" } else { "" }
        ));
    }
    for d in empty_dirs {
        eprintln!("warning: no input found in {d}");
    }
    Ok(out)
}

/// A bug-report zip, by its first bytes (stdin is never a zip here:
/// the zip reader needs the whole file).
pub fn is_zip(path: &str) -> bool {
    path != "-" && sniff_file(Path::new(path)) == Some(Kind::Zip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), Some(Kind::Pcap));
        assert_eq!(sniff(&[0x4d, 0x3c, 0xb2, 0xa1]), Some(Kind::Pcap));
        assert_eq!(sniff(&[0x0a, 0x0d, 0x0d, 0x0a]), Some(Kind::Pcapng));
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Kind::Gzip));
        assert_eq!(sniff(b"PK\x03\x04"), Some(Kind::Zip));
        assert_eq!(sniff(b"# no"), None);
        assert_eq!(sniff(&[0xd4, 0xc3]), None);
    }
}
