//! One conformance suite for every store: in-memory, a real Redis, a real 3-master Redis
//! Cluster. Each assertion is about queue semantics, not about how a store keeps them.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;

use coordinator::store::memory::MemoryStore;
use coordinator::store::redis::RedisStore;
use coordinator::store::{
    Assigned, AuditFrom, Claim, ClaimWaits, Counters, Created, Ended, Floor, MinuteSample, Outcome,
    PreQueued, RecordKind, ReplayKey, Session, Store, StoredSecrets,
};

/// Claims in this suite record no particular waits.
const W: ClaimWaits = ClaimWaits { served: 0, claimed: 0 };
use shared::wire::QueueConfig;

fn cfg(slug: &str) -> QueueConfig {
    QueueConfig {
        enable_queue_position_expiry: true,
        position_expiry_second: 60,
        paths: vec!["/".into()],
        ..QueueConfig::with_defaults(slug)
    }
}

async fn assign_n(s: &dyn Store, q: u32, n: usize, now: u64, keep: u64) -> u64 {
    let done = s.assign(q, vec![None; n], now, keep, Floor::default()).await.unwrap();
    assert!(done.replayed.is_empty());
    done.last
}

fn nonce(b: u8, expires_at: u64) -> Option<ReplayKey> {
    Some(ReplayKey { fingerprint: [b; 8], expires_at })
}

async fn replays_and_versions(s: &dyn Store) {
    let q = create(s, "replay").await;
    // Replay sets expire in Redis's real time, so use real times here.
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (soon, later) = (t + 60, t + 130);
    // Two fresh nonces and a plain caller: three places.
    let done = s
        .assign(q.id, vec![nonce(1, soon), None, nonce(2, later)], t, 600, Floor::default())
        .await
        .unwrap();
    assert_eq!(done, Assigned { last: 3, replayed: vec![], raised: None });
    // A replayed nonce gets nothing; the others still get consecutive places.
    let batch = vec![nonce(3, soon), nonce(1, soon), nonce(4, soon)];
    let done = s.assign(q.id, batch, t + 1, 600, Floor::default()).await.unwrap();
    assert_eq!(done, Assigned { last: 5, replayed: vec![1], raised: None });
    // Within one batch too.
    let done = s
        .assign(q.id, vec![nonce(5, soon), nonce(5, soon)], t + 2, 600, Floor::default())
        .await
        .unwrap();
    assert_eq!(done, Assigned { last: 6, replayed: vec![1], raised: None });
    let done = s.assign(q.id, vec![nonce(2, later)], t + 3, 600, Floor::default()).await.unwrap();
    assert_eq!(
        done,
        Assigned { last: 6, replayed: vec![0], raised: None },
        "all refused: nothing assigned"
    );
    assert_eq!(s.counters(q.id).await.unwrap().assigned, 6);

    // The pre-queue shares the replay set: a nonce buys one arrival, and a nonce spent in
    // the pre-queue buys no FIFO place later (nor the reverse).
    let pq = create(s, "replay-pq").await;
    assert_eq!(s.assign_prequeue(pq.id, nonce(7, soon)).await.unwrap(), PreQueued::Arrival(1));
    assert_eq!(s.assign_prequeue(pq.id, nonce(7, soon)).await.unwrap(), PreQueued::Replayed);
    assert_eq!(s.assign_prequeue(pq.id, None).await.unwrap(), PreQueued::Arrival(2));
    let done = s.assign(pq.id, vec![nonce(1, soon)], t, 600, Floor::default()).await.unwrap();
    assert_eq!(done.replayed, vec![] as Vec<usize>, "nonces are per queue");
    assert_eq!(s.assign_prequeue(pq.id, nonce(1, soon)).await.unwrap(), PreQueued::Replayed);
    assert_eq!(s.draw(pq.id).await.unwrap(), (1, 2));
    // After the draw nothing is handed out and the nonce is not spent: FIFO takes it.
    assert_eq!(s.assign_prequeue(pq.id, nonce(8, soon)).await.unwrap(), PreQueued::Drawn);
    let done = s
        .assign(pq.id, vec![nonce(8, soon), nonce(7, soon)], t, 600, Floor::default())
        .await
        .unwrap();
    assert_eq!(done, Assigned { last: 4, replayed: vec![1], raised: None });

    let v1 = s.next_version(q.id, 5).await.unwrap();
    let v2 = s.next_version(q.id, 5).await.unwrap();
    assert!(v2 > v1);
    // Versions are at least the clock, so they keep rising after the store lost its counter.
    assert_eq!(s.next_version(q.id, 1_800_000_000_000).await.unwrap(), 1_800_000_000_000);
    assert_eq!(s.next_version(q.id, 5).await.unwrap(), 1_800_000_000_001);

    assert!(s.lease(q.id, "publish", "a".into(), 60_000).await.unwrap());
    assert!(s.lease(q.id, "publish", "a".into(), 60_000).await.unwrap(), "the owner renews");
    assert!(!s.lease(q.id, "publish", "b".into(), 60_000).await.unwrap(), "held by a");
    assert!(s.lease(q.id, "other", "b".into(), 60_000).await.unwrap(), "leases are per name");
    assert!(s.lease(q.id, "short", "a".into(), 1).await.unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !s.lease(q.id, "short", "b".into(), 1000).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "an expired lease is free again");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    s.increment_serving(q.id, 2, 1010, 600).await.unwrap();
    s.increment_serving(q.id, 3, 1020, 600).await.unwrap();
    s.increment_serving(q.id, 1, 1030, 600).await.unwrap();
    assert_eq!(s.serving_history(q.id, 2).await.unwrap(), vec![(5, 1020), (6, 1030)]);
    assert_eq!(s.serving_history(q.id, 10).await.unwrap(), vec![(2, 1010), (5, 1020), (6, 1030)]);
}

