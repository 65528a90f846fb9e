//! Any bytes through the whole decode pipeline, one thread and several:
//! never a panic, and the same report either way.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tether::decode::pipeline::{DecodeOptions, decode_capture_parallel};

fuzz_target!(|data: &[u8]| {
    let options = DecodeOptions {
        keep_events: true,
        ..DecodeOptions::default()
    };
    let one = decode_capture_parallel(data, "fuzz", options.clone(), 1).map(|r| format!("{r:?}"));
    let two = decode_capture_parallel(data, "fuzz", options, 2).map(|r| format!("{r:?}"));
    match (one, two) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("one thread and two disagree on whether the file is readable"),
    }
});
