//! `--keylog FILE`: TLS secrets for `decode` and `triage`.

use crate::decode::tls::keylog::{KeyLog, KeyStore};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Clone, Debug)]
pub struct KeyArgs {
    /// TLS secrets to decrypt with: an NSS key log (SSLKEYLOGFILE, as
    /// Chromium, Firefox, curl and Python write it). A pcapng's Decryption
    /// Secrets Blocks are read without it.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
}

impl KeyArgs {
    /// The key log, its bad lines said on stderr (and skipped); an
    /// unreadable file is an error naming the flag.
    pub fn load(&self) -> Result<Option<KeyLog>, String> {
        let Some(path) = &self.keylog else {
            return Ok(None);
        };
        let text = std::fs::read(path).map_err(|e| format!("--keylog {}: {e}", path.display()))?;
        let mut findings = Vec::new();
        let log = KeyLog::parse(&text, &path.display().to_string(), &mut findings);
        for f in &findings {
            eprintln!("warning: --keylog {}", f.message);
        }
        if log.is_empty() {
            return Err(format!(
                "--keylog {}: no TLS secrets in it (expected lines such as CLIENT_RANDOM <hex> <hex>)",
                path.display()
            ));
        }
        Ok(Some(log))
    }
}

/// A store of its own for one input, so one capture's Decryption Secrets
/// Blocks do not serve another.
pub fn store(log: &Option<KeyLog>) -> Option<Arc<KeyStore>> {
    log.clone().map(|l| Arc::new(KeyStore::new(l)))
}
