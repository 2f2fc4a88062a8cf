//! `anteroom audit`: the audit log (`GET /api/audit`), oldest first: who changed what, when,
//! from where. `--since` takes unix ms, an entry id, or a duration back from now (`90m`).

use shared::wire::{AuditEntry, AuditPage};

use crate::failure::Usage;
use crate::out::{Common, table, utc};

/// `anteroom audit`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  anteroom audit --queue concert --since 2h\n  anteroom audit --json --limit 1000 | jq '.[] | select(.key == \"ops-alice\")'"
)]
pub struct Args {
    /// Only entries about this queue slug.
    #[arg(long)]
    pub queue: Option<String>,
    /// From when: unix ms, an entry id (`ms-seq`: the entries after it), or a duration back
    /// from now (`30s`, `90m`, `2h`, `1d`).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries (1..=10000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `since` as the API takes it.
pub fn since(arg: &str, now_ms: u64) -> Result<String, Usage> {
    let bad =
        || Usage(format!("--since {arg:?}: give unix ms, an entry id or a duration like 90m"));
    if arg.contains('-') || arg.chars().all(|c| c.is_ascii_digit()) {
        return Ok(arg.to_string());
    }
    let (num, unit) = arg.split_at(arg.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(now_ms.saturating_sub(secs * 1000).to_string())
}

fn what(e: &AuditEntry) -> String {
    e.changes
        .iter()
        .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Pages through the log.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(1..=10_000).contains(&args.limit) {
        return Err(Usage("--limit must be 1..=10000".into()).into());
    }
    let admin = args.common.admin()?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut cursor = match &args.since {
        Some(s) => Some(since(s, now_ms)?),
        None => None,
    };
    let mut entries: Vec<AuditEntry> = Vec::new();
    loop {
        let mut q = vec![format!("limit={}", (args.limit - entries.len()).min(1000))];
        if let Some(queue) = &args.queue {
            q.push(format!("queue={queue}"));
        }
        if let Some(c) = &cursor {
            q.push(format!("since={c}"));
        }
        let page: AuditPage =
            admin.get(&format!("/api/audit?{}", q.join("&")), "read the audit log").await?;
        entries.extend(page.entries);
        match page.next {
            Some(next) if entries.len() < args.limit => cursor = Some(next),
            _ => break,
        }
    }
    args.common.print(&entries, |es| {
        if es.is_empty() {
            return "no entries".into();
        }
        let rows: Vec<Vec<String>> = es
            .iter()
            .map(|e| {
                vec![
                    utc(e.at_ms),
                    e.key.clone(),
                    e.action.clone(),
                    e.queue_id.clone().unwrap_or_else(|| "–".into()),
                    what(e),
                ]
            })
            .collect();
        table(&["WHEN", "KEY", "ACTION", "QUEUE", "WHAT CHANGED"], &rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_ids_and_durations() {
        let now = 10_000_000;
        assert_eq!(since("1700000000000", now).ok(), Some("1700000000000".into()));
        assert_eq!(since("1700000000000-3", now).ok(), Some("1700000000000-3".into()));
        assert_eq!(since("90m", now).ok(), Some((now - 5_400_000).to_string()));
        assert_eq!(since("2h", now).ok(), Some((now - 7_200_000).to_string()));
        assert!(
            since("soon", now).is_err() && since("5y", now).is_err() && since("m", now).is_err()
        );
    }
}
