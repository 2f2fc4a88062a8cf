//! Publishes each queue's state to the edge's sync endpoint (which writes it to KV).
//!
//! Every 250 ms the publisher looks at each queue whose publish lease it holds (one process
//! per queue at a time, across every coordinator on the store) and sends the queues that are
//! due in one signed batch: a queue is due when its state changed and its last publish is at
//! least a second old (the KV limit of one write per key per second), or when its last
//! publish is older than the publish interval. Versions come from the store, so they rise
//! across processes and lease hand-overs.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shared::sync::{EdgeQueue, EdgeState, Removal, SIGNATURE_HEADER, SyncBatch, TIMESTAMP_HEADER};
use shared::wire::QueueConfig;
use tokio::sync::watch;

use crate::config::PublishConfig;
use crate::state::AppState;
use crate::store::StoreResult;

/// How often the publisher looks for changes.
const POLL: Duration = Duration::from_millis(250);
/// At most one write per queue per this long (Cloudflare KV's per-key write limit).
const MIN_GAP: Duration = Duration::from_secs(1);
/// Publish lease lifetime; renewed every poll.
const LEASE_MS: u64 = 3000;
/// How long an operator's deletion is repeated in every batch, seconds.
pub const REMOVAL_SECS: u64 = 3600;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Builds a queue's state (version and time filled in by the caller).
pub async fn snapshot(state: &AppState, q: &QueueConfig) -> StoreResult<EdgeState> {
    let store = state.store();
    let now = state.now();
    let (w, pauses) = state.waiting_and_pauses(q, now).await?;
    // A store found below what this process has seen lost data (a FLUSHALL the registry
    // check has not noticed yet, a restart without its last second): its revocations and
    // counters are not to be published until the upkeep loop has dealt with it.
    let floor = state.floors().floor(q.id);
    if w.counters.assigned < floor.assigned || w.counters.serving < floor.serving {
        return Err(crate::store::StoreError::Unavailable(
            "the store is below what this process has seen (lost writes): not published".into(),
        ));
    }
    // Never below what this process has seen: a store that lost writes must not move the
    // edge's serving position back, nor make tickets already handed out look lost.
    let serving = state.floors().saw(q.id, w.counters);
    let assigned = w.counters.assigned.max(state.floors().floor(q.id).assigned);
    Ok(EdgeState {
        format: shared::sync::FORMAT,
        version: 0,
        published_at_ms: 0,
        issuer: state.settings().issuer.clone(),
        queue: EdgeQueue::from(q),
        serving_pos: serving,
        assigned,
        waiting_num: w.waiting(),
        active_num: store.active_sessions(q.id, now).await?,
        serving_history: store.serving_history(q.id, crate::state::HISTORY_LIMIT).await?,
        jwks: state.keys().jwks(now),
        revoked: shared::positions::PositionSet::from_positions(
            store
                .revoked(q.id, now)
                .await?
                .iter()
                .filter_map(|jti| shared::positions::position_of_jti(jti, q.id))
                .collect(),
        ),
        draw: match q.prequeue_opens_at {
            Some(_) => state.draw_of(q).await?,
            None => None,
        },
        admission: state.estimate(q.id),
        template: q.template.clone(),
        presentation: q.presentation(),
        pauses,
        lost: false,
    })
}

fn fingerprint(s: &EdgeState) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(s).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// What the publisher last sent for a queue.
struct Sent {
    at: Instant,
    fingerprint: u64,
    state: EdgeState,
}

