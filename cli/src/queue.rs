//! `anteroom queue create | list | show | update | delete`: the queue resource of the private
//! API. Settings come from flags for the common ones, `--set field=JSON` for any field of
//! the schema, or `--from FILE` (a JSON body as `POST /api/queue` takes it).

use anyhow::Context as _;
use serde_json::{Map, Value, json};
use shared::wire::{Overview, QueueConfig, QueueLive};

use crate::failure::Usage;
use crate::out::{Common, n, per_sec, secs, table};

/// `anteroom queue ...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// The queue subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a queue.
    #[command(
        after_help = "Examples:\n  anteroom queue create concert --paths /tickets --expiry 600 --capacity 2500\n  anteroom queue create concert --display-name 'The Night Orchestra' --logo-text 'Riverside Tickets' --rate 50\n  anteroom queue create concert --from concert.json"
    )]
    Create {
        /// The new queue's slug, `[a-z0-9_-]{1,32}`.
        queue_id: String,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        common: Common,
    },
    /// List every queue with its state and numbers.
    #[command(
        after_help = "Examples:\n  anteroom queue list\n  anteroom queue list --json | jq '.[].queue_id'"
    )]
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show a queue's settings and numbers.
    #[command(
        after_help = "Examples:\n  anteroom queue show concert\n  anteroom queue show concert --json | jq .queue.admission"
    )]
    Show {
        /// The queue's slug (or numeric id).
        queue: String,
        #[command(flatten)]
        common: Common,
    },
    /// Change some of a queue's settings (the others stay).
    #[command(
        after_help = "Examples:\n  anteroom queue update concert --pow 16\n  anteroom queue update concert --mode closed\n  anteroom queue update concert --set waiting_status=429 --set 'bypass=[\"/health\"]'"
    )]
    Update {
        /// The queue's slug (or numeric id).
        queue: String,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a queue and everything in it (its tickets and tokens then open nothing).
    #[command(after_help = "Examples:\n  anteroom queue delete concert --yes")]
    Delete {
        /// The queue's slug (or numeric id).
        queue: String,
        /// Confirm: without it nothing is deleted (exit code 2).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        common: Common,
    },
}

/// Settings as flags; each one given becomes a field of the body, the rest are left out.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Settings {
    /// Path prefixes the edge protects, comma separated (`/tickets,/checkout`).
    #[arg(long, value_delimiter = ',')]
    pub paths: Option<Vec<String>>,
    /// Places expire when not claimed this many seconds after being served (0: never).
    #[arg(long, value_name = "SECS")]
    pub expiry: Option<u32>,
    /// Access token (session) life, seconds.
    #[arg(long, value_name = "SECS")]
    pub token_validity: Option<u32>,
    /// Proof-of-work difficulty (0 = off).
    #[arg(long, value_name = "BITS")]
    pub pow: Option<u8>,
    /// What the edge does: queue, passthrough or closed.
    #[arg(long, value_parser = ["queue", "passthrough", "closed"])]
    pub mode: Option<String>,
    /// With no state at an edge, let visitors through.
    #[arg(long, value_name = "BOOL")]
    pub fail_open: Option<bool>,
    /// What the visitor waits for (`The Night Orchestra`); empty clears it.
    #[arg(long)]
    pub display_name: Option<String>,
    /// The site's name as a text logo (`Riverside Tickets`); empty clears it.
    #[arg(long)]
    pub logo_text: Option<String>,
    /// Admit at a fixed rate, per second.
    #[arg(long, conflicts_with_all = ["capacity", "manual"])]
    pub rate: Option<f64>,
    /// Keep at most this many sessions at once (capacity strategy).
    #[arg(long, value_name = "MAX_ACTIVE", conflicts_with = "manual")]
    pub capacity: Option<u32>,
    /// Manual admission (advance by hand).
    #[arg(long)]
    pub manual: bool,
    /// Any field of the schema as JSON: `--set waiting_status=429`, `--set template=null`.
    #[arg(long = "set", value_name = "FIELD=JSON")]
    pub set: Vec<String>,
    /// A JSON object with fields of the schema, applied before the flags.
    #[arg(long, value_name = "FILE")]
    pub from: Option<std::path::PathBuf>,
}

