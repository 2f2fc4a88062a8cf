//! What an operator looks at during a sale: each queue's state, numbers and warnings (the
//! console's overview and queue page, `anteroom watch`), read from the store the way any
//! coordinator process reads it, so every process answers the same.
//!
//! Warnings, each with its numbers, and the thresholds behind them:
//! - `origin_unhealthy`: the origin's last report shows 5% or more failed requests, or (health
//!   policy) a latency above the policy's target or errors above its `max_error_rate`;
//! - `origin_silent`: a health policy has had no report for 30 s (the law then holds its rate);
//! - `publisher_stale`: with a publisher configured, the queue's last publish to the edge is
//!   older than three publish intervals (at least 10 s): edges answer from older state;
//! - `line_stuck`: people wait in an open queue and the serving position has not moved for
//!   60 s (the message says why when it can: manual admission, the session cap full);
//! - `queue_lost`: the store lost the queue;
//! - overall: `store_down` (no answer to a PING) and `redis_errors` (a Redis command failed
//!   in the last minute, as this process saw it).

use shared::admission::{AdmissionPolicy, HealthReading};
use shared::wire::{
    OriginHealth, Overview, QueueConfig, QueueLive, QueueMode, QueueState, QueueSummary, Warning,
};

use crate::state::AppState;
use crate::store::{MinuteSample, StoreResult};

/// Share of failed origin requests that is unhealthy whatever the policy.
pub const UNHEALTHY_ERROR_RATE: f64 = 0.05;
/// Seconds without a health report before a health policy's origin counts as silent.
pub const SILENT_SECS: f64 = 30.0;
/// Seconds the serving position may stand still while people wait in an open queue.
pub const STUCK_SECS: u64 = 60;
/// Minutes of history on the queue page.
pub const LIVE_MINUTES: u64 = 60;

/// Where `q` stands at `now` (unix seconds).
pub fn queue_state(q: &QueueConfig, now: u64, lost: bool) -> QueueState {
    let adm = q.admission.as_ref();
    if lost {
        QueueState::Lost
    } else if q.mode == QueueMode::Closed || q.closes_at.is_some_and(|c| now >= c) {
        QueueState::Closed
    } else if q.mode == QueueMode::Passthrough {
        QueueState::Passthrough
    } else if q.prequeue_opens_at.is_some_and(|p| now >= p) && q.opens_at.is_some_and(|o| now < o) {
        QueueState::Prequeue
    } else if q.opens_at.is_some_and(|o| now < o) {
        QueueState::Scheduled
    } else if adm.is_some_and(|a| a.draining) {
        QueueState::Draining
    } else if adm.is_some_and(|a| a.paused) {
        QueueState::Paused
    } else {
        QueueState::Open
    }
}

/// The strategy's name.
pub fn strategy(q: &QueueConfig) -> &'static str {
    match q.admission.as_ref().map(|a| &a.policy) {
        None | Some(AdmissionPolicy::Manual) => "manual",
        Some(AdmissionPolicy::FixedRate { .. }) => "fixed_rate",
        Some(AdmissionPolicy::Capacity { .. }) => "capacity",
        Some(AdmissionPolicy::Health(_)) => "health",
    }
}

/// What the warnings of one queue are decided from.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The queue.
    pub queue: &'a QueueConfig,
    /// Where it stands.
    pub state: QueueState,
    /// Visitors waiting.
    pub waiting: u64,
    /// Live sessions, and the cap.
    pub active: u64,
    /// The policy's session cap.
    pub max_active: Option<u64>,
    /// The origin's last report and its age, seconds.
    pub health: Option<(HealthReading, f64)>,
    /// Seconds since the last publish: `None` never published; the outer `None`: no
    /// publisher configured.
    pub published_age: Option<Option<f64>>,
    /// The publish interval, seconds.
    pub publish_interval: f64,
    /// Seconds since the serving position last moved.
    pub serving_moved_age: u64,
    /// Seconds since the queue was created.
    pub age: u64,
}

fn warn(code: &str, message: String) -> Warning {
    Warning { code: code.into(), message }
}

