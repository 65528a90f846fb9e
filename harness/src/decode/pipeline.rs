//! Runs flows through sniffing and the protocol decoders.
