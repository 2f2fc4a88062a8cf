//! The observability part of the upkeep loop, once a second: reload the named admin keys and
//! webhook endpoints (so a change made through any process takes effect everywhere within a
//! second), sweep expired sessions (counted as expired; a `session_updated` event each), and
//! at each new minute store every queue's sample for the report and send `queue_metrics`.
//!
//! Any process may do it. Sweeping returns each expired session to one caller only, and a
//! minute's sample is stored by the first process that gets there (`Store::record_minute`),
//! which alone sends that minute's `queue_metrics`: one event per queue-minute however many
//! processes run.

use std::collections::HashMap;

use shared::wire::{EventData, MetricsEvent, QueueConfig, SessionEvent};

use crate::queue::jti;
use crate::state::AppState;
use crate::store::{MinuteSample, StoreResult};

/// What this process sampled last, per queue: the unix minute.
#[derive(Debug, Default)]
pub struct Sampler {
    last: HashMap<u32, u64>,
}

/// Reloads the named admin keys, console sessions and webhook endpoints.
pub async fn reload(state: &AppState) -> StoreResult<()> {
    state.access().reload(state.store()).await?;
    state.sessions().reload(state.store()).await?;
    state.webhooks().reload(state.store()).await
}

/// One second's work.
pub async fn tick(state: &AppState, sampler: &mut Sampler) {
    if let Err(e) = reload(state).await {
        tracing::warn!(cause = %e, "admin keys and webhooks not reloaded");
    }
    let now = state.now();
    for q in state.cached_queues() {
        if let Err(e) = sweep(state, &q, now).await {
            tracing::warn!(queue = %q.queue_id, cause = %e, "expired sessions not swept");
        }
        let minute = now / 60;
        if sampler.last.get(&q.id) == Some(&minute) {
            continue;
        }
        match sample(state, &q, now).await {
            Ok(()) => {
                sampler.last.insert(q.id, minute);
            }
            Err(e) => tracing::warn!(queue = %q.queue_id, cause = %e, "minute not sampled"),
        }
    }
    sampler.last.retain(|id, _| state.queue_by_id_cached(*id).is_some());
}

/// Removes and counts the queue's expired sessions, with an event each.
async fn sweep(state: &AppState, q: &QueueConfig, now: u64) -> StoreResult<()> {
    for position in state.store().sweep_expired(q.id, now).await? {
        let data = SessionEvent {
            event_id: q.queue_id.clone(),
            queue_id: q.queue_id.clone(),
            request_id: None,
            jti: jti(q.id, position),
            position,
            status: Some("expired".into()),
            expires_at: None,
            by: None,
        };
        state.webhooks().emit(&q.queue_id, now, EventData::SessionUpdated(data));
    }
    Ok(())
}

/// The queue's sample of this minute, stored unless another process did; the process that
/// stores it sends the last minute's `queue_metrics`.
async fn sample(state: &AppState, q: &QueueConfig, now: u64) -> StoreResult<()> {
    let minute = now / 60;
    let t0 = state.expiry_t0(q, now).await?;
    let stats = state.store().stats(q.id, now, t0).await?;
    let estimate = state.estimate(q.id).unwrap_or_default();
    let s = MinuteSample::of(minute, &stats, estimate);
    let store = state.store();
    if !store.record_minute(q.id, s, state.settings().report_minutes).await? {
        return Ok(());
    }
    let before = store.minutes(q.id, minute.saturating_sub(60)).await?;
    if let Some(prev) = before.iter().rev().find(|p| p.minute < minute) {
        state.webhooks().emit(
            &q.queue_id,
            now,
            EventData::QueueMetrics(metrics_event(q, prev, &s)),
        );
    }
    Ok(())
}

/// `queue_metrics` for the interval between two samples.
pub fn metrics_event(q: &QueueConfig, prev: &MinuteSample, s: &MinuteSample) -> MetricsEvent {
    let admitted = |x: &MinuteSample| x.serving.min(x.assigned);
    MetricsEvent {
        event_id: q.queue_id.clone(),
        queue_id: q.queue_id.clone(),
        minute_start: prev.minute * 60,
        secs: (s.minute - prev.minute) * 60,
        waiting: s.waiting,
        active: s.active,
        arrivals: s.assigned.saturating_sub(prev.assigned),
        admitted: admitted(s).saturating_sub(admitted(prev)),
        completed: s.completed.saturating_sub(prev.completed),
        abandoned: s.abandoned.saturating_sub(prev.abandoned),
        expired: s.expired.saturating_sub(prev.expired),
        queue_counter: s.assigned,
        serving_number: s.serving,
        total_num_tokens: s.claimed,
        completed_sessions: s.completed,
        abandoned_sessions: s.abandoned,
        num_active_tokens: s.active,
    }
}
