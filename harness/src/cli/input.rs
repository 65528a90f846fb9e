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