async fn create(s: &dyn Store, slug: &str) -> QueueConfig {
    match s.create_queue(cfg(slug)).await.unwrap() {
        Created::Ok(q) => *q,
        Created::SlugTaken => panic!("slug {slug} taken"),
    }
}

async fn registry(s: &dyn Store) {
    let a = create(s, "reg-a").await;
    let b = create(s, "reg-b").await;
    assert!(a.id != b.id && a.id > 0 && b.id > 0 && a.id < 1 << 31 && b.id < 1 << 31);
    assert_eq!(s.create_queue(cfg("reg-a")).await.unwrap(), Created::SlugTaken);
    let mut listed = s.list_queues().await.unwrap();
    listed.sort_by_key(|q| q.id);
    assert!(listed.contains(&a) && listed.contains(&b));

    let updated = QueueConfig { token_validity_second: 42, ..a.clone() };
    assert!(s.update_queue(updated.clone()).await.unwrap());
    assert!(s.list_queues().await.unwrap().contains(&updated));
    assert!(!s.update_queue(QueueConfig { id: 999_999, ..a.clone() }).await.unwrap());

    // Give the queue something in every kind of key, then delete it: Redis must forget all
    // of it, as the memory store does.
    assign_n(s, a.id, 5, 1000, 600).await;
    s.next_version(a.id, 7).await.unwrap();
    s.increment_serving(a.id, 3, 1001, 600).await.unwrap();
    assert!(matches!(s.claim(a.id, 1, 1002, 300, 0, W).await.unwrap(), Claim::Issued(_)));
    assert!(matches!(s.claim(a.id, 2, 1002, 300, 0, W).await.unwrap(), Claim::Issued(_)));
    s.end_session(a.id, 2, format!("{}.2", a.id), 1003, Outcome::Completed).await.unwrap();
    s.put_meta(a.id, "health", "{}".into()).await.unwrap();
    s.put_meta(a.id, "published", "1000".into()).await.unwrap();
    s.init_meta(a.id, "seed", "ab".into()).await.unwrap();
    s.add_pause(a.id, 1000, 1001).await.unwrap();
    assert_eq!(s.assign_prequeue(a.id, None).await.unwrap(), PreQueued::Arrival(1));
    s.draw(a.id).await.unwrap();
    assert!(s.lease(a.id, "publish", "x".into(), 60_000).await.unwrap());
    assert!(s.delete_queue(a.id, None, 5000).await.unwrap());
    assert!(!s.delete_queue(a.id, None, 5001).await.unwrap());
    assert_eq!(s.counters(a.id).await.unwrap(), Counters::default(), "state deleted");
    assert_eq!(s.next_version(a.id, 0).await.unwrap(), 1, "every key of the queue deleted");
    assert_eq!(s.active_sessions(a.id, 1004).await.unwrap(), 0);
    assert_eq!(s.revoked(a.id, 1004).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.serving_history(a.id, 10).await.unwrap(), vec![]);
    assert_eq!(s.pauses(a.id).await.unwrap(), vec![]);
    assert_eq!(s.drawn(a.id).await.unwrap(), None);
    assert_eq!(s.get_meta(a.id, "health").await.unwrap(), None);
    assert_eq!(s.get_meta(a.id, "seed").await.unwrap(), None);
    assert_eq!(s.get_meta(a.id, "published").await.unwrap(), None);
    assert!(s.lease(a.id, "publish", "y".into(), 60_000).await.unwrap(), "leases gone too");
    assert!(!s.place(a.id, 1).await.unwrap().claimed, "the claimed bitmap gone");
    let again = create(s, "reg-a").await;
    assert!(again.id != a.id && again.id != b.id, "a re-created queue gets a new id");
    // The deletion leaves a tombstone naming the id, the explicit act the edge waits for.
    let tombs = s.tombstones(4000).await.unwrap();
    let tomb = tombs.iter().find(|t| t.id == a.id).unwrap();
    assert_eq!((tomb.queue_id.as_str(), tomb.deleted_at), ("reg-a", 5000));
    assert!(s.tombstones(5001).await.unwrap().iter().all(|t| t.id != a.id), "since filters");
    // A queue the store no longer has (it lost it) can still be deleted by a caller that
    // knows it, leaving a tombstone.
    let ghost = QueueConfig { id: 77, ..cfg("reg-ghost") };
    assert!(!s.delete_queue(77, None, 5002).await.unwrap());
    assert!(s.delete_queue(77, Some(ghost), 5003).await.unwrap());
    assert!(
        s.tombstones(5003).await.unwrap().iter().any(|t| t.id == 77 && t.queue_id == "reg-ghost")
    );
    // Many creations: never a repeated id.
    let mut ids = std::collections::HashSet::new();
    for i in 0..200 {
        let q = create(s, &format!("reg-many-{i}")).await;
        assert!(ids.insert(q.id));
    }
}

