//! `anteroom message QUEUE`: the message to the people waiting (plain text, English and
//! Chinese), shown on the waiting page and in the answers pages poll within the edge's
//! freshness bound; `--clear` takes it down in one call. Without a text or `--clear` it
//! shows the current one.

use serde_json::{Map, Value, json};
use shared::wire::Notice;

use crate::failure::Usage;
use crate::out::Common;

/// `anteroom message`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  anteroom message concert --en 'Doors open at 8' --zh '八点开门'\n  anteroom message concert --clear\n  anteroom message concert --json"
)]
pub struct Args {
    /// The queue's slug (or numeric id).
    pub queue: String,
    /// The English text.
    #[arg(long)]
    pub en: Option<String>,
    /// The Chinese text.
    #[arg(long)]
    pub zh: Option<String>,
    /// Take the message down.
    #[arg(long, conflicts_with_all = ["en", "zh"])]
    pub clear: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Sets, clears or shows the message.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.common.admin()?;
    let q = admin.find_queue(&args.queue).await?;
    let notice = if args.clear {
        let mut fields = Map::new();
        fields.insert("notice".into(), Value::Null);
        admin.update(q.id, fields, "clear the message").await?.notice
    } else if args.en.is_some() || args.zh.is_some() {
        let n = Notice {
            en: args.en.clone().unwrap_or_default(),
            zh: args.zh.clone().unwrap_or_default(),
        };
        if n.en.is_empty() && n.zh.is_empty() {
            return Err(Usage("give --en or --zh text, or --clear".into()).into());
        }
        let mut fields = Map::new();
        fields.insert("notice".into(), json!(n));
        admin.update(q.id, fields, "set the message").await?.notice
    } else {
        q.notice
    };
    let changed = args.clear || args.en.is_some() || args.zh.is_some();
    args.common.print(&notice, |n| match (n, changed) {
        (None, true) => format!("{}: message cleared", q.queue_id),
        (None, false) => format!("{}: no message", q.queue_id),
        (Some(n), _) => format!(
            "{}: {}\n  en: {}\n  zh: {}",
            q.queue_id,
            if changed {
                "message shown to the people waiting within about 2 s"
            } else {
                "message"
            },
            if n.en.is_empty() { "–" } else { &n.en },
            if n.zh.is_empty() { "–" } else { &n.zh },
        ),
    })
}
