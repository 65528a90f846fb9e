//! Unit tests of the RFB decoder on constructed byte streams.