/// Seconds a queue's expiry clock stood still: merged, bounded, per queue.
async fn pauses(s: &dyn Store) {
    let q = create(s, "pauses").await;
    assert_eq!(s.pauses(q.id).await.unwrap(), vec![]);
    for t in [100, 101, 102, 200] {
        s.add_pause(q.id, t, t + 1).await.unwrap();
    }
    s.add_pause(q.id, 150, 150).await.unwrap(); // empty: nothing
    assert_eq!(s.pauses(q.id).await.unwrap(), vec![(100, 103), (200, 201)]);
    s.add_pause(q.id, 90, 250).await.unwrap();
    assert_eq!(s.pauses(q.id).await.unwrap(), vec![(90, 250)]);
    for i in 0..70u64 {
        s.add_pause(q.id, 1000 + 10 * i, 1001 + 10 * i).await.unwrap();
    }
    let kept = s.pauses(q.id).await.unwrap();
    assert_eq!(kept.len(), coordinator::store::PAUSES_KEPT);
    assert_eq!(kept.last(), Some(&(1690, 1691)));
    assert!(s.delete_queue(q.id, None, 1).await.unwrap());
    assert_eq!(s.pauses(q.id).await.unwrap(), vec![], "deleted with the queue");
}

/// A counter below a caller's floor (the store lost writes) is raised before anything more
/// is handed out; the serving position is raised to its floor.
async fn floors(s: &dyn Store) {
    let q = create(s, "floors").await;
    assert_eq!(assign_n(s, q.id, 10, 1000, 600).await, 10);
    let floor = Floor { assigned: 25, serving: 4, gap: 100 };
    let done = s.assign(q.id, vec![None, None], 1001, 600, floor).await.unwrap();
    assert_eq!(done, Assigned { last: 127, replayed: vec![], raised: Some((10, 125)) });
    let done = s.assign(q.id, vec![None], 1002, 600, floor).await.unwrap();
    assert_eq!(done.raised, None, "at or above its floor: nothing raised");
    let r = s.raise_counters(q.id, Floor { assigned: 200, serving: 4, gap: 50 }).await.unwrap();
    let r = r.unwrap();
    assert_eq!(
        (r.found, r.now),
        (Counters { assigned: 128, serving: 0 }, Counters { assigned: 250, serving: 4 },)
    );
    assert_eq!(
        s.raise_counters(q.id, Floor { assigned: 200, serving: 4, gap: 50 }).await.unwrap(),
        None
    );
    assert_eq!(s.counters(q.id).await.unwrap(), Counters { assigned: 250, serving: 4 });
}

