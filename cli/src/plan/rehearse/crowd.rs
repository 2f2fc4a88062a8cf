//! The rehearsal's crowd, after the load generator has given each visitor a place: pages
//! that poll the way the product's pages do (virtually: at `shared::poll::next_poll_ms` for
//! their distance to the front, against the serving position sampled from the coordinator
//! and seen as late as the edge would), visitors who claim their token at the coordinator
//! when their page learns of their turn, and the origin ending each session after its length.
//! Every tenth of a second it samples the queue's status; the samples are the measurement.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use shared::poll::{next_poll_ms, visitor_seed};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use crate::admin::Admin;

/// How often the queue's status is sampled.
pub const SAMPLE: Duration = Duration::from_millis(100);
/// A claim that meets a full session cap (202) is tried again this much later.
const CLAIM_RETRY_SECS: f64 = 1.0;

/// A visitor the load generator enqueued.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Its place.
    pub position: u64,
    /// Its ticket.
    pub request_id: String,
    /// When the answer came, seconds from the start.
    pub at: f64,
}

/// What the crowd does once it has a place; decided per position so a rerun does the same.
#[derive(Debug, Clone)]
pub struct Roles {
    /// Positions given before each second of the plan (its cumulative arrivals).
    pub assigned: Vec<f64>,
    /// Share of each second's places whose holders claim.
    pub claim_share: Vec<f64>,
    /// Equally likely session lengths, seconds.
    pub sessions: Vec<f64>,
    /// How late a page sees a new serving position, seconds.
    pub lag: f64,
}

/// One status sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds from the start.
    pub t: f64,
    /// Serving position.
    pub serving: u64,
    /// Positions handed out.
    pub assigned: u64,
    /// Open sessions.
    pub active: u64,
}

/// What the crowd did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Tokens claimed.
    pub claims: u64,
    /// Claims answered 202 (session cap full) and tried again.
    pub claims_deferred: u64,
    /// Claims refused or unanswered.
    pub claim_failures: u64,
    /// Sessions the origin ended.
    pub sessions_ended: u64,
    /// Session ends refused or unanswered.
    pub end_failures: u64,
}

#[derive(Debug, Clone)]
struct Visitor {
    position: u64,
    request_id: String,
    joined: f64,
    claimer: bool,
    session: f64,
}

/// How a claim went.
enum Claimed {
    Token,
    Deferred,
    Failed,
}

/// Makes a visitor's token claim (by ticket) ready to send.
pub type Claim = Box<dyn Fn(&str) -> reqwest::RequestBuilder + Send + Sync>;

/// The crowd while it runs.
pub struct Crowd {
    start: Instant,
    roles: Roles,
    admin: Admin,
    queue_id: String,
    /// Claims go to the coordinator's public API, signed like the edge when it is edge-only.
    claim: Claim,
    samples: Vec<Sample>,
    visitors: Vec<Visitor>,
    polls: BinaryHeap<Reverse<(u64, usize)>>,
    ends: BinaryHeap<Reverse<(u64, usize)>>,
    claiming: JoinSet<(usize, Claimed)>,
    ending: JoinSet<bool>,
    tally: Tally,
}

impl std::fmt::Debug for Crowd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crowd").field("visitors", &self.visitors.len()).finish_non_exhaustive()
    }
}

/// What the crowd measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// The status samples.
    pub samples: Vec<Sample>,
    /// Each visitor's wait: from its place to the first sample serving it, seconds.
    pub waits: Vec<f64>,
    /// What the crowd did.
    pub tally: Tally,
    /// Whether everyone was served before the deadline.
    pub complete: bool,
}

