//! Capture readers: pcap, pcapng, link layers, bug-report zips.

pub mod bugreport;