async fn positions(s: &dyn Store) {
    let q = create(s, "pos").await;
    let other = create(s, "pos-other").await;
    assert_eq!(assign_n(s, q.id, 1, 1000, 600).await, 1);
    assert_eq!(assign_n(s, q.id, 10, 1000, 600).await, 11);
    assert_eq!(assign_n(s, q.id, 3, 1001, 600).await, 14);
    assert_eq!(assign_n(s, other.id, 2, 1001, 600).await, 2, "queues are isolated");
    assert_eq!(s.counters(q.id).await.unwrap(), Counters { assigned: 14, serving: 0 });

    let f = s.place(q.id, 5).await.unwrap();
    assert_eq!((f.passed_at, f.claimed), (None, false));
    assert_eq!(s.increment_serving(q.id, 4, 1010, 600).await.unwrap(), 4);
    assert_eq!(s.increment_serving(q.id, 3, 1020, 600).await.unwrap(), 7);
    assert_eq!(s.place(q.id, 4).await.unwrap().passed_at, Some(1010));
    assert_eq!(s.place(q.id, 5).await.unwrap().passed_at, Some(1020));
    assert_eq!(s.place(q.id, 8).await.unwrap().passed_at, None);
    assert_eq!(s.counters(q.id).await.unwrap(), Counters { assigned: 14, serving: 7 });
    assert_eq!(s.counters(other.id).await.unwrap(), Counters { assigned: 2, serving: 0 });
}

