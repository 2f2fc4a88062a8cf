//! `anteroom report QUEUE`: the post-sale report (`GET /api/queue/{queue_id}/report`), written
//! as the self-contained HTML page (default) or the JSON, to a file or to stdout (`-o -`).

use std::path::PathBuf;

use anyhow::Context as _;
use shared::wire::Report;

use crate::out::{Common, n};

/// `anteroom report`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  anteroom report concert                 # writes concert-report.html\n  anteroom report concert --format json -o - | jq .totals\n  anteroom report concert --json          # the JSON on stdout"
)]
pub struct Args {
    /// The queue's slug.
    pub queue: String,
    /// `html` (a page with charts, nothing loaded from elsewhere) or `json`.
    #[arg(long, value_parser = ["html", "json"], default_value = "html")]
    pub format: String,
    /// Where to write it (`-`: stdout); default `<queue>-report.<format>`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// Fetches and writes the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.common.admin()?;
    let format = if args.common.json { "json" } else { args.format.as_str() };
    let path = format!("/api/queue/{}/report?format={format}", args.queue);
    let body = admin.get_text(&path, "read the report").await?;
    let out = match (&args.output, args.common.json) {
        (None, true) => PathBuf::from("-"),
        (None, false) => PathBuf::from(format!("{}-report.{format}", args.queue)),
        (Some(p), _) => p.clone(),
    };
    if out.as_os_str() == "-" {
        println!("{}", body.trim_end());
        return Ok(());
    }
    std::fs::write(&out, &body).with_context(|| format!("could not write {}", out.display()))?;
    let summary = match serde_json::from_str::<Report>(&body) {
        Ok(r) => format!(
            ": {} arrivals, {} admitted, {} completed, median wait to be served {}",
            n(r.totals.arrivals),
            n(r.totals.admitted),
            n(r.totals.completed),
            r.wait_to_served.p50.map_or_else(|| "–".into(), |s| format!("{s:.0} s"))
        ),
        Err(_) => String::new(),
    };
    eprintln!("wrote {} ({} bytes){summary}", out.display(), n(body.len() as u64));
    Ok(())
}
