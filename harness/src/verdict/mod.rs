//! Verdict types and renderers.
