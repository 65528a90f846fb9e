//! Opening the inputs subcommands name: a file, or `-` for stdin.

use std::fs::File;
use std::io::{self, BufReader, Read};

pub fn open(path: &str) -> io::Result<Box<dyn Read>> {
    if path == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(path)?,
        )))
    }
}

/// Name used in diagnostics.
pub fn display_name(path: &str) -> &str {
    if path == "-" { "<stdin>" } else { path }
}

/// Expands directories into the captures under them (sorted, recursive),
/// so `tether flows corpora/` reads the whole corpus.
pub fn expand(paths: &[String]) -> Vec<String> {
    expand_inputs(paths, false)
}

/// Like [`expand`], and bug-report zips in directories too.
pub fn expand_with_zips(paths: &[String]) -> Vec<String> {
    expand_inputs(paths, true)
}

fn expand_inputs(paths: &[String], zips: bool) -> Vec<String> {
    fn walk(dir: &std::path::Path, zips: bool, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let ext = p.extension().and_then(|x| x.to_str());
            if p.is_dir() {
                walk(&p, zips, out);
            } else if matches!(ext, Some("pcap" | "pcapng" | "cap")) || (zips && ext == Some("zip"))
            {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let path = std::path::Path::new(p);
        if p != "-" && path.is_dir() {
            walk(path, zips, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// A ryll bug-report zip, by its first bytes (stdin is never a zip here:
/// the zip reader needs the whole file).
pub fn is_zip(path: &str) -> bool {
    if path == "-" {
        return false;
    }
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| crate::capture::bugreport::looks_like_zip(&magic))
}
