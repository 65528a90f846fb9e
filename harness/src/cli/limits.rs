//! `--max-...` flags shared by the subcommands that read captures and
//! bug-report zips. Each limit bounds what one hostile input can cost; a
//! hit is a located `limit.*` finding and stops at most that connection,
//! direction or zip member.

use crate::capture::bugreport;
use crate::decode::MessageLimits;
use crate::flow::FlowConfig;
use crate::model::size::parse_size;

/// The reassembly limits, all that `tether flows` needs.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Limits (sizes: k, M, G decimal; KiB, MiB, GiB binary)")]
pub struct FlowLimitArgs {
    /// Out-of-order bytes held per connection direction before the hole in
    /// front of them is declared a gap (`limit.ooo_bytes`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "4MiB")]
    pub max_ooo_bytes: u64,
    /// Connections tracked at once; later ones are skipped (`limit.connections`).
    #[arg(long, value_name = "N", default_value_t = FlowConfig::default().max_connections)]
    pub max_connections: usize,
}

impl FlowLimitArgs {
    pub fn flow(&self) -> FlowConfig {
        FlowConfig {
            max_out_of_order_bytes: usize::try_from(self.max_ooo_bytes).unwrap_or(usize::MAX),
            max_connections: self.max_connections,
        }
    }
}

/// Every limit of decoding captures and bug-report zips.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Limits (sizes: k, M, G decimal; KiB, MiB, GiB binary)")]
pub struct LimitArgs {
    #[command(flatten)]
    pub flow: FlowLimitArgs,
    /// Largest SPICE message body a client may send (`limit.message_size`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "1MiB")]
    pub max_spice_client_message: u64,
    /// Largest SPICE message body a server may send (`limit.message_size`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "128MiB")]
    pub max_spice_server_message: u64,
    /// Largest WebSocket message, all its frames together (`limit.message_size`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "1GiB")]
    pub max_ws_message: u64,
    /// Largest bug-report zip read at all.
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64MiB")]
    pub max_zip_bytes: u64,
    /// Zip members looked at; the rest are ignored (`limit.zip_members`).
    #[arg(long, value_name = "N", default_value_t = bugreport::Limits::default().max_members)]
    pub max_zip_members: usize,
    /// Uncompressed bytes of one zip member (`limit.zip_uncompressed`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "48MiB")]
    pub max_zip_member_bytes: u64,
    /// Uncompressed bytes of all zip members together (`limit.zip_uncompressed`).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "96MiB")]
    pub max_zip_total_bytes: u64,
    /// Uncompressed / compressed size of a zip member over 1 MiB (`limit.zip_ratio`).
    #[arg(long, value_name = "N", default_value_t = bugreport::Limits::default().max_ratio)]
    pub max_zip_ratio: u64,
}

impl LimitArgs {
    pub fn flow(&self) -> FlowConfig {
        self.flow.flow()
    }

    pub fn messages(&self) -> MessageLimits {
        MessageLimits {
            spice_client_body: u32::try_from(self.max_spice_client_message).unwrap_or(u32::MAX),
            spice_server_body: u32::try_from(self.max_spice_server_message).unwrap_or(u32::MAX),
            ws_message: self.max_ws_message,
        }
    }

    pub fn zip(&self) -> bugreport::Limits {
        bugreport::Limits {
            max_zip_bytes: self.max_zip_bytes,
            max_members: self.max_zip_members,
            max_member_bytes: self.max_zip_member_bytes,
            max_total_bytes: self.max_zip_total_bytes,
            max_ratio: self.max_zip_ratio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }

    /// The defaults are written for people (`4MiB`) in the help; parsed,
    /// they are the library's own defaults, so the two cannot drift.
    #[test]
    fn help_defaults_are_the_library_defaults() {
        let a = Cli::parse_from(["t"]).limits;
        assert_eq!(a.flow(), FlowConfig::default());
        assert_eq!(a.messages(), MessageLimits::default());
        assert_eq!(a.zip(), bugreport::Limits::default());
    }
}