/// The warnings of one queue.
pub fn warnings(f: &Facts) -> Vec<Warning> {
    let mut out = Vec::new();
    if f.state == QueueState::Lost {
        out.push(warn(
            "queue_lost",
            "the store lost this queue: re-create it or delete it; new visitors are held".into(),
        ));
    }
    let health_policy = match f.queue.admission.as_ref().map(|a| &a.policy) {
        Some(AdmissionPolicy::Health(h)) => Some(h),
        _ => None,
    };
    match (&f.health, health_policy) {
        (Some((h, age)), policy) => {
            let errors_high = h.error_rate >= UNHEALTHY_ERROR_RATE
                || policy.is_some_and(|p| h.error_rate > p.max_error_rate);
            let slow = policy.is_some_and(|p| h.latency_ms > p.target_latency_ms);
            if errors_high || slow {
                let target = policy
                    .map(|p| format!(" (target {:.0} ms)", p.target_latency_ms))
                    .unwrap_or_default();
                out.push(warn(
                    "origin_unhealthy",
                    format!(
                        "origin reports {:.1}% errors and {:.0} ms latency{target}, {age:.0} s ago",
                        h.error_rate * 100.0,
                        h.latency_ms
                    ),
                ));
            }
            if policy.is_some() && *age > SILENT_SECS {
                out.push(warn(
                    "origin_silent",
                    format!("no health report from the origin for {age:.0} s"),
                ));
            }
        }
        (None, Some(_)) if f.age as f64 > SILENT_SECS => {
            out.push(warn("origin_silent", "the origin has never reported its health".into()));
        }
        (None, _) => {}
    }
    if let Some(published) = f.published_age {
        let limit = (3.0 * f.publish_interval).max(10.0);
        match published {
            Some(age) if age > limit => out.push(warn(
                "publisher_stale",
                format!(
                    "last published to the edge {age:.0} s ago (expected every {:.0} s)",
                    f.publish_interval
                ),
            )),
            None if f.age as f64 > limit => out.push(warn(
                "publisher_stale",
                "never published to the edge: check the publisher's log and ANTEROOM_EDGE_SYNC_URL"
                    .into(),
            )),
            _ => {}
        }
    }
    if f.state == QueueState::Open && f.waiting > 0 && f.serving_moved_age >= STUCK_SECS {
        let why = if f.queue.admission.is_none() {
            ": manual admission, advance the serving position".to_string()
        } else if let Some(cap) = f.max_active.filter(|c| f.active >= *c) {
            format!(": all {cap} sessions in use")
        } else {
            String::new()
        };
        out.push(warn(
            "line_stuck",
            format!(
                "{} waiting and the line has not moved for {} s{why}",
                f.waiting, f.serving_moved_age
            ),
        ));
    }
    out
}

/// Places handed out per minute: from the newest sample at least a minute old (else the
/// oldest at least 10 s old) to now.
pub fn arrivals_per_min(samples: &[MinuteSample], now: u64, assigned: u64) -> f64 {
    let at = |s: &MinuteSample| s.minute * 60;
    let base = samples
        .iter()
        .rev()
        .find(|s| now.saturating_sub(at(s)) >= 60)
        .or_else(|| samples.iter().find(|s| now.saturating_sub(at(s)) >= 10));
    match base {
        Some(s) => {
            let secs = now.saturating_sub(at(s)).max(1) as f64;
            assigned.saturating_sub(s.assigned) as f64 * 60.0 / secs
        }
        None => 0.0,
    }
}

/// One queue's summary (and the samples read for it, newest two minutes and up).
async fn summary_with(
    state: &AppState,
    q: &QueueConfig,
    lost: bool,
    history_from: u64,
) -> StoreResult<(QueueSummary, Vec<MinuteSample>, MinuteSample)> {
    let store = state.store();
    let now = state.now();
    let now_ms = state.now_ms();
    let t0 = state.expiry_t0(q, now).await?;
    let stats = store.stats(q.id, now, t0).await?;
    let ctl = crate::control::load(state, q.id).await?;
    let estimate = state.estimate(q.id).unwrap_or(ctl.estimate);
    let health = crate::control::health(state, q.id)
        .await?
        .map(|h| (h, now_ms.saturating_sub(h.at_ms) as f64 / 1000.0));
    let samples = store.minutes(q.id, history_from).await?;
    let moved_at = store.serving_history(q.id, 1).await?.last().map(|&(_, at)| at);
    let published_ms = store.get_meta(q.id, "published").await?.and_then(|v| v.parse::<u64>().ok());
    let c = stats.facts.counters;
    let serving = state.floors().saw(q.id, c);
    let waiting = stats.facts.waiting();
    let policy = q.admission.as_ref().map(|a| &a.policy);
    let max_active = policy.and_then(|p| p.max_active()).map(u64::from);
    let target_rate = match policy {
        Some(AdmissionPolicy::FixedRate { rate_per_sec, .. }) => Some(*rate_per_sec),
        Some(AdmissionPolicy::Health(_)) => ctl.state.health.as_ref().map(|h| h.rate),
        _ => None,
    };
    let created = q.created_at / 1000;
    let qstate = queue_state(q, now, lost);
    let published_age = state
        .settings()
        .publish
        .as_ref()
        .map(|_| published_ms.map(|p| now_ms.saturating_sub(p) as f64 / 1000.0));
    let serving_moved_age = now.saturating_sub(moved_at.unwrap_or(created).max(created.min(now)));
    let facts = Facts {
        queue: q,
        state: qstate,
        waiting,
        active: stats.active,
        max_active,
        health,
        published_age,
        publish_interval: state.publish_interval().as_secs_f64(),
        serving_moved_age,
        age: now.saturating_sub(created),
    };
    let summary = QueueSummary {
        id: q.id,
        queue_id: q.queue_id.clone(),
        display_name: q.display_name.clone(),
        state: qstate,
        strategy: strategy(q).into(),
        serving_pos: serving,
        assigned: c.assigned,
        waiting,
        active: stats.active,
        max_active,
        admission_rate: estimate.rate,
        target_rate,
        arrivals_per_min: arrivals_per_min(&samples, now, c.assigned),
        eta_back: shared::eta::eta(&estimate, c.assigned.saturating_sub(serving)),
        origin: health.map(|(h, age_secs)| OriginHealth {
            latency_ms: h.latency_ms,
            error_rate: h.error_rate,
            in_flight: h.in_flight,
            age_secs,
        }),
        published_age_secs: published_age.flatten(),
        serving_moved_age_secs: serving_moved_age,
        warnings: warnings(&facts),
    };
    let live = MinuteSample::of(now / 60, &stats, estimate);
    Ok((summary, samples, live))
}

