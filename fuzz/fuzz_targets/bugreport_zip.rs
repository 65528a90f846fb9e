//! Any bytes as a ryll bug-report zip: a located error or the members it
//! could read, never a panic, and never more memory than the limits allow.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use tether::capture::bugreport::{Limits, read_bugreport};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_zip_bytes: 1 << 20,
        max_members: 16,
        max_member_bytes: 4 << 20,
        max_total_bytes: 8 << 20,
        max_ratio: 100,
    };
    let _ = read_bugreport(Cursor::new(data), "fuzz.zip", limits);
});