impl Crowd {
    /// A crowd for `queue_id`, timed from `start`.
    pub fn new(
        start: Instant,
        roles: Roles,
        admin: Admin,
        queue_id: String,
        claim: Claim,
    ) -> Crowd {
        Crowd {
            start,
            roles,
            admin,
            queue_id,
            claim,
            samples: Vec::new(),
            visitors: Vec::new(),
            polls: BinaryHeap::new(),
            ends: BinaryHeap::new(),
            claiming: JoinSet::new(),
            ending: JoinSet::new(),
            tally: Tally::default(),
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Runs until every one of `expected` places is served, told and its claim done (or the
    /// deadline, seconds from the start, passes).
    pub async fn run(
        mut self,
        mut joined: UnboundedReceiver<Joined>,
        expected: u64,
        deadline: f64,
    ) -> anyhow::Result<Measurement> {
        let mut every = tokio::time::interval(SAMPLE);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let complete = loop {
            every.tick().await;
            self.sample().await?;
            while let Ok(j) = joined.try_recv() {
                self.join(j);
            }
            self.poll_pages();
            self.settle_claims();
            self.end_sessions();
            let last = self.samples.last().map_or(0, |s| s.serving);
            let told = self.polls.is_empty() && self.claiming.is_empty();
            if self.visitors.len() as u64 >= expected && last >= expected && told {
                break true;
            }
            if self.now() > deadline {
                break false;
            }
        };
        while self.ending.join_next().await.is_some() {}
        let waits = self.waits();
        Ok(Measurement { samples: self.samples, waits, tally: self.tally, complete })
    }

    async fn sample(&mut self) -> anyhow::Result<()> {
        let s = self.admin.status(&self.queue_id).await?;
        let t = self.now();
        self.samples.push(Sample {
            t,
            serving: s.serving_pos,
            assigned: s.assigned,
            active: s.active_num,
        });
        Ok(())
    }

    /// The serving position a page sees at `t`: the last sample taken the edge's lag before.
    fn seen(&self, t: f64) -> u64 {
        let i = self.samples.partition_point(|s| s.t <= t - self.roles.lag);
        if i == 0 { 0 } else { self.samples[i - 1].serving }
    }

    /// A visitor with a place: its role, and its page's first poll.
    fn join(&mut self, j: Joined) {
        let u = unit(j.position);
        let c = self.roles.assigned.partition_point(|&a| a < j.position as f64).saturating_sub(1);
        let share = self.roles.claim_share.get(c).copied().unwrap_or(1.0);
        let n = self.roles.sessions.len().max(1);
        let session = self
            .roles
            .sessions
            .get((unit(!j.position) * n as f64) as usize)
            .copied()
            .unwrap_or(0.0);
        self.visitors.push(Visitor {
            position: j.position,
            request_id: j.request_id,
            joined: j.at,
            claimer: u < share,
            session,
        });
        self.schedule(self.visitors.len() - 1, j.at);
    }

    fn schedule(&mut self, i: usize, now: f64) {
        let v = &self.visitors[i];
        let ahead = v.position.saturating_sub(self.seen(now));
        let at = now + next_poll_ms(Some(ahead), visitor_seed(&v.request_id)) as f64 / 1000.0;
        self.polls.push(Reverse(((at * 1e6) as u64, i)));
    }

    /// Pages whose poll is due learn whether it is their turn; claimers then claim.
    fn poll_pages(&mut self) {
        let now = self.now();
        while let Some(&Reverse((us, i))) = self.polls.peek() {
            let at = us as f64 / 1e6;
            if at > now {
                break;
            }
            self.polls.pop();
            if self.seen(at) < self.visitors[i].position {
                self.schedule(i, at);
            } else if self.visitors[i].claimer {
                self.start_claim(i);
            }
        }
    }

    fn start_claim(&mut self, i: usize) {
        let req = (self.claim)(&self.visitors[i].request_id);
        self.claiming.spawn(async move {
            let outcome = match req.send().await.map(|r| r.status().as_u16()) {
                Ok(200) => Claimed::Token,
                Ok(202) => Claimed::Deferred,
                _ => Claimed::Failed,
            };
            (i, outcome)
        });
    }

    /// Claims that came back: a token starts the session's clock, a full cap tries again.
    fn settle_claims(&mut self) {
        let now = self.now();
        while let Some(Ok((i, outcome))) = self.claiming.try_join_next() {
            match outcome {
                Claimed::Token => {
                    self.tally.claims += 1;
                    let end = now + self.visitors[i].session;
                    self.ends.push(Reverse(((end * 1e6) as u64, i)));
                }
                Claimed::Deferred => {
                    self.tally.claims_deferred += 1;
                    let at = now + CLAIM_RETRY_SECS;
                    self.polls.push(Reverse(((at * 1e6) as u64, i)));
                }
                Claimed::Failed => self.tally.claim_failures += 1,
            }
        }
        while let Some(r) = self.ending.try_join_next() {
            match r {
                Ok(true) => self.tally.sessions_ended += 1,
                _ => self.tally.end_failures += 1,
            }
        }
    }

    /// The origin ends the sessions whose time is up.
    fn end_sessions(&mut self) {
        let now = self.now();
        while let Some(&Reverse((us, i))) = self.ends.peek() {
            if us as f64 / 1e6 > now {
                break;
            }
            self.ends.pop();
            let (admin, q, rid) =
                (self.admin.clone(), self.queue_id.clone(), self.visitors[i].request_id.clone());
            self.ending.spawn(async move { admin.end_session(&q, &rid).await.is_ok() });
        }
    }

    /// Each visitor's wait, from its place to the first sample at or past it.
    fn waits(&self) -> Vec<f64> {
        self.visitors
            .iter()
            .filter_map(|v| {
                let i = self.samples.partition_point(|s| s.serving < v.position);
                self.samples.get(i).map(|s| (s.t - v.joined).max(0.0))
            })
            .collect()
    }
}

/// A number in [0, 1) from `x` (splitmix64), so roles depend on the position alone.
fn unit(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
}

/// An error unless the crowd's calls went through.
pub fn check(t: &Tally) -> anyhow::Result<()> {
    if t.claim_failures > 0 || t.end_failures > 0 {
        bail!(
            "{} claims and {} session ends failed during the rehearsal",
            t.claim_failures,
            t.end_failures
        );
    }
    Ok(())
}
