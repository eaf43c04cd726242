//! Entry point of the `periodic` binary: parse arguments, run the command, exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    periodic::cli::run()
}
