//! The coordinator's scenarios: enqueue storm, status, and memory with token issue (the
//! surge is in `surge`, the edge's in `edge`, the machinery they share in `harness`); each
//! measures its baselines in the same run and returns plain numbers for the report.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{
    Env, Seen, Tickets, compare, create_queue, increment_serving, record_assigned, redis_benchmark,
    secs, wrk,
};
use crate::procs::{Coordinator, Redis};
use crate::results::{Compare, Knobs, METRICS_OFF, Memory, Outcome};
use loadgen::{self as load, Call, Plan};

/// Enqueue storm: `assign_queue_pos` against bare axum, the one-call handler and
/// `redis-benchmark`, at each concurrency (and the coordinator with metrics off, when asked).
pub async fn storm(env: &Env, knobs: &Knobs) -> anyhow::Result<Compare> {
    create_queue(&env.coord, "storm", "").await?;
    let body = "queue_id=storm";
    let mut targets = vec![
        ("bare axum", env.axum.addr, env.axum.guard.pid(), Call::form("/assign_queue_pos", body)),
        (
            "one redis call",
            env.onecall.addr,
            env.onecall.guard.pid(),
            Call::form("/assign_queue_pos", body),
        ),
        (
            "coordinator",
            env.coord.public,
            env.coord.guard.pid(),
            Call::form("/assign_queue_pos", body),
        ),
    ];
    // The same binary with metrics off, on the same Redis and queue, in the same rounds.
    if let Some(off) = &env.coord_off {
        let call = Call::form("/assign_queue_pos", body);
        targets.push((METRICS_OFF, off.public, off.guard.pid(), call));
    }
    let mut out = Compare::default();
    for &c in &knobs.concurrency {
        out.rows.extend(compare(knobs, c, env.redis.pid(), &targets).await?);
        let n = ((knobs.secs * 60_000.0) as u64).max(1000);
        let rb = tokio::task::block_in_place(|| redis_benchmark(&env.redis, c, n))?;
        eprintln!("  c={c} redis-benchmark evalsha: {:.0}/s", rb.rps);
        out.redis_bench.push(rb);
        let has_wrk = std::process::Command::new("wrk").arg("--version").output().is_ok();
        if has_wrk && !knobs.smoke {
            for (name, addr, _, call) in &targets {
                let w = tokio::task::block_in_place(|| wrk(name, *addr, c, knobs.secs, call))?;
                eprintln!("  c={c} wrk {name}: {:.0} req/s p99 {:.2} ms", w.rps, w.p99_ms);
                out.wrk.push(w);
            }
        }
    }
    Ok(out)
}

/// Status at the coordinator: `serving_pos` against bare axum.
pub async fn status(env: &Env, knobs: &Knobs) -> anyhow::Result<Compare> {
    create_queue(&env.coord, "status", "").await?;
    increment_serving(&env.coord, "status", 7).await?;
    let targets = [
        ("bare axum", env.axum.addr, env.axum.guard.pid(), Call::get("/serving_pos/status")),
        ("coordinator", env.coord.public, env.coord.guard.pid(), Call::get("/serving_pos/status")),
    ];
    let mut out = Compare::default();
    for &c in &knobs.concurrency {
        out.rows.extend(compare(knobs, c, env.redis.pid(), &targets).await?);
        if !knobs.smoke && std::process::Command::new("wrk").arg("--version").output().is_ok() {
            for (name, addr, _, call) in &targets {
                let w = tokio::task::block_in_place(|| wrk(name, *addr, c, knobs.secs, call))?;
                eprintln!("  c={c} wrk {name}: {:.0} req/s p99 {:.2} ms", w.rps, w.p99_ms);
                out.wrk.push(w);
            }
        }
    }
    Ok(out)
}

/// Memory per queued visitor and per session, with the enqueue and token-issue rates, on a
/// Redis and coordinator of its own (so nothing else is counted).
pub async fn memory(env: &Env, knobs: &Knobs) -> anyhow::Result<Memory> {
    let redis = Redis::start();
    let coord = crate::procs::start_coordinator(&knobs.coordinator, &redis.url())?;
    eprintln!("  memory pids: redis {} coordinator {}", redis.pid(), coord.guard.pid());
    let id = create_queue(&coord, "mem", "").await?;
    // Let the coordinator's registry refresh settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = redis.used_memory();
    let n = knobs.enqueues;
    let k = knobs.sessions.min(n);
    let pids = Pids { coord: coord.guard.pid(), redis: redis.pid() };
    let enqueued = enqueue(&coord, pids, n, k).await?;
    let after_enqueue = redis.used_memory();
    let (claim, claim_cpu_us) = claim(&coord, pids, k, enqueued.tickets).await?;
    let after_sessions = redis.used_memory();
    let keys = key_usage(&redis, id);
    drop(coord);
    drop(redis);
    let claim_baseline = load::run(Plan::fixed(
        env.axum.addr,
        64,
        secs(knobs.warmup),
        secs(claim.secs.clamp(0.5, knobs.secs)),
        Call::form("/generate_token", "queue_id=mem&request_id=x"),
    ))
    .await?;
    Ok(Memory {
        enqueues: n,
        sessions: k,
        before,
        after_enqueue,
        after_sessions,
        keys,
        enqueue: enqueued.outcome,
        claim,
        claim_baseline,
        position_faults: enqueued.position_faults,
        enqueue_cpu_us: enqueued.cpu_us,
        claim_cpu_us,
    })
}