impl Settings {
    /// The body fields these flags ask for.
    pub fn fields(&self) -> anyhow::Result<Map<String, Value>> {
        let mut m = match &self.from {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                match serde_json::from_str::<Value>(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?
                {
                    Value::Object(m) => m,
                    _ => {
                        return Err(
                            Usage(format!("{} must hold a JSON object", path.display())).into()
                        );
                    }
                }
            }
            None => Map::new(),
        };
        let text_or_null = |s: &String| if s.is_empty() { Value::Null } else { s.clone().into() };
        if let Some(p) = &self.paths {
            m.insert("paths".into(), json!(p));
        }
        if let Some(e) = self.expiry {
            m.insert("enable_queue_position_expiry".into(), (e > 0).into());
            if e > 0 {
                m.insert("position_expiry_second".into(), e.into());
            }
        }
        if let Some(t) = self.token_validity {
            m.insert("token_validity_second".into(), t.into());
        }
        if let Some(p) = self.pow {
            m.insert("pow_difficulty".into(), p.into());
        }
        if let Some(mode) = &self.mode {
            m.insert("mode".into(), mode.clone().into());
        }
        if let Some(f) = self.fail_open {
            m.insert("fail_open".into(), f.into());
        }
        if let Some(d) = &self.display_name {
            m.insert("display_name".into(), text_or_null(d));
        }
        if let Some(l) = &self.logo_text {
            m.insert("logo_text".into(), text_or_null(l));
        }
        if let Some(r) = self.rate {
            let policy =
                json!({"strategy": "fixed_rate", "rate_per_sec": r, "max_active": self.capacity});
            m.insert("admission".into(), json!({"policy": policy}));
        } else if let Some(c) = self.capacity {
            m.insert(
                "admission".into(),
                json!({"policy": {"strategy": "capacity", "max_active": c}}),
            );
        } else if self.manual {
            m.insert("admission".into(), Value::Null);
        }
        for s in &self.set {
            let (k, v) =
                s.split_once('=').ok_or_else(|| Usage(format!("--set {s:?}: write FIELD=JSON")))?;
            // A bare word that is not JSON is taken as a string (`--set mode=closed`).
            let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
            m.insert(k.trim().to_string(), v);
        }
        Ok(m)
    }
}

/// A queue's settings as `key: value` lines.
pub fn describe(q: &QueueConfig) -> String {
    let mut out = String::new();
    let policy = q.admission.as_ref().map_or_else(
        || "manual".to_string(),
        |a| {
            let mut p = serde_json::to_string(&a.policy).unwrap_or_default();
            if a.paused {
                p.push_str(" (paused)");
            }
            if a.draining {
                p.push_str(" (draining)");
            }
            p
        },
    );
    let lines: Vec<(&str, String)> = vec![
        ("queue", format!("{} (id {})", q.queue_id, q.id)),
        ("display name", q.display_name.clone().unwrap_or_else(|| "–".into())),
        ("logo text", q.logo_text.clone().unwrap_or_else(|| "–".into())),
        (
            "message",
            q.notice
                .as_ref()
                .map_or_else(|| "–".into(), |m| format!("en {:?}, zh {:?}", m.en, m.zh)),
        ),
        ("mode", format!("{:?}", q.mode).to_lowercase()),
        ("paths", if q.paths.is_empty() { "–".into() } else { q.paths.join(", ") }),
        ("admission", policy),
        (
            "position expiry",
            if q.enable_queue_position_expiry {
                secs(q.position_expiry_second.into())
            } else {
                "off".into()
            },
        ),
        ("session length", secs(q.token_validity_second.into())),
        (
            "proof-of-work",
            if q.pow_difficulty == 0 { "off".into() } else { format!("{} bits", q.pow_difficulty) },
        ),
        ("fail open", q.fail_open.to_string()),
    ];
    for (k, v) in lines {
        out.push_str(&format!("{k:<16} {v}\n"));
    }
    out
}

