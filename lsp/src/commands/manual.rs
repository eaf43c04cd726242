//! `periodic completions SHELL` and `periodic man`: a shell completion script and a roff
//! manual page, both generated from the same clap definitions as the argument parser, so
//! they never disagree with what the binary accepts.

use anyhow::Context;
use clap::CommandFactory;

use super::write_stdout;
use crate::cli::Cli;

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "periodic", &mut script);
    write_stdout(&String::from_utf8(script).context("the completion script is not UTF-8")?)
}

/// Writes the manual page `periodic.1` (options and the list of subcommands) to standard output.
pub fn man() -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page).context("rendering the manual page")?;
    write_stdout(&String::from_utf8(page).context("the manual page is not UTF-8")?)
}
