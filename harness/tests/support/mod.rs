//! Helpers shared by integration tests (each test file that needs them
//! says `mod support;`).

use std::path::{Path, PathBuf};

/// Every file under `rel` (from the repository root) whose extension is
/// one of `exts`, sorted.
#[allow(dead_code)]
pub fn files_under(rel: &str, exts: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, exts, out);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x))
            {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel),
        exts,
        &mut v,
    );
    v.sort();
    v
}

/// Every capture and zip under `corpora/` (public, recorded, lab, bug
/// reports, hostile), sorted.
#[allow(dead_code)]
pub fn corpus_files() -> Vec<PathBuf> {
    files_under("corpora", &["pcap", "pcapng", "zip"])
}

/// Inside a proptest: every strict prefix of `bytes` makes `parse` ask for
/// more (nom's `Incomplete`), never an error or a value.
#[allow(unused_macros)]
macro_rules! all_prefixes_incomplete {
    ($parse:expr, $bytes:expr) => {{
        let bytes: &[u8] = $bytes;
        for k in 0..bytes.len() {
            let r = $parse(&bytes[..k]);
            prop_assert!(
                matches!(r, Err(nom::Err::Incomplete(_))),
                "prefix {k} of {}: {r:?}",
                bytes.len()
            );
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use all_prefixes_incomplete;