/// Every queue's summary, and what is off overall.
pub async fn overview(state: &AppState) -> StoreResult<Overview> {
    let now = state.now();
    let store_up = state.store().ping().await.is_ok();
    let mut warnings = Vec::new();
    if !store_up {
        warnings.push(warn(
            "store_down",
            "the store does not answer: enqueues and claims get 503".into(),
        ));
    }
    let redis_errors = state.metrics().map(|m| m.redis_errors());
    if let Some((total, Some(last_ms))) = redis_errors {
        let age = state.now_ms().saturating_sub(last_ms) / 1000;
        if age < 60 {
            warnings.push(warn(
                "redis_errors",
                format!("a Redis command failed {age} s ago ({total} failures since this process started)"),
            ));
        }
    }
    let mut queues = Vec::new();
    let mut all: Vec<(std::sync::Arc<QueueConfig>, bool)> =
        state.cached_queues().into_iter().map(|q| (q, false)).collect();
    all.extend(state.lost_queues().into_iter().map(|q| (q, true)));
    all.sort_by(|a, b| a.0.queue_id.cmp(&b.0.queue_id));
    if store_up {
        for (q, lost) in &all {
            let from = (now / 60).saturating_sub(2);
            queues.push(summary_with(state, q, *lost, from).await?.0);
        }
    }
    Ok(Overview {
        generated_at_ms: state.now_ms(),
        store: state.store().kind().to_string(),
        store_up,
        publishing: state.settings().publish.is_some(),
        redis_errors: redis_errors.map(|(total, _)| total),
        warnings,
        queues,
    })
}