/// The memory scenario's coordinator and redis-server, whose CPU time is counted per request.
#[derive(Debug, Clone, Copy)]
struct Pids {
    coord: u32,
    redis: u32,
}

impl Pids {
    /// CPU seconds used so far by the coordinator and by redis-server.
    fn cpu(self) -> (f64, f64) {
        (
            crate::procs::cpu_secs(self.coord).unwrap_or(0.0),
            crate::procs::cpu_secs(self.redis).unwrap_or(0.0),
        )
    }

    /// CPU microseconds per request of each since the sample `a`, over `n` requests.
    fn per_request(self, a: (f64, f64), n: u64) -> (f64, f64) {
        let b = self.cpu();
        (1e6 * (b.0 - a.0) / n.max(1) as f64, 1e6 * (b.1 - a.1) / n.max(1) as f64)
    }
}

/// What the memory scenario's enqueue run leaves for the next steps.
struct Enqueued {
    /// The run.
    outcome: Outcome,
    /// CPU per enqueue of the coordinator and of redis-server, microseconds.
    cpu_us: (f64, f64),
    /// Positions seen twice, or never, among `1..=n`.
    position_faults: u64,
    /// The tickets of positions `1..=k` in order (empty where none was answered).
    tickets: Vec<String>,
}

/// Enqueues `n` visitors over 1,024 connections (count-bounded), checks that every position
/// was answered once, and keeps the tickets of the first `k`.
async fn enqueue(coord: &Coordinator, pids: Pids, n: u64, k: u64) -> anyhow::Result<Enqueued> {
    let seen = Arc::new(Seen::new(n));
    let tickets: Tickets = Arc::new(Mutex::new(vec![None; usize::try_from(k)? + 1]));
    let inspect = record_assigned(seen.clone(), tickets.clone(), Some(k));
    eprintln!("  enqueueing {n} visitors over 1024 connections");
    let c0 = pids.cpu();
    let outcome = load::run(Plan {
        addr: coord.public,
        connections: 1024,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(n),
        schedule: None,
        make: Arc::new(|_| Some(Call::form("/assign_queue_pos", "queue_id=mem"))),
        inspect: Some(inspect),
    })
    .await?;
    eprintln!(
        "  enqueue: {:.0}/s p50 {:.2} ms p99 {:.2} ms failures {}",
        outcome.rps,
        outcome.p50_ms,
        outcome.p99_ms,
        outcome.failures()
    );
    let cpu_us = pids.per_request(c0, outcome.ok);
    let position_faults = seen.dups.load(Ordering::Relaxed)
        + seen.out_of_range.load(Ordering::Relaxed)
        + seen.missing(n);
    let tickets =
        std::mem::take(&mut *tickets.lock().map_err(|_| anyhow::anyhow!("ticket lock poisoned"))?)
            .into_iter()
            .skip(1)
            .map(Option::unwrap_or_default)
            .collect();
    Ok(Enqueued { outcome, cpu_us, position_faults, tickets })
}

/// Moves the serving position by `k` and claims the tokens of the `k` tickets over 64
/// connections (count-bounded); returns the run and the CPU per claim of the coordinator and
/// of redis-server, microseconds.
async fn claim(
    coord: &Coordinator,
    pids: Pids,
    k: u64,
    tickets: Vec<String>,
) -> anyhow::Result<(Outcome, (f64, f64))> {
    increment_serving(coord, "mem", k).await?;
    let tickets = Arc::new(tickets);
    eprintln!("  claiming {k} tokens over 64 connections");
    let c1 = pids.cpu();
    let claim = load::run(Plan {
        addr: coord.public,
        connections: 64,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(k),
        schedule: None,
        make: Arc::new(move |i| {
            let t = tickets.get(usize::try_from(i).ok()?)?;
            Some(Call::form("/generate_token", format!("queue_id=mem&request_id={t}")))
        }),
        inspect: None,
    })
    .await?;
    eprintln!(
        "  claim: {:.0}/s p50 {:.2} ms p99 {:.2} ms failures {}",
        claim.rps,
        claim.p50_ms,
        claim.p99_ms,
        claim.failures()
    );
    let cpu_us = pids.per_request(c1, claim.ok);
    Ok((claim, cpu_us))
}

/// `MEMORY USAGE` of each key of queue `id`.
fn key_usage(redis: &Redis, id: u64) -> Vec<(String, u64)> {
    let mut keys = Vec::new();
    for what in ["ctr", "srv", "claimed", "nclaimed", "sess", "sinfo", "rev", "hist", "arr"] {
        let key = format!("aq:{{q{id}}}:{what}");
        let u = redis.key_usage(&key);
        keys.push((key, u));
    }
    keys
}
