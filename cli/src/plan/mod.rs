//! `anteroom plan`: from a traffic profile and the downstream's limits to the queue
//! configuration, the line and waits it gives, the load on every part and the limit that binds
//! first, all from the product's own control law, ETA model and poll policy (`sim`), written
//! as text, JSON and a self-contained HTML report; `--apply` creates the queue and
//! `--rehearse` replays the profile, scaled down, against a running coordinator.
//!
//! This module is the command (its flags, files and output); `planner` sequences the steps.
//! The schema, the model and its assumptions are written up in `docs/plans/README.md`.

pub mod flags;
pub mod html;
pub mod measured;
pub mod parts;
pub mod planner;
pub mod profile;
pub mod recommend;
pub mod rehearse;
pub mod report;
pub mod session;
pub mod sim;
pub mod spread;
pub mod svg;
pub mod text;
pub mod traffic;
pub mod units;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::admin::{Admin, AdminArgs};
pub use planner::{Planned, plan, plan_with};
use profile::Profile;
use rehearse::Rehearsal;
use report::PlanReport;

/// `anteroom plan`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Profile file (TOML, schema in docs/plans/README.md); without one, the flags are the profile.
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: flags::Overrides,
    /// Write <name>.html, <name>.json and <name>.queue.json (the queue body) into this folder,
    /// and with --rehearse <name>.rehearsal.json and .txt.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print: a summary, or the whole report as JSON (with the rehearsal, if any).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Create the planned queue through the coordinator's private API.
    #[arg(long)]
    pub apply: bool,
    /// Replay the profile, scaled down, against a running coordinator and print predicted
    /// against measured line and waits.
    #[arg(long)]
    pub rehearse: bool,
    #[command(flatten)]
    pub rehearsal: rehearse::Options,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// What `anteroom plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary for people.
    Text,
    /// The whole report.
    Json,
}

/// `anteroom plan`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let base = args.profile.as_deref().map(Profile::read).transpose()?;
    let profile = args.overrides.apply(base)?;
    // A missing key or a bad URL is said before the plan is computed, not after.
    let admin = (args.apply || args.rehearse).then(|| Admin::new(&args.admin)).transpose()?;
    let planned = plan(&profile)?;
    if let Some(dir) = &args.out {
        write_files(dir, &planned.report)?;
    }
    let rt = admin.is_some().then(tokio::runtime::Runtime::new).transpose()?;
    let mut rehearsal = None;
    if let (Some(admin), Some(rt)) = (&admin, &rt) {
        if args.apply {
            let q = rt.block_on(admin.create_queue(&planned.report.recommendation.queue))?;
            eprintln!("created queue {} (id {})", q.queue_id, q.id);
        }
        if args.rehearse {
            rehearsal = Some(rt.block_on(rehearse::rehearse(&profile, &args.rehearsal, admin))?);
        }
    }
    if let (Some(dir), Some(h)) = (&args.out, &rehearsal) {
        write_rehearsal(dir, &planned.report.profile.name, h)?;
    }
    let out = match args.format {
        Format::Text => text::summary(&planned.report, rehearsal.as_ref()),
        Format::Json => {
            let mut v = serde_json::to_value(&planned.report)?;
            v["rehearsal"] = serde_json::to_value(&rehearsal)?;
            serde_json::to_string_pretty(&v)?
        }
    };
    println!("{out}");
    Ok(())
}

/// Writes a rehearsal's comparison as JSON and as the table printed, into `dir`.
fn write_rehearsal(dir: &Path, name: &str, h: &Rehearsal) -> anyhow::Result<()> {
    let json = dir.join(format!("{name}.rehearsal.json"));
    std::fs::write(&json, serde_json::to_string_pretty(h)? + "\n")
        .with_context(|| format!("write {}", json.display()))?;
    let txt = dir.join(format!("{name}.rehearsal.txt"));
    std::fs::write(&txt, h.table()).with_context(|| format!("write {}", txt.display()))
}

/// Writes the report as HTML and JSON, and the queue body, into `dir`.
pub fn write_files(dir: &Path, r: &PlanReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let name = &r.profile.name;
    let write = |file: String, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
    };
    write(format!("{name}.json"), serde_json::to_string_pretty(r)? + "\n")?;
    write(
        format!("{name}.queue.json"),
        serde_json::to_string_pretty(&r.recommendation.queue)? + "\n",
    )?;
    write(format!("{name}.html"), html::page(r))
}