async fn sessions(s: &dyn Store) {
    let q = create(s, "sess").await;
    assign_n(s, q.id, 10, 1000, 600).await;
    s.increment_serving(q.id, 10, 1000, 600).await.unwrap();

    let first = s.claim(q.id, 1, 1100, 300, 0, W).await.unwrap();
    assert_eq!(first, Claim::Issued(Session { iat: 1100, exp: 1400 }));
    assert_eq!(
        s.claim(q.id, 1, 1150, 300, 0, W).await.unwrap(),
        Claim::Existing(Session { iat: 1100, exp: 1400 })
    );
    assert!(s.place(q.id, 1).await.unwrap().claimed);
    assert_eq!(
        s.claim(q.id, 2, 1100, 300, 2, W).await.unwrap(),
        Claim::Issued(Session { iat: 1100, exp: 1400 })
    );
    assert_eq!(s.claim(q.id, 3, 1100, 300, 2, W).await.unwrap(), Claim::Full { active: 2 });
    assert!(!s.place(q.id, 3).await.unwrap().claimed, "a refused claim leaves no trace");
    assert_eq!(s.active_sessions(q.id, 1100).await.unwrap(), 2);

    assert_eq!(
        s.end_session(q.id, 1, "j1".into(), 1200, Outcome::Completed).await.unwrap(),
        Ended::Now
    );
    assert_eq!(
        s.end_session(q.id, 1, "j1".into(), 1201, Outcome::Completed).await.unwrap(),
        Ended::Already
    );
    assert_eq!(
        s.end_session(q.id, 5, "j5".into(), 1201, Outcome::Completed).await.unwrap(),
        Ended::NeverClaimed
    );
    assert_eq!(
        s.claim(q.id, 1, 1202, 300, 0, W).await.unwrap(),
        Claim::Ended,
        "never a second session"
    );
    assert_eq!(s.active_sessions(q.id, 1202).await.unwrap(), 1);
    assert_eq!(
        s.claim(q.id, 3, 1203, 300, 2, W).await.unwrap(),
        Claim::Issued(Session { iat: 1203, exp: 1503 }),
        "the freed slot is usable"
    );
    assert_eq!(s.revoked(q.id, 1300).await.unwrap(), vec!["j1".to_string()]);

    // Expiry: session 2 (exp 1400) and 3 (exp 1503).
    assert_eq!(s.active_sessions(q.id, 1399).await.unwrap(), 2);
    assert_eq!(s.active_sessions(q.id, 1400).await.unwrap(), 1);
    assert_eq!(s.revoked(q.id, 1404).await.unwrap(), vec!["j1".to_string()], "the token's leeway");
    assert!(s.revoked(q.id, 1405).await.unwrap().is_empty(), "revocations end with the token");
    assert_eq!(
        s.claim(q.id, 2, 1401, 300, 0, W).await.unwrap(),
        Claim::Ended,
        "expired session is not renewed"
    );
    assert_eq!(
        s.end_session(q.id, 2, "j2".into(), 1402, Outcome::Completed).await.unwrap(),
        Ended::Already
    );
    assert_eq!(s.active_sessions(q.id, 1600).await.unwrap(), 0);

    // Extension: up to iat + cap, never shorter, only while live.
    assert_eq!(
        s.claim(q.id, 6, 2000, 300, 0, W).await.unwrap(),
        Claim::Issued(Session { iat: 2000, exp: 2300 })
    );
    let ext = s.extend_session(q.id, 6, 100, 600, 2100).await.unwrap();
    assert_eq!(ext, Some(Session { iat: 2000, exp: 2400 }));
    let ext = s.extend_session(q.id, 6, 500, 600, 2200).await.unwrap();
    assert_eq!(ext, Some(Session { iat: 2000, exp: 2600 }), "capped at iat + 600");
    assert_eq!(s.active_sessions(q.id, 2599).await.unwrap(), 1, "the new expiry counts");
    assert_eq!(s.extend_session(q.id, 7, 100, 600, 2200).await.unwrap(), None, "never claimed");
    assert_eq!(s.extend_session(q.id, 6, 100, 600, 2600).await.unwrap(), None, "expired");
}

async fn waiting(s: &dyn Store) {
    let q = create(s, "wait").await;
    // 5 arrive at t=1000, 5 more at t=1100.
    assign_n(s, q.id, 5, 1000, 600).await;
    assign_n(s, q.id, 5, 1100, 600).await;
    // Serving reaches 3 at t=1010 and 8 at t=1200.
    s.increment_serving(q.id, 3, 1010, 600).await.unwrap();
    s.increment_serving(q.id, 5, 1200, 600).await.unwrap();
    s.claim(q.id, 2, 1020, 300, 0, W).await.unwrap();

    let f = s.waiting_facts(q.id, 0).await.unwrap();
    assert_eq!((f.counters.assigned, f.claimed_total, f.expired_upto), (10, 1, 0));

    // t0 = 1050: serving was 3, assigned was 5 → places 1..=3 expired (2 of them claimed? 1).
    let f = s.waiting_facts(q.id, 1050).await.unwrap();
    assert_eq!((f.expired_upto, f.claimed_upto), (3, 1));
    assert_eq!(shared::place::waiting(10, 1, 3, 1), 7);
    // t0 = 1150: serving still 3 → same.
    assert_eq!(s.waiting_facts(q.id, 1150).await.unwrap().expired_upto, 3);
    // t0 = 1250: serving 8, assigned 10 → 8.
    let f = s.waiting_facts(q.id, 1250).await.unwrap();
    assert_eq!((f.expired_upto, f.claimed_upto), (8, 1));
    // t0 before anything happened.
    assert_eq!(s.waiting_facts(q.id, 999).await.unwrap().expired_upto, 0);
}

