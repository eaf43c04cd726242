//! Command-line arguments (clap) and dispatch. Exit codes: 0 ok, 1 a failure threshold
//! was exceeded, 2 usage, configuration or I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

/// Exit code when a `--fail-on` or `[fail]` threshold is exceeded.
pub const EXIT_THRESHOLD: u8 = 1;
/// Exit code for usage, configuration and I/O errors.
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(name = "periodic", version = env!("PERIODIC_LONG_VERSION"), about = "Finds where the same or nearly the same code already exists.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan a folder (or file) for duplicated code and report it.
    Scan(ScanArgs),
    /// Show the units most similar to the function at FILE:LINE.
    Similar(SimilarArgs),
    /// List the codebase's patterns (clusters of similar code), largest first.
    Patterns(PatternsArgs),
    /// Run the language server on standard input and output (for editors).
    Lsp(LspArgs),
    /// Run the MCP server on standard input and output (for coding agents).
    Mcp(McpArgs),
    /// Print a shell completion script (e.g. `periodic completions bash > ~/.local/share/bash-completion/completions/periodic`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff; e.g. `periodic man > periodic.1; man ./periodic.1`).
    Man,
    /// Show duplication along the git history, one point per commit (nothing is checked out).
    Trend(TrendArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TrendFormat {
    Text,
    Json,
    Csv,
    Html,
}

#[derive(Args, Debug)]
pub struct TrendArgs {
    /// A folder inside a git repository: its history is measured (that folder only).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Oldest commit to measure: a revision, or a date (2024-05-01, "3 months ago").
    #[arg(long, value_name = "DATE|REV")]
    pub since: Option<String>,
    /// Newest commit to measure [default: the tip of --branch].
    #[arg(long, value_name = "REV")]
    pub until: Option<String>,
    /// Most points, the newest.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub commits: u32,
    /// One point every N commits, counted from the newest.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub every: u32,
    /// The history to follow (first parents of this revision) [default: HEAD].
    #[arg(long, value_name = "REV")]
    pub branch: Option<String>,
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: TrendFormat,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress bar on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub detection: DetectionArgs,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// The folder to answer about [default: the current folder].
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LspArgs {
    /// Accepted for editors that pass it; standard input/output is the only transport.
    #[arg(long)]
    pub stdio: bool,
}

/// Output of `similar` and `patterns`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Html,
}

/// Settings shared by every command that scans.
#[derive(Args, Debug, Clone, Default)]
pub struct DetectionArgs {
    /// Minimum lines of a clone instance [default: 6].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_lines: Option<u32>,
    /// Minimum tokens of a clone instance [default: 50].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_tokens: Option<u32>,
    /// Near-miss (Type-3) preset in (0, 1], higher is stricter: a pair's token similarity must be at least this minus 0.225 and the verifier must accept its evidence [default: 0.7].
    #[arg(long, value_name = "F", value_parser = parse_similarity)]
    pub similarity: Option<f64>,
    /// Configuration file to use instead of `<root>/.periodic.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Scan without reading or writing `.periodic/index.db`.
    #[arg(long)]
    pub no_index: bool,
    /// Neither ask the team edge for analyses of files it has seen nor offer it this
    /// scan's (on by default when an edge is configured; see docs/edge.md).
    #[arg(long)]
    pub no_team_cache: bool,
    /// Read no .gitignore, .ignore, .git/info/exclude or global git excludes (`exclude` and
    /// .periodicignore still apply) [config: `no_ignore = true`].
    #[arg(long)]
    pub no_ignore: bool,
    /// Worker threads [default: number of cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Folder or file to scan.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with 1 when duplication exceeds PERCENT% of lines, or when more than COUNT clone pairs are found.
    #[arg(long, value_name = "PERCENT%|COUNT", value_parser = parse_fail_on)]
    pub fail_on: Option<FailOn>,
    /// An earlier JSON report: clones already in it do not count for --fail-on.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// No progress bar and no summary on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub detection: DetectionArgs,
    #[command(flatten)]
    pub edge: EdgePushArgs,
}

/// `scan --edge`: push the repository's units to a team edge server after the scan.
#[derive(Args, Debug, Clone, Default)]
pub struct EdgePushArgs {
    /// After the scan, push every unit to this team edge server (e.g. https://edge.example.com:7700).
    #[arg(long = "edge", value_name = "URL")]
    pub url: Option<String>,
    /// File holding the edge token [default: $PERIODIC_EDGE_TOKEN, else `[edge].token_file`].
    #[arg(long = "edge-token-file", value_name = "FILE", requires = "url")]
    pub token_file: Option<PathBuf>,
    /// What the edge receives [default: `[edge].share` when it is not `off`, else locations].
    #[arg(long = "edge-share", value_enum, requires = "url")]
    pub share: Option<EdgeShare>,
    /// Repository name on the edge [default: `[edge].repo`, else the folder's name].
    #[arg(long = "edge-repo", value_name = "NAME", requires = "url")]
    pub repo: Option<String>,
    /// Give up when the edge acknowledges nothing for this long; what is left stays queued.
    #[arg(long = "edge-timeout", value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_seconds: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum EdgeShare {
    /// Fingerprints plus path, name and line range of each unit.
    Locations,
    /// Fingerprints and metrics only.
    Fingerprints,
}

#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// FILE:LINE of a line inside the function to compare.
    pub location: String,
    /// Scan root [default: the nearest folder above FILE with .periodic.toml, .periodic/ or .git, else the current folder].
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// How many similar units to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: ListFormat,
    #[command(flatten)]
    pub detection: DetectionArgs,
}

#[derive(Args, Debug)]
pub struct PatternsArgs {
    /// Folder to scan.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// How many patterns to show.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: ListFormat,
    #[command(flatten)]
    pub detection: DetectionArgs,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FailOn {
    Percent(f64),
    Count(u64),
}

fn parse_fail_on(text: &str) -> Result<FailOn, String> {
    let trimmed = text.trim();
    if let Some(number) = trimmed.strip_suffix('%') {
        let percent: f64 = number.trim().parse().map_err(|_| format!("`{text}`: expected a percentage like 5% or a count like 10"))?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!("`{text}`: a percentage must be between 0% and 100%"));
        }
        return Ok(FailOn::Percent(percent));
    }
    trimmed.parse::<u64>().map(FailOn::Count).map_err(|_| format!("`{text}`: expected a percentage like 5% or a count like 10"))
}

