//! `anteroom advance QUEUE N`: moves the serving position forward by N
//! (`POST /api/queue/increment_serving_position`): the next N places may claim now.

use shared::wire::ServingPosResponse;

use crate::out::{Common, n};

/// `anteroom advance`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  anteroom advance concert 100")]
pub struct Args {
    /// The queue's slug.
    pub queue: String,
    /// How many more places to admit, at least 1.
    pub by: u64,
    #[command(flatten)]
    pub common: Common,
}

/// Advances.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.common.admin()?;
    let by = args.by.to_string();
    let form = [("queue_id", args.queue.as_str()), ("increment_by", by.as_str())];
    let r: ServingPosResponse =
        admin.form("/api/queue/increment_serving_position", &form, "advance the line").await?;
    args.common.print(&r, |r| {
        format!(
            "{}: serving position {} (+{}): places {}–{} may come in",
            args.queue,
            n(r.serving_pos),
            n(args.by),
            n(r.serving_pos.saturating_sub(args.by) + 1),
            n(r.serving_pos)
        )
    })
}
