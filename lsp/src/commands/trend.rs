//! `periodic trend`: measure the history, render it, write it.

use std::io::IsTerminal;

use anyhow::Context;

use crate::cli::{TrendArgs, TrendFormat};
use crate::trend::{self, TrendOptions, render};

pub fn run(args: TrendArgs) -> anyhow::Result<u8> {
    if !args.path.is_dir() {
        anyhow::bail!("{}: no such folder", args.path.display());
    }
    let config = super::load_config(&args.path, &args.detection)?;
    let options = TrendOptions {
        path: args.path.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        branch: args.branch.clone(),
        commits: args.commits as usize,
        every: args.every as usize,
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(jobs) = args.detection.jobs {
        pool = pool.num_threads(jobs as usize);
    }
    let pool = pool.build().context("cannot start worker threads")?;
    let bar = indicatif::ProgressBar::hidden();
    if !args.quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} measuring history [{bar:30}] {pos}/{len} commits")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let measured = pool.install(|| trend::run(&options, config, &progress));
    bar.finish_and_clear();
    let measured = measured?;
    let title = std::path::absolute(&args.path).ok().and_then(|path| path.file_name().map(|name| name.to_string_lossy().into_owned())).unwrap_or_else(|| "repository".into());
    let rendered = match args.format {
        TrendFormat::Text => render::text(&measured),
        TrendFormat::Json => render::json(&measured)?,
        TrendFormat::Csv => render::csv(&measured),
        TrendFormat::Html => render::html(&measured, &title)?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered).with_context(|| format!("cannot write {}", path.display()))?,
        None => super::write_stdout(&rendered)?,
    }
    if !args.quiet && (args.output.is_some() || args.format != TrendFormat::Text) {
        eprintln!("periodic: {} commits measured in {:.1} s, {} files parsed", measured.points.len(), measured.duration_ms as f64 / 1000.0, measured.blobs_parsed);
    }
    Ok(0)
}