/// Runs a queue subcommand.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Create { queue_id, settings, common } => {
            let mut body = settings.fields()?;
            body.insert("queue_id".into(), queue_id.into());
            let admin = common.admin()?;
            let q: QueueConfig =
                admin.json(reqwest::Method::POST, "/api/queue", &body, "create the queue").await?;
            common.print(&q, |q| format!("created {} (id {})\n{}", q.queue_id, q.id, describe(q)))
        }
        Command::List { common } => {
            let o: Overview = common.admin()?.get("/api/overview", "list the queues").await?;
            common.print(&o.queues, |qs| {
                let rows: Vec<Vec<String>> = qs
                    .iter()
                    .map(|q| {
                        vec![
                            q.queue_id.clone(),
                            q.id.to_string(),
                            format!("{:?}", q.state).to_lowercase(),
                            n(q.waiting),
                            q.max_active.map_or_else(
                                || n(q.active),
                                |m| format!("{}/{}", n(q.active), n(m)),
                            ),
                            per_sec(q.admission_rate),
                            q.display_name.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    "no queues".into()
                } else {
                    table(&["QUEUE", "ID", "STATE", "WAITING", "ACTIVE", "RATE", "NAME"], &rows)
                }
            })
        }
        Command::Show { queue, common } => {
            let admin = common.admin()?;
            let q = admin.find_queue(&queue).await?;
            let live = admin.live(&q.queue_id).await?;
            common.print(&live, |l: &QueueLive| {
                let s = &l.summary;
                let mut out = describe(&l.queue);
                out.push_str(&format!(
                    "{:<16} {:?}\n{:<16} {} waiting, {} served of {} handed out, {} active\n{:<16} {}\n",
                    "state",
                    s.state,
                    "line",
                    n(s.waiting),
                    n(s.serving_pos),
                    n(s.assigned),
                    n(s.active),
                    "rate",
                    per_sec(s.admission_rate),
                ));
                for w in &s.warnings {
                    out.push_str(&format!("{:<16} {}\n", "warning", w.message));
                }
                out
            })
        }
        Command::Update { queue, settings, common } => {
            let fields = settings.fields()?;
            if fields.is_empty() {
                return Err(Usage("nothing to change: give a setting (see --help)".into()).into());
            }
            let admin = common.admin()?;
            let q = admin.find_queue(&queue).await?;
            let after = admin.update(q.id, fields, "update the queue").await?;
            common.print(&after, |a| format!("updated {}\n{}", a.queue_id, describe(a)))
        }
        Command::Delete { queue, yes, common } => {
            if !yes {
                return Err(Usage(format!("deleting {queue} needs --yes")).into());
            }
            let admin = common.admin()?;
            let q = admin.find_queue(&queue).await?;
            admin.delete(&format!("/api/queue/{}", q.id), "delete the queue").await?;
            common.print(&json!({"deleted": q.queue_id, "id": q.id}), |_| {
                format!("deleted {} (id {})", q.queue_id, q.id)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_exactly_the_fields_given() {
        let s = Settings {
            paths: Some(vec!["/a".into(), "/b".into()]),
            expiry: Some(0),
            display_name: Some(String::new()),
            capacity: Some(5),
            set: vec!["waiting_status=429".into(), "mode=closed".into()],
            ..Default::default()
        };
        let f = s.fields().unwrap_or_default();
        assert_eq!(
            Value::Object(f),
            json!({"paths": ["/a", "/b"], "enable_queue_position_expiry": false, "display_name": null,
                "admission": {"policy": {"strategy": "capacity", "max_active": 5}},
                "waiting_status": 429, "mode": "closed"})
        );
        assert!(Settings { set: vec!["nope".into()], ..Default::default() }.fields().is_err());
        assert!(Settings::default().fields().unwrap_or_default().is_empty());
    }
}
