//! Criterion benches for tether live in `benches/`.
