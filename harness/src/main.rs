use std::process::ExitCode;

fn main() -> ExitCode {
    tether::cli::main()
}
