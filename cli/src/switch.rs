//! `anteroom pause | resume | drain | open QUEUE`: the operator's switches
//! (`POST /api/queue/{queue_id}/{switch}`), each audited under the key's name.

use shared::wire::QueueConfig;

use crate::out::{Common, n};

/// A queue and the common flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The queue's slug.
    pub queue: String,
    #[command(flatten)]
    pub common: Common,
}

/// Which switch.
#[derive(Debug, Clone, Copy)]
pub enum Switch {
    /// Admit nobody until resumed.
    Pause,
    /// Admit again.
    Resume,
    /// No new places or sessions; running sessions finish.
    Drain,
    /// Take visitors now.
    Open,
}

impl Switch {
    fn path(self) -> &'static str {
        match self {
            Switch::Pause => "pause",
            Switch::Resume => "resume",
            Switch::Drain => "drain",
            Switch::Open => "open",
        }
    }
}

/// Runs a switch and says what it did, with the line's numbers.
pub async fn run(switch: Switch, args: Args) -> anyhow::Result<()> {
    let admin = args.common.admin()?;
    let what = format!("{} the queue", switch.path());
    let q: QueueConfig =
        admin.post(&format!("/api/queue/{}/{}", args.queue, switch.path()), &what).await?;
    let live = admin.live(&q.queue_id).await?;
    let s = live.summary;
    args.common.print(&q, |q| {
        let w = n(s.waiting);
        match switch {
            Switch::Pause => format!("{}: paused; nobody is admitted until resumed ({w} waiting keep their places)", q.queue_id),
            Switch::Resume => format!("{}: admitting again ({w} waiting)", q.queue_id),
            Switch::Drain => format!("{}: draining; no new places or sessions, {} live sessions finish ({w} waiting will not get in)", q.queue_id, n(s.active)),
            Switch::Open => format!("{}: open ({:?}, {w} waiting)", q.queue_id, s.state).to_lowercase(),
        }
    })
}
