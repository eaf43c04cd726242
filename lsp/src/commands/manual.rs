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

/// Writes the manual page `periodic.1` to standard output: the command's options, then each
/// subcommand's synopsis, description and options in a section of its own. One page holds
/// them all (no `periodic-scan(1)` pages are installed for a list of them to point to).
pub fn man() -> anyhow::Result<()> {
    let command = Cli::command();
    let mut page = Vec::new();
    let main = clap_mangen::Man::new(command.clone());
    main.render_title(&mut page).context("rendering the manual page")?;
    main.render_name_section(&mut page).context("rendering the manual page")?;
    main.render_synopsis_section(&mut page).context("rendering the manual page")?;
    main.render_description_section(&mut page).context("rendering the manual page")?;
    main.render_options_section(&mut page).context("rendering the manual page")?;
    for subcommand in command.get_subcommands().filter(|subcommand| !subcommand.is_hide_set()) {
        page.extend_from_slice(subcommand_section(subcommand)?.as_bytes());
    }
    main.render_version_section(&mut page).context("rendering the manual page")?;
    write_stdout(&String::from_utf8(page).context("the manual page is not UTF-8")?)
}

/// One subcommand's part of the page: a section named after it whose parts (synopsis,
/// description, options, its own subcommands) are subsections.
fn subcommand_section(subcommand: &clap::Command) -> anyhow::Result<String> {
    let invoked = format!("periodic {}", subcommand.get_name());
    let man = clap_mangen::Man::new(subcommand.clone().bin_name(invoked.clone()));
    let mut part = Vec::new();
    man.render_synopsis_section(&mut part).context("rendering the manual page")?;
    man.render_description_section(&mut part).context("rendering the manual page")?;
    man.render_options_section(&mut part).context("rendering the manual page")?;
    let part = String::from_utf8(part).context("the manual page is not UTF-8")?;
    let mut section = format!(".SH \"{}\"\n", invoked.to_uppercase());
    for line in part.lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => section.push_str(&format!(".SS {}\n", heading.trim_matches('"'))),
            None => {
                section.push_str(line);
                section.push('\n');
            }
        }
    }
    let nested: Vec<&str> = subcommand.get_subcommands().filter(|nested| !nested.is_hide_set()).map(|nested| nested.get_name()).collect();
    if !nested.is_empty() {
        section.push_str(&format!(".SS Subcommands\n{}: see `{invoked} SUBCOMMAND --help`.\n", nested.join(", ")));
    }
    Ok(section)
}
