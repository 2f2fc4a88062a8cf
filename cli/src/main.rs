//! `anteroom`, the operator's command line. One subcommand per family, each in its own module
//! of the library (`anteroom_cli::plan`, ...); this file only parses and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "anteroom",
    version,
    about = "Operate Anteroom waiting rooms",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan a sale from a traffic profile and the downstream's limits; optionally create the
    /// queue (--apply) or rehearse the plan against a running stack (--rehearse).
    Plan(anteroom_cli::plan::Args),
    /// Create, list, show, update or delete queues.
    Queue(anteroom_cli::queue::Args),
    /// Admit nobody until resumed (people waiting keep their places).
    #[command(after_help = "Examples:\n  anteroom pause concert")]
    Pause(anteroom_cli::switch::Args),
    /// Admit again after a pause.
    #[command(after_help = "Examples:\n  anteroom resume concert")]
    Resume(anteroom_cli::switch::Args),
    /// No new places or sessions; running sessions finish (the end of a sale).
    #[command(after_help = "Examples:\n  anteroom drain concert")]
    Drain(anteroom_cli::switch::Args),
    /// Take visitors now: out of drain or pause, mode closed or a scheduled opening.
    #[command(after_help = "Examples:\n  anteroom open concert")]
    Open(anteroom_cli::switch::Args),
    /// Admit at a fixed rate per second.
    Rate(anteroom_cli::rate::Args),
    /// Admit the next N places now.
    Advance(anteroom_cli::advance::Args),
    /// Show, set or clear the message to the people waiting.
    Message(anteroom_cli::message::Args),
    /// Named admin keys and the signing key's rotation.
    Keys(anteroom_cli::keys::Args),
    /// Read the audit log.
    Audit(anteroom_cli::audit::Args),
    /// Write a queue's post-sale report (HTML or JSON).
    Report(anteroom_cli::report::Args),
    /// A live view of a queue, refreshed every second.
    Watch(anteroom_cli::watch::Args),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  anteroom completions bash > /etc/bash_completion.d/anteroom\n  anteroom completions zsh > \"${fpath[1]}/_anteroom\""
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

const AFTER_HELP: &str = "\
Where: --admin-url or ANTEROOM_ADMIN_URL (default http://127.0.0.1:8081), the coordinator's
private listener; the key: --admin-key or ANTEROOM_ADMIN_KEY (an operator key). Every read
takes --json for the API's own answer.

Examples:
  export ANTEROOM_ADMIN_URL=http://127.0.0.1:8081 ANTEROOM_ADMIN_KEY=...
  anteroom queue list
  anteroom watch demo
  anteroom message demo --en 'Doors open at 8' --zh '八点开门'
  anteroom rate demo 50 && anteroom audit --queue demo --since 1h

Exit codes:
  0  done
  1  failed (unexpected answer, a file not written)
  2  usage (a flag or argument is wrong, or the key is missing)
  3  unauthorized (a wrong key, or a key not allowed this)
  4  not found (no such queue, key or webhook)
  5  refused (the API refused the change: invalid input, a conflict)
  6  unavailable (the coordinator did not answer, or answered 5xx)";

/// Runs an operator command on a runtime of its own.
fn ops(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(f)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    use anteroom_cli::switch::Switch;
    let result = match cli.command {
        Command::Plan(args) => anteroom_cli::plan::run(args),
        Command::Queue(args) => ops(anteroom_cli::queue::run(args)),
        Command::Pause(args) => ops(anteroom_cli::switch::run(Switch::Pause, args)),
        Command::Resume(args) => ops(anteroom_cli::switch::run(Switch::Resume, args)),
        Command::Drain(args) => ops(anteroom_cli::switch::run(Switch::Drain, args)),
        Command::Open(args) => ops(anteroom_cli::switch::run(Switch::Open, args)),
        Command::Rate(args) => ops(anteroom_cli::rate::run(args)),
        Command::Advance(args) => ops(anteroom_cli::advance::run(args)),
        Command::Message(args) => ops(anteroom_cli::message::run(args)),
        Command::Keys(args) => ops(anteroom_cli::keys::run(args)),
        Command::Audit(args) => ops(anteroom_cli::audit::run(args)),
        Command::Report(args) => ops(anteroom_cli::report::run(args)),
        Command::Watch(args) => ops(anteroom_cli::watch::run(args)),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "anteroom", &mut std::io::stdout());
            Ok(())
        }
    };
    anteroom_cli::exit::report(result)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_help_lists_the_exit_codes_the_code_uses() {
        assert!(super::AFTER_HELP.ends_with(anteroom_cli::exit::HELP));
    }
}