/// One queue's summary, settings and the minutes of the last hour.
pub async fn live(state: &AppState, q: &QueueConfig) -> StoreResult<QueueLive> {
    let now = state.now();
    let from = (now / 60).saturating_sub(LIVE_MINUTES);
    let (summary, samples, live) = summary_with(state, q, false, from).await?;
    let mut points: Vec<crate::report::Point> =
        samples.iter().map(|s| (s.minute * 60, *s)).collect();
    if points.last().is_none_or(|(t, _)| *t < now) {
        points.push((now, live));
    }
    Ok(QueueLive { queue: q.clone(), summary, minutes: crate::report::rows(&points) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::admission::AdmissionConfig;

    fn q() -> QueueConfig {
        QueueConfig { created_at: 1_000_000, ..QueueConfig::with_defaults("q") }
    }

    fn facts(queue: &QueueConfig) -> Facts<'_> {
        Facts {
            queue,
            state: queue_state(queue, 2_000, false),
            waiting: 0,
            active: 0,
            max_active: None,
            health: None,
            published_age: Some(Some(1.0)),
            publish_interval: 2.0,
            serving_moved_age: 0,
            age: 1_000,
        }
    }

    fn codes(f: &Facts) -> Vec<String> {
        warnings(f).into_iter().map(|w| w.code).collect()
    }

    #[test]
    fn states_follow_mode_times_and_switches() {
        let mut x = q();
        assert_eq!(queue_state(&x, 100, false), QueueState::Open);
        assert_eq!(queue_state(&x, 100, true), QueueState::Lost);
        x.opens_at = Some(200);
        assert_eq!(queue_state(&x, 100, false), QueueState::Scheduled);
        x.prequeue_opens_at = Some(50);
        assert_eq!(queue_state(&x, 100, false), QueueState::Prequeue);
        assert_eq!(queue_state(&x, 200, false), QueueState::Open);
        let policy = AdmissionPolicy::Capacity { max_active: 3 };
        x.admission = Some(AdmissionConfig { policy, paused: true, draining: false });
        assert_eq!(queue_state(&x, 200, false), QueueState::Paused);
        if let Some(a) = x.admission.as_mut() {
            a.draining = true;
        }
        assert_eq!(queue_state(&x, 200, false), QueueState::Draining);
        x.closes_at = Some(300);
        assert_eq!(queue_state(&x, 300, false), QueueState::Closed);
        x.mode = QueueMode::Passthrough;
        assert_eq!(queue_state(&x, 250, false), QueueState::Passthrough);
    }

    #[test]
    fn warnings_say_what_is_off_with_numbers() {
        let mut x = q();
        assert!(codes(&facts(&x)).is_empty());
        // Manual queue, people waiting, nothing moved for two minutes.
        let f = Facts { waiting: 40, serving_moved_age: 120, ..facts(&x) };
        let w = warnings(&f);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].message,
            "40 waiting and the line has not moved for 120 s: manual admission, advance the serving position"
        );
        // Nobody waiting, or paused: not stuck.
        assert!(codes(&Facts { serving_moved_age: 120, ..facts(&x) }).is_empty());
        let policy = AdmissionPolicy::Capacity { max_active: 3 };
        x.admission = Some(AdmissionConfig { policy, paused: false, draining: false });
        let f = Facts {
            waiting: 40,
            active: 3,
            max_active: Some(3),
            serving_moved_age: 61,
            ..facts(&x)
        };
        assert!(warnings(&f)[0].message.ends_with(": all 3 sessions in use"));
        if let Some(a) = x.admission.as_mut() {
            a.paused = true;
        }
        let f = Facts { waiting: 40, serving_moved_age: 61, ..facts(&x) };
        assert!(codes(&f).is_empty(), "a paused line stands still on purpose");
        // The origin: errors over 5% whatever the policy.
        let h = |latency_ms, error_rate| HealthReading {
            latency_ms,
            error_rate,
            in_flight: None,
            at_ms: 0,
        };
        let f = Facts { health: Some((h(100.0, 0.08), 3.0)), ..facts(&x) };
        assert_eq!(
            warnings(&f)[0].message,
            "origin reports 8.0% errors and 100 ms latency, 3 s ago"
        );
        assert!(codes(&Facts { health: Some((h(900.0, 0.01), 3.0)), ..facts(&x) }).is_empty());
        // A health policy: its target, and silence.
        let hp: shared::admission::HealthPolicy = serde_json::from_value(
            serde_json::json!({"max_rate": 50.0, "target_latency_ms": 400.0}),
        )
        .expect("policy");
        x.admission = Some(AdmissionConfig {
            policy: AdmissionPolicy::Health(hp),
            paused: false,
            draining: false,
        });
        let f = Facts { health: Some((h(900.0, 0.01), 45.0)), ..facts(&x) };
        assert_eq!(codes(&f), ["origin_unhealthy", "origin_silent"]);
        assert!(warnings(&f)[0].message.contains("(target 400 ms)"));
        assert_eq!(codes(&Facts { health: None, ..facts(&x) }), ["origin_silent"]);
        // The publisher: three intervals, at least 10 s; never, once the queue is older.
        let x = q();
        assert!(codes(&Facts { published_age: Some(Some(9.0)), ..facts(&x) }).is_empty());
        let f = Facts { published_age: Some(Some(11.0)), ..facts(&x) };
        assert_eq!(
            warnings(&f)[0].message,
            "last published to the edge 11 s ago (expected every 2 s)"
        );
        assert_eq!(codes(&Facts { published_age: Some(None), ..facts(&x) }), ["publisher_stale"]);
        assert!(codes(&Facts { published_age: None, ..facts(&x) }).is_empty(), "no publisher");
        assert_eq!(codes(&Facts { state: QueueState::Lost, ..facts(&x) }), ["queue_lost"]);
    }

    #[test]
    fn arrivals_per_minute_come_from_the_samples() {
        let s = |minute, assigned| MinuteSample { minute, assigned, ..Default::default() };
        // Samples at 600 s (100 handed out) and 660 s (160); now 690 s with 190.
        let samples = [s(10, 100), s(11, 160)];
        assert_eq!(arrivals_per_min(&samples, 690, 190), 90.0 * 60.0 / 90.0);
        // Only a fresh sample: over what there is, from 10 s on.
        assert_eq!(arrivals_per_min(&[s(11, 160)], 690, 190), 60.0);
        assert_eq!(arrivals_per_min(&[s(11, 160)], 665, 190), 0.0);
        assert_eq!(arrivals_per_min(&[], 690, 190), 0.0);
    }
}
