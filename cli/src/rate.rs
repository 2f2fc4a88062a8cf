//! `anteroom rate QUEUE RATE`: admit at a fixed rate (the `fixed_rate` strategy), keeping the
//! burst and session cap already set unless given, and a pause or drain as it is.

use serde_json::{Map, json};
use shared::admission::AdmissionPolicy;

use crate::out::{Common, n, per_sec};

/// `anteroom rate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  anteroom rate concert 50\n  anteroom rate concert 12.5 --max-active 2500 --burst 100"
)]
pub struct Args {
    /// The queue's slug (or numeric id).
    pub queue: String,
    /// Visitors admitted per second (fractions carry over: 0.5 admits one every 2 s).
    pub rate: f64,
    /// How many unused admissions may pile up while the line is empty.
    #[arg(long)]
    pub burst: Option<u32>,
    /// At most this many sessions at once.
    #[arg(long)]
    pub max_active: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

/// Sets the rate.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.common.admin()?;
    let q = admin.find_queue(&args.queue).await?;
    let (mut burst, mut max_active) = (0, None);
    match q.admission.as_ref().map(|a| &a.policy) {
        Some(AdmissionPolicy::FixedRate { burst: b, max_active: m, .. }) => {
            (burst, max_active) = (*b, *m)
        }
        Some(AdmissionPolicy::Capacity { max_active: m }) => max_active = Some(*m),
        Some(AdmissionPolicy::Health(h)) => max_active = h.max_active,
        _ => {}
    }
    let policy = json!({
        "strategy": "fixed_rate", "rate_per_sec": args.rate,
        "burst": args.burst.unwrap_or(burst), "max_active": args.max_active.or(max_active),
    });
    let (paused, draining) =
        q.admission.as_ref().map_or((false, false), |a| (a.paused, a.draining));
    let mut fields = Map::new();
    fields.insert(
        "admission".into(),
        json!({"policy": policy, "paused": paused, "draining": draining}),
    );
    let after = admin.update(q.id, fields, "set the rate").await?;
    let live = admin.live(&q.queue_id).await?;
    args.common.print(&after, |a| {
        let w = live.summary.waiting as f64;
        let soon = w.min(args.rate * 600.0) as u64;
        format!(
            "{}: admitting {} (fixed rate){}; about {} people in the next 10 minutes ({} waiting){}",
            a.queue_id,
            per_sec(args.rate),
            args.max_active
                .or(max_active)
                .map_or_else(String::new, |m| format!(", at most {} sessions at once", n(m.into()))),
            n(soon),
            n(live.summary.waiting),
            if paused { "; still paused: resume to admit" } else { "" },
        )
    })
}