fn parse_similarity(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if value <= 0.0 || value > 1.0 {
        return Err(format!("`{text}`: similarity must be in (0, 1]"));
    }
    Ok(value)
}

/// Parses arguments, runs the command and maps its outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    init_logging();
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(args),
        Command::Similar(args) => commands::similar::run(args),
        Command::Patterns(args) => commands::patterns::run(args),
        Command::Lsp(_) => crate::server::run().map(|()| 0),
        Command::Mcp(args) => crate::mcp::run(args.root).map(|()| 0),
        Command::Completions(args) => commands::manual::completions(args.shell).map(|()| 0),
        Command::Man => commands::manual::man().map(|()| 0),
        Command::Trend(args) => commands::trend::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("periodic: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Logs go to standard error; the level comes from `PERIODIC_LOG` (e.g. `debug`). Colours
/// only on a terminal: an editor's log panel or a CI log shows escape codes as text.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PERIODIC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::stderr().is_terminal();
    // `log_internal_errors(false)`: a log line that cannot be written (the editor closed our
    // stderr) is dropped; by default the subscriber would report it with `eprintln!`, which
    // panics when stderr is what fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .log_internal_errors(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_reads_percentages_and_counts() {
        assert_eq!(parse_fail_on("5%"), Ok(FailOn::Percent(5.0)));
        assert_eq!(parse_fail_on("12"), Ok(FailOn::Count(12)));
        assert!(parse_fail_on("lots").is_err());
        assert!(parse_fail_on("150%").is_err());
    }

    #[test]
    fn similarity_must_be_a_fraction() {
        assert_eq!(parse_similarity("0.8"), Ok(0.8));
        assert!(parse_similarity("0").is_err());
        assert!(parse_similarity("1.5").is_err());
    }
}