async fn history_compaction(s: &dyn Store) {
    let q = create(s, "hist").await;
    for t in 0..50u64 {
        assign_n(s, q.id, 1, 10_000 + t * 10, 100).await;
        s.increment_serving(q.id, 1, 10_000 + t * 10, 100).await.unwrap();
    }
    // Now = 10_490, keep 100 s: entries before 10_390 are compacted into a floor entry.
    assert_eq!(s.place(q.id, 1).await.unwrap().passed_at.map(|t| t <= 10_390), Some(true));
    assert_eq!(s.place(q.id, 50).await.unwrap().passed_at, Some(10_490));
    assert_eq!(s.place(q.id, 45).await.unwrap().passed_at, Some(10_440));
    let f = s.waiting_facts(q.id, 10_450).await.unwrap();
    assert_eq!(f.expired_upto, 46);
}

async fn secrets(s: &dyn Store) {
    let a = StoredSecrets { signing: vec![], ticket_keys: "1:aa".into() };
    let b = StoredSecrets { signing: vec![], ticket_keys: "1:bb".into() };
    assert_eq!(s.secrets().await.unwrap(), None);
    assert_eq!(s.secrets_or_init(a.clone()).await.unwrap(), a);
    assert_eq!(s.secrets().await.unwrap(), Some(a.clone()));
    assert_eq!(s.secrets_or_init(b.clone()).await.unwrap(), a, "first secrets win");
    s.put_secrets(b.clone()).await.unwrap();
    assert_eq!(s.secrets_or_init(a).await.unwrap(), b);
}

