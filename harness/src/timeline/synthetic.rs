//! Synthetic timelines in TOML (placeholder; issue 6 fills it in).
