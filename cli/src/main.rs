//! `anteroom`, the operator's command line. One subcommand per family, each in its own module
//! of the library (`anteroom_cli::plan`, ...); this file only parses and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "anteroom", version, about = "Operate Anteroom waiting rooms")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan a sale from a traffic profile and the downstream's limits; optionally create the
    /// queue (--apply) or rehearse the plan against a running stack (--rehearse).
    Plan(anteroom_cli::plan::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => anteroom_cli::plan::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