/// Outcomes, sweeping, stats, wait histograms, minute samples, records and the audit stream.
async fn observability(s: &dyn Store) {
    let q = create(s, "obs").await;
    assign_n(s, q.id, 4, 1000, 600).await;
    s.increment_serving(q.id, 4, 1001, 600).await.unwrap();
    for p in 1..=3u64 {
        let w = ClaimWaits { served: p as u8, claimed: 10 };
        assert!(matches!(s.claim(q.id, p, 1002, 100, 0, w).await.unwrap(), Claim::Issued(_)));
    }
    let end = |p: u64, t: u64, o: Outcome| s.end_session(q.id, p, format!("j{p}"), t, o);
    assert_eq!(end(1, 1010, Outcome::Completed).await.unwrap(), Ended::Now);
    assert_eq!(end(2, 1010, Outcome::Abandoned).await.unwrap(), Ended::Now);
    // Session 3 expired at 1102: ending it later leaves it to the sweep, which counts it.
    assert_eq!(end(3, 1200, Outcome::Completed).await.unwrap(), Ended::Already);
    let st = s.stats(q.id, 1200, 0).await.unwrap();
    assert_eq!((st.completed, st.abandoned, st.expired, st.active), (1, 1, 0, 0));
    assert_eq!((st.facts.claimed_total, st.admitted(), st.facts.waiting()), (3, 4, 1));
    assert_eq!(s.sweep_expired(q.id, 1200).await.unwrap(), vec![3]);
    assert_eq!(s.sweep_expired(q.id, 1200).await.unwrap(), Vec::<u64>::new(), "swept once");
    assert_eq!(s.stats(q.id, 1200, 0).await.unwrap().expired, 1);
    let w = s.wait_counts(q.id).await.unwrap();
    assert_eq!((w.served[1], w.served[2], w.served[3], w.served[4]), (1, 1, 1, 0));
    assert_eq!((w.claimed[10], w.served.iter().sum::<u64>()), (3, 3));

    let est = shared::eta::RateEstimate { rate: 1.5, var: 0.25, observed_ms: 61_000 };
    let at = |minute, assigned| MinuteSample {
        minute,
        assigned,
        estimate: est,
        ..MinuteSample::of(0, &st, est)
    };
    assert!(s.record_minute(q.id, at(20, 4), 5).await.unwrap());
    assert!(!s.record_minute(q.id, at(20, 9), 5).await.unwrap(), "a minute is stored once");
    assert!(s.record_minute(q.id, at(21, 5), 5).await.unwrap());
    assert_eq!(s.minutes(q.id, 0).await.unwrap(), vec![at(20, 4), at(21, 5)]);
    assert_eq!(s.minutes(q.id, 21).await.unwrap(), vec![at(21, 5)]);
    assert!(s.record_minute(q.id, at(30, 6), 5).await.unwrap());
    assert_eq!(s.minutes(q.id, 0).await.unwrap(), vec![at(30, 6)], "older than 5 minutes dropped");

    let k = RecordKind::AdminKey;
    assert!(s.add_record(k, "a".into(), "{}".into()).await.unwrap());
    assert!(!s.add_record(k, "a".into(), "{\"x\":1}".into()).await.unwrap(), "name taken");
    assert_eq!(s.records(k).await.unwrap(), vec!["{}".to_string()]);
    assert!(s.records(RecordKind::Webhook).await.unwrap().is_empty());
    assert!(s.records(RecordKind::ConsoleSession).await.unwrap().is_empty(), "kinds are apart");
    assert!(s.remove_record(k, "a".into()).await.unwrap());
    assert!(!s.remove_record(k, "a".into()).await.unwrap());

    // Ids follow the callers' clock, and never go back when a slower clock appends.
    let ids = [
        s.append_audit("1".into(), 5000, 100).await.unwrap(),
        s.append_audit("2".into(), 5000, 100).await.unwrap(),
        s.append_audit("3".into(), 4000, 100).await.unwrap(),
    ];
    assert_eq!(ids, ["5000-0", "5000-1", "5000-2"]);
    let from = |ms, seq, exclusive| AuditFrom { ms, seq, exclusive };
    let page = s.audit_page(from(0, 0, false), 2).await.unwrap();
    assert_eq!(page, vec![("5000-0".into(), "1".into()), ("5000-1".into(), "2".into())]);
    let page = s.audit_page(from(5000, 1, true), 10).await.unwrap();
    assert_eq!(page, vec![("5000-2".to_string(), "3".to_string())]);
    assert!(s.audit_page(from(5001, 0, false), 10).await.unwrap().is_empty());
}

async fn suite(s: Arc<dyn Store>) {
    s.ping().await.unwrap();
    registry(s.as_ref()).await;
    positions(s.as_ref()).await;
    sessions(s.as_ref()).await;
    waiting(s.as_ref()).await;
    history_compaction(s.as_ref()).await;
    replays_and_versions(s.as_ref()).await;
    floors(s.as_ref()).await;
    pauses(s.as_ref()).await;
    secrets(s.as_ref()).await;
    observability(s.as_ref()).await;
}

#[tokio::test]
async fn memory_store_conforms() {
    suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn redis_store_conforms() {
    let redis = common::Redis::start();
    suite(Arc::new(RedisStore::single(&redis.url(), 0).unwrap())).await;
}

#[tokio::test]
async fn redis_cluster_store_conforms() {
    let cluster = common::Cluster::start();
    let store = RedisStore::cluster(&cluster.urls(), 0).await.unwrap();
    assert_eq!(store.kind(), "redis-cluster");
    suite(Arc::new(store)).await;
}
