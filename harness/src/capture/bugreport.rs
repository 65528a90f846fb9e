//! ryll bug-report zips (placeholder; issue 5 fills it in).
