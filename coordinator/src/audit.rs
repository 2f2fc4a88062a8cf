//! The audit log: every change an operator makes through the private API (queues, serving
//! increments, pause/resume/drain/open, key rotation, session status, admin keys, webhooks)
//! is appended to a stream in the registry: when, which key (by name), which queue, the
//! fields before and after, from which address. Retention is bounded (`--audit-keep`
//! entries). Calls with the origin key (ending sessions at checkout, health reports) are the
//! origin's traffic, not operator changes, and are not audited.
//!
//! The entry is written after the change (they live in different Redis slots, so not in one
//! script): if the store fails in between, the change stands and the failure is logged and
//! counted (`anteroom_audit_write_failures_total`) rather than answered as an error an
//! operator would retry.

use serde::Serialize;
use serde_json::{Map, Value};
use shared::wire::{AuditEntry, AuditPage, FieldChange, QueueConfig};

use crate::access::Caller;
use crate::state::AppState;
use crate::store::{AuditFrom, StoreResult};

/// Entries read per store call while filling a page.
const SCAN: usize = 200;
/// Store calls per page at most (a filter matching little still answers in bounded time).
const SCANS: usize = 10;

/// A field's change.
pub fn change(field: &str, before: impl Serialize, after: impl Serialize) -> FieldChange {
    FieldChange {
        field: field.to_string(),
        before: serde_json::to_value(before).unwrap_or(Value::Null),
        after: serde_json::to_value(after).unwrap_or(Value::Null),
    }
}

/// A queue as audit entries show it: the template by its digest and size.
fn fields(q: Option<&QueueConfig>) -> Map<String, Value> {
    let Some(Value::Object(mut m)) = q.map(|q| serde_json::to_value(q).unwrap_or(Value::Null))
    else {
        return Map::new();
    };
    if let Some(Value::String(t)) = m.get("template") {
        let digest = shared::hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
        m.insert("template".into(), serde_json::json!({"sha256": digest, "bytes": t.len()}));
    }
    m
}

/// The fields that differ between two versions of a queue (`None`: it did not exist);
/// `admission` field by field (`admission.paused`).
pub fn diff(before: Option<&QueueConfig>, after: Option<&QueueConfig>) -> Vec<FieldChange> {
    let (a, b) = (fields(before), fields(after));
    let mut out = Vec::new();
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (x, y) = (a.get(name).unwrap_or(&Value::Null), b.get(name).unwrap_or(&Value::Null));
        match (name.as_str(), x, y) {
            (_, x, y) if x == y => {}
            ("admission", Value::Object(xa), Value::Object(ya)) => {
                for k in ["policy", "paused", "draining"] {
                    let (u, v) = (xa.get(k), ya.get(k));
                    if u != v {
                        out.push(change(&format!("admission.{k}"), u, v));
                    }
                }
            }
            _ => out.push(change(name, x, y)),
        }
    }
    out
}

/// Appends an entry for a change `caller` made (a failure is logged and counted, not
/// answered: the change is done).
pub async fn record(
    state: &AppState,
    caller: &Caller,
    action: &str,
    queue: Option<&QueueConfig>,
    changes: Vec<FieldChange>,
) {
    let entry = AuditEntry {
        id: String::new(),
        at_ms: state.now_ms(),
        key: caller.key.clone(),
        action: action.to_string(),
        queue_id: queue.map(|q| q.queue_id.clone()),
        queue: queue.map(|q| q.id),
        changes,
        from: caller.from.clone(),
    };
    let Ok(json) = serde_json::to_string(&entry) else { return };
    let keep = state.settings().audit_keep;
    if let Err(e) = state.store().append_audit(json, entry.at_ms, keep).await {
        tracing::error!(action, key = %caller.key, cause = %e, "audit entry not written");
        if let Some(m) = state.metrics() {
            m.audit_failed();
        }
    }
}

/// A page of up to `limit` entries from `from` on, of `queue` only if given.
pub async fn page(
    state: &AppState,
    mut from: AuditFrom,
    queue: Option<&str>,
    limit: usize,
) -> StoreResult<AuditPage> {
    let mut entries = Vec::new();
    for _ in 0..SCANS {
        let batch = state.store().audit_page(from, SCAN).await?;
        let done = batch.len() < SCAN;
        for (id, json) in batch {
            from = parse_id(&id).map_or(from, |(ms, seq)| AuditFrom { ms, seq, exclusive: true });
            let Ok(mut e) = serde_json::from_str::<AuditEntry>(&json) else { continue };
            if queue.is_none_or(|q| e.queue_id.as_deref() == Some(q)) {
                e.id = id;
                entries.push(e);
                if entries.len() == limit {
                    return Ok(AuditPage {
                        entries,
                        next: Some(format!("{}-{}", from.ms, from.seq)),
                    });
                }
            }
        }
        if done {
            return Ok(AuditPage { entries, next: None });
        }
    }
    Ok(AuditPage { entries, next: Some(format!("{}-{}", from.ms, from.seq)) })
}

/// A stream id `ms-seq`.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn diff_names_changed_fields_and_admission_by_part() {
        let a = QueueConfig::with_defaults("q");
        let mut b = a.clone();
        b.token_validity_second = 60;
        b.template = Some("<html>{{position}}</html>".into());
        let d = diff(Some(&a), Some(&b));
        let names: Vec<&str> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(names, ["template", "token_validity_second"]);
        assert_eq!(d[1].before, 300);
        assert_eq!(d[0].after["bytes"], 25, "the template by size and digest, not its text");
        let mut c = b.clone();
        let policy = shared::admission::AdmissionPolicy::Capacity { max_active: 3 };
        c.admission =
            Some(shared::admission::AdmissionConfig { policy, paused: true, draining: false });
        let mut e = c.clone();
        if let Some(adm) = e.admission.as_mut() {
            adm.paused = false;
        }
        let d = diff(Some(&c), Some(&e));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].field.as_str(), &d[0].before, &d[0].after),
            ("admission.paused", &Value::Bool(true), &Value::Bool(false))
        );
        let set = serde_json::to_value(&a)
            .unwrap()
            .as_object()
            .unwrap()
            .values()
            .filter(|v| !v.is_null())
            .count();
        assert_eq!(diff(None, Some(&a)).len(), set, "a new queue: every field that has a value");
        assert_eq!(parse_id("12-3"), Some((12, 3)));
        assert_eq!(parse_id("12"), None);
    }
}
