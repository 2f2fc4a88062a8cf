//! The admission controller: once a second, for every queue with an automatic strategy,
//! decide how far to advance the serving position (the pure law in `shared::admission`)
//! and apply it exactly once per tick, however many coordinator processes run.
//!
//! Two guards: a per-queue lease, so normally one process does the work, and a fenced write
//! (`Store::apply_tick` refuses a tick number already applied), so a process that lost its
//! lease mid-tick cannot advance the serving position a second time.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::admission::{ControllerState, HealthReading, TickDecision, TickInputs};
use shared::eta::RateEstimate;
use shared::wire::{EventData, QueueConfig, ServingEvent};
use tokio::sync::watch;

use crate::state::AppState;
use crate::store::StoreResult;

/// Tick period.
pub const TICK: Duration = Duration::from_secs(1);
/// Controller lease lifetime; renewed every tick.
const LEASE_MS: u64 = 3000;

/// What the controller keeps per queue between ticks (stored as JSON, meta `ctl`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Controlled {
    /// The law's memory.
    pub state: ControllerState,
    /// Measured admission rate and spread (for ETAs).
    pub estimate: RateEstimate,
    /// The last decision, for the operator's status view.
    pub last: Option<TickDecision>,
    /// The tick it was taken at (unix seconds).
    pub tick: u64,
}

/// Loads a queue's controller record.
pub async fn load(state: &AppState, queue: u32) -> StoreResult<Controlled> {
    Ok(state
        .store()
        .get_meta(queue, "ctl")
        .await?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// The last health reading reported for a queue.
pub async fn health(state: &AppState, queue: u32) -> StoreResult<Option<HealthReading>> {
    Ok(state.store().get_meta(queue, "health").await?.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Runs one tick for `q` if this process holds its lease; returns the decision applied.
pub async fn tick_queue(
    state: &AppState,
    q: &QueueConfig,
    owner: &str,
) -> StoreResult<Option<TickDecision>> {
    let Some(cfg) = &q.admission else { return Ok(None) };
    let store = state.store();
    if !store.lease(q.id, "control", owner.to_string(), LEASE_MS).await? {
        return Ok(None);
    }
    let now_ms = state.now_ms();
    let tick = now_ms / 1000;
    let mut ctl = load(state, q.id).await?;
    if ctl.tick >= tick {
        return Ok(None);
    }
    let now = now_ms / 1000;
    if cfg.paused {
        // Claims answer 503 while paused: the served places' clocks stand still.
        state.note_pause(q.id, now).await;
    }
    let w = state.waiting_facts_at(q, now).await?;
    let active = store.active_sessions(q.id, now).await?;
    let passed = w.counters.serving.min(w.counters.assigned);
    let expired_unclaimed = w.expired_upto.saturating_sub(w.claimed_upto);
    let inputs = TickInputs {
        now_ms,
        serving_pos: w.counters.serving,
        assigned: w.counters.assigned,
        active_sessions: active,
        unclaimed_passed: passed.saturating_sub(w.claimed_total).saturating_sub(expired_unclaimed),
        health: health(state, q.id).await?,
    };
    let decision = shared::admission::tick(cfg, &mut ctl.state, &inputs);
    ctl.estimate.update(decision.admit, decision.dt_ms);
    ctl.last = Some(decision);
    ctl.tick = tick;
    let json = serde_json::to_string(&ctl).unwrap_or_default();
    let applied = store.apply_tick(q.id, tick, decision.admit, json, now, q.keep_secs()).await?;
    state.forget_status(q.id, None);
    if let Some(serving) = applied.filter(|_| decision.admit > 0) {
        let event = ServingEvent {
            event_id: q.queue_id.clone(),
            queue_id: q.queue_id.clone(),
            previous: serving - decision.admit,
            serving_num: serving,
            by: "controller".into(),
        };
        state.webhooks().emit(&q.queue_id, now, EventData::ServingPositionAdvanced(event));
    }
    Ok(applied.map(|_| decision))
}

/// Ticks every queue with an automatic strategy until `stop` fires.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let owner = format!("{}-{}", std::process::id(), state.now_ms());
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        for q in state.cached_queues().iter().filter(|q| q.admission.is_some()) {
            if let Err(e) = tick_queue(&state, q, &owner).await {
                tracing::warn!(queue = %q.queue_id, cause = %e, "admission tick failed");
            }
        }
    }
}
