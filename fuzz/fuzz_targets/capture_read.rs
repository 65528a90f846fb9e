//! Any bytes as a capture: reading every record and link layer never
//! panics, and every diagnostic is located.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tether::capture::{Frame, Segments};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut s) = Segments::new(data, "fuzz") {
        let mut n = 0u64;
        while let Some(f) = s.next_frame() {
            if let Frame::Tcp(seg) = f {
                n += seg.payload.len() as u64;
            }
        }
        assert!(n <= data.len() as u64);
        for d in &s.diagnostics {
            assert!(d.location.frame.is_some());
        }
    }
});