/// Runs the publisher until `stop` fires.
pub async fn run(state: AppState, cfg: PublishConfig, mut stop: watch::Receiver<bool>) {
    let owner = format!("{}-{}", std::process::id(), now_ms());
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(cause = %e, "publisher disabled: no http client");
            return;
        }
    };
    let mut last: HashMap<u32, Sent> = HashMap::new();
    // When this publisher first saw each queue's current unpublished change (the lag metric).
    let mut changed: HashMap<u32, Instant> = HashMap::new();
    // Tombstones this publisher has announced at least once.
    let mut announced: HashSet<u32> = HashSet::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let since = state.now().saturating_sub(REMOVAL_SECS);
        let removed: Vec<Removal> = match state.store().tombstones(since).await {
            Ok(t) => t.into_iter().map(|t| Removal { queue_id: t.queue_id, id: t.id }).collect(),
            Err(e) => {
                tracing::warn!(cause = %e, "tombstones not read");
                Vec::new()
            }
        };
        let mut batch = SyncBatch { states: Vec::new(), removed };
        let mut published = Vec::new();
        for q in &state.cached_queues() {
            match publish_one(&state, q, &owner, last.get(&q.id), &mut changed).await {
                Ok(Some((s, fp))) => {
                    published.push((q.id, fp, s.clone()));
                    batch.states.push(s);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(queue = %q.queue_id, cause = %e, "state not published"),
            }
        }
        for q in state.lost_queues() {
            if let Some(s) = lost_state(&state, &q, &owner, last.get(&q.id)).await {
                published.push((q.id, 0, s.clone()));
                batch.states.push(s);
            }
        }
        let news = batch.removed.iter().any(|r| !announced.contains(&r.id));
        if batch.states.is_empty() && !news {
            continue;
        }
        match send(&client, &cfg, &batch).await {
            Ok(()) => {
                let at = Instant::now();
                for (id, fingerprint, s) in published {
                    // When the edge last got it, for every process's overview (one small
                    // write per publish, at most one a second per queue).
                    let at_ms = now_ms().to_string();
                    if let Err(e) = state.store().put_meta(id, "published", at_ms).await {
                        tracing::warn!(queue = %s.queue.queue_id, cause = %e, "publish time not stored");
                    }
                    if let Some(m) = state.metrics() {
                        let lag = changed.remove(&id).map(|t| t.elapsed());
                        m.published(&s.queue.queue_id, lag, now_ms());
                    }
                    last.insert(id, Sent { at, fingerprint, state: s });
                }
                announced.extend(batch.removed.iter().map(|r| r.id));
            }
            Err(e) => {
                if let Some(m) = state.metrics() {
                    m.publish_failed();
                }
                tracing::warn!(cause = %e, queues = batch.states.len(), "sync to edge failed")
            }
        }
    }
}

/// The last state sent for a queue the store lost, marked lost and republished every
/// interval, if this process holds the queue's lease and sent one before (a process that never
/// published the queue sends nothing: the edge keeps its last state, which holds visitors).
async fn lost_state(
    state: &AppState,
    q: &QueueConfig,
    owner: &str,
    last: Option<&Sent>,
) -> Option<EdgeState> {
    let sent = last?;
    if sent.state.lost && sent.at.elapsed() < state.publish_interval() {
        return None;
    }
    match state.store().lease(q.id, "publish", owner.to_string(), LEASE_MS).await {
        Ok(true) => {}
        _ => return None,
    }
    let now = now_ms();
    Some(EdgeState {
        lost: true,
        version: (sent.state.version + 1).max(now),
        published_at_ms: now,
        ..sent.state.clone()
    })
}

/// The state of `q` if this process holds its lease and it is due, with its fingerprint;
/// notes in `changed` when a change was first seen.
async fn publish_one(
    state: &AppState,
    q: &QueueConfig,
    owner: &str,
    last: Option<&Sent>,
    changed: &mut HashMap<u32, Instant>,
) -> StoreResult<Option<(EdgeState, u64)>> {
    if !state.store().lease(q.id, "publish", owner.to_string(), LEASE_MS).await? {
        return Ok(None);
    }
    let mut s = snapshot(state, q).await?;
    let fp = fingerprint(&s);
    if last.is_some_and(|sent| sent.fingerprint != fp) {
        changed.entry(q.id).or_insert_with(Instant::now);
    }
    let interval = state.publish_interval();
    let due = match last {
        None => true,
        Some(sent) => {
            let age = sent.at.elapsed();
            (sent.fingerprint != fp && age >= MIN_GAP) || age >= interval
        }
    };
    if !due {
        return Ok(None);
    }
    let now = now_ms();
    s.version = state.store().next_version(q.id, now).await?;
    s.published_at_ms = now;
    Ok(Some((s, fp)))
}

async fn send(
    client: &reqwest::Client,
    cfg: &PublishConfig,
    batch: &SyncBatch,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(batch)?;
    let ts = now_ms();
    let resp = client
        .post(&cfg.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, shared::sync::sign_sync(&cfg.key, ts, &body))
        .body(body)
        .send()
        .await?;
    if !resp.status().is_success() {
        anyhow::bail!("edge answered {}", resp.status());
    }
    Ok(())
}
