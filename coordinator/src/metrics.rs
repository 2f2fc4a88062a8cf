//! Prometheus metrics, served at `GET /metrics` on the private listener in the text
//! exposition format (0.0.4) by `prometheus-client` (no global registry: every coordinator
//! state has its own, so tests can run several in one process).
//!
//! Two kinds. Process-local ones are recorded as things happen here (HTTP requests, latency
//! histograms, Redis command timings, refusals, publishes, webhook deliveries); their help
//! text says "this process" and they restart at zero with it. Queue figures that live in the
//! store (arrivals, admitted, sessions by outcome, waiting, ...) are read from it at scrape
//! time (`scrape::collect`) and encoded by [`QueueCollector`] from that snapshot, so they
//! survive a restart and every process reports the same values (aggregate with `max by
//! (queue)`).
//!
//! The hot paths pay an atomic add and a histogram observation per request, without locks:
//! the handles (per queue, per Redis command, per route template) are cached per thread, and
//! the per-request histograms are [`Striped`] (atomic buckets on per-thread stripes). The
//! enqueue storm measures the cost with metrics on and off in one run (`BENCHMARKS.md`, "Cost
//! of metrics"); `--metrics false` turns all of it off.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use shared::wire::WaitPercentiles;

use crate::store::{Observer, QueueStats};
use crate::striped::Striped;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;
type Hist = Family<Labels, Histogram, fn() -> Histogram>;
/// Histograms observed on every request.
type HotHist = Family<Labels, Striped, fn() -> Striped>;

fn latency_hist() -> Striped {
    // 0.25 ms .. 4 s.
    Striped::new(exponential_buckets(0.000_25, 2.0, 15))
}

fn redis_hist() -> Striped {
    // 50 µs .. 0.8 s.
    Striped::new(exponential_buckets(0.000_05, 2.0, 15))
}

fn lag_hist() -> Histogram {
    // 0.1 s .. 51 s.
    Histogram::new(exponential_buckets(0.1, 2.0, 10))
}

/// The two listeners, as the `listener` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Visitors and the edge.
    Public,
    /// Operators and the origin.
    Private,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Private => "private",
        }
    }
}

/// Per-queue handles of the hot-path histograms.
struct QueueHandles {
    enqueue: Striped,
    claim: Striped,
}

/// The answer counters of one route, by status class (1xx .. 5xx).
pub type ClassCounters = Arc<[Counter; 5]>;

/// Handles of one [`Metrics`], cached by the thread that uses them: the hot paths take no
/// lock and touch no shared map.
#[derive(Default)]
struct Local {
    /// The `Metrics::id` these handles belong to (tests run several in one process).
    owner: u64,
    /// Its `forgotten` count when they were taken.
    forgotten: u64,
    queues: HashMap<u32, QueueHandles>,
    redis: HashMap<&'static str, Striped>,
    routes: [HashMap<String, ClassCounters>; 2],
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::default();
}

/// Ids of `Metrics` instances.
static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// What a scrape read of one queue, for [`QueueCollector`].
#[derive(Debug, Clone, Default)]
pub struct QueueSnapshot {
    /// The queue's slug (the `queue` label).
    pub queue: String,
    /// Facts and totals from the store.
    pub stats: QueueStats,
    /// The session cap, if any.
    pub max_active: Option<u32>,
    /// Measured admission rate.
    pub measured_rate: f64,
    /// The strategy's rate now (fixed rate, or the health law's), if it has one.
    pub target_rate: Option<f64>,
    /// `manual`, `fixed_rate`, `capacity` or `health`.
    pub strategy: &'static str,
    /// Admissions paused by the operator.
    pub paused: bool,
    /// Draining.
    pub draining: bool,
    /// The origin's last health report and its age in seconds.
    pub health: Option<(shared::admission::HealthReading, f64)>,
    /// Proof-of-work difficulty asked.
    pub pow_difficulty: u8,
    /// Wait percentiles of the visitors who claimed, by what they waited for (`served`,
    /// `claimed`), from the store's wait histograms.
    pub waits: Vec<(&'static str, WaitPercentiles)>,
}

/// Encodes the queue figures read at scrape time.
#[derive(Debug, Default)]
pub struct QueueCollector {
    /// The queues read for this scrape; `None`: the store failed, queue figures are left out.
    snapshot: Arc<Mutex<Option<Vec<QueueSnapshot>>>>,
    /// Last successful publish per queue slug (unix ms), for the age gauge.
    published: Arc<Mutex<HashMap<String, u64>>>,
    /// Unix ms of the scrape, for the ages.
    now_ms: Arc<Mutex<u64>>,
}

/// The coordinator's metrics.
pub struct Metrics {
    registry: Registry,
    /// Tells this instance's handles from another's in the per-thread caches.
    id: u64,
    /// Queues forgotten so far: a change drops every thread's cached handles.
    forgotten: AtomicU64,
    http: Family<Labels, Counter>,
    overload: Family<Labels, Counter>,
    enqueue: HotHist,
    claim: HotHist,
    redis: HotHist,
    redis_errors: Family<Labels, Counter>,
    /// Every failed Redis command, and when the last one failed (unix ms, 0 = never): the
    /// console's "Redis errors in the last minute" warning.
    redis_failed: std::sync::atomic::AtomicU64,
    redis_failed_at_ms: std::sync::atomic::AtomicU64,
    pow: Family<Labels, Counter>,
    status_reads: Family<Labels, Counter>,
    edge_pulls: Family<Labels, Counter>,
    publish_lag: Hist,
    publish_failures: Counter,
    webhook_events: Family<Labels, Counter>,
    webhook_dropped: Counter,
    webhook_deliveries: Family<Labels, Counter>,
    audit_failures: Counter,
    collector: Arc<QueueCollector>,
    /// One scrape at a time (the snapshot is shared).
    pub scrape_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn q(queue: &str) -> Labels {
    vec![("queue", queue.to_string())]
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let m = Metrics {
            id: INSTANCES.fetch_add(1, Relaxed),
            forgotten: AtomicU64::new(0),
            http: Family::default(),
            overload: Family::default(),
            enqueue: Family::new_with_constructor(latency_hist),
            claim: Family::new_with_constructor(latency_hist),
            redis: Family::new_with_constructor(redis_hist),
            redis_errors: Family::default(),
            redis_failed: Default::default(),
            redis_failed_at_ms: Default::default(),
            pow: Family::default(),
            status_reads: Family::default(),
            edge_pulls: Family::default(),
            publish_lag: Family::new_with_constructor(lag_hist),
            publish_failures: Counter::default(),
            webhook_events: Family::default(),
            webhook_dropped: Counter::default(),
            webhook_deliveries: Family::default(),
            audit_failures: Counter::default(),
            collector: Arc::default(),
            scrape_lock: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        let local = " (this process; restarts at zero with it)";
        r.register(
            "anteroom_http_requests",
            format!("HTTP requests answered, by listener, route template and status class{local}"),
            m.http.clone(),
        );
        r.register("anteroom_overload_refusals", format!("Requests refused with 503 by load shedding (kind=shed) or the request timeout (kind=timeout){local}"), m.overload.clone());
        r.register(
            "anteroom_enqueue_duration_seconds",
            format!("Time to answer assign_queue_pos, from the queue lookup on{local}"),
            m.enqueue.clone(),
        );
        r.register(
            "anteroom_claim_duration_seconds",
            format!("Time to answer generate_token, from the queue lookup on{local}"),
            m.claim.clone(),
        );
        r.register(
            "anteroom_redis_command_duration_seconds",
            format!("Redis round trips by command (EVALSHA: one store script){local}"),
            m.redis.clone(),
        );
        r.register(
            "anteroom_redis_command_errors",
            format!("Redis commands that failed, by command{local}"),
            m.redis_errors.clone(),
        );
        r.register("anteroom_pow_refusals", format!("Enqueues refused for their proof-of-work, by reason (required, invalid, expired, replayed){local}"), m.pow.clone());
        r.register("anteroom_status_reads", format!("Status answers (queue_pos, serving_pos, waiting_num) served here, by source: edge (its client header: the edge pulling fresh status) or direct{local}"), m.status_reads.clone());
        r.register("anteroom_edge_pulls", format!("Edge freshness pulls answered (GET /edge/state/{{queue_id}}: what=state, GET /edge/index: what=index), by queue (empty for the index and for pulls of no known queue) and outcome: served, unauthorised (no or bad pull header), not_found, lost (a queue the store lost), error{local}"), m.edge_pulls.clone());
        r.register(
            "anteroom_publish_lag_seconds",
            format!("From the publisher seeing a queue's state change (it looks every 250 ms) to the edge accepting it{local}"),
            m.publish_lag.clone(),
        );
        r.register(
            "anteroom_publish_failures",
            format!("Sync batches the edge did not accept{local}"),
            m.publish_failures.clone(),
        );
        r.register(
            "anteroom_webhook_events",
            format!("Events put in the webhook buffer, by type{local}"),
            m.webhook_events.clone(),
        );
        r.register(
            "anteroom_webhook_dropped",
            format!("Events dropped because the webhook buffer was full{local}"),
            m.webhook_dropped.clone(),
        );
        r.register("anteroom_webhook_deliveries", format!("Webhook POST attempts by result: delivered, failed (retried later), gave_up (after the last retry){local}"), m.webhook_deliveries.clone());
        r.register("anteroom_audit_write_failures", format!("Audited changes whose audit entry could not be written (the change stands; logged){local}"), m.audit_failures.clone());
        r.register_collector(Box::new(m.collector.clone()));
        Metrics { registry: r, ..m }
    }

    /// The exposition text; `snapshot` is `None` when the store could not be read (the
    /// process-local series are still there, `anteroom_store_up` is 0).
    pub fn encode(&self, snapshot: Option<Vec<QueueSnapshot>>, now_ms: u64) -> String {
        *lock(&self.collector.snapshot) = snapshot;
        *lock(&self.collector.now_ms) = now_ms;
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }

    /// Runs `f` on this thread's cached handles of this instance.
    fn local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> R {
        let mut f = Some(f);
        let cached = LOCAL.try_with(|cell| {
            let mut l = cell.try_borrow_mut().ok()?;
            let forgotten = self.forgotten.load(Relaxed);
            if l.owner != self.id || l.forgotten != forgotten {
                *l = Local { owner: self.id, forgotten, ..Local::default() };
            }
            f.take().map(|f| f(&mut l))
        });
        if let Ok(Some(r)) = cached {
            return r;
        }
        // The thread is ending (its locals are gone) or they are in use: no cache this once.
        let f = f.expect("f runs above only when its result is returned");
        f(&mut Local { owner: self.id, ..Local::default() })
    }

    /// Runs `f` on the queue's handles, created on first use.
    fn with_queue(&self, id: u32, slug: &str, f: impl FnOnce(&QueueHandles)) {
        self.local(|l| {
            let h = l.queues.entry(id).or_insert_with(|| QueueHandles {
                enqueue: self.enqueue.get_or_create_owned(&q(slug)),
                claim: self.claim.get_or_create_owned(&q(slug)),
            });
            f(h)
        });
    }

    /// An enqueue answered after `took`.
    pub fn enqueued(&self, id: u32, slug: &str, took: Duration) {
        self.with_queue(id, slug, |h| h.enqueue.observe(took.as_secs_f64()));
    }

    /// A claim answered after `took`.
    pub fn claimed(&self, id: u32, slug: &str, took: Duration) {
        self.with_queue(id, slug, |h| h.claim.observe(took.as_secs_f64()));
    }

    /// Forgets a deleted queue's handles (its series stay until the process restarts).
    pub fn forget_queue(&self, _id: u32) {
        self.forgotten.fetch_add(1, Relaxed);
    }

    /// The answer counters of `route` (its template), to count one answer with
    /// [`count_answer`].
    pub fn route_counters(&self, listener: Listener, route: &str) -> ClassCounters {
        self.local(|l| {
            let routes = &mut l.routes[listener as usize];
            if let Some(c) = routes.get(route) {
                return c.clone();
            }
            let counters: ClassCounters = Arc::new(std::array::from_fn(|i| {
                let labels = vec![
                    ("listener", listener.name().to_string()),
                    ("route", route.to_string()),
                    ("class", format!("{}xx", i + 1)),
                ];
                self.http.get_or_create_owned(&labels)
            }));
            routes.insert(route.to_string(), counters.clone());
            counters
        })
    }

    /// An HTTP answer of `route` (its template) with `status`.
    pub fn http(&self, listener: Listener, route: &str, status: u16) {
        count_answer(&self.route_counters(listener, route), status);
    }

    /// A request refused by load shedding or its timeout.
    pub fn overload(&self, listener: Listener, timeout: bool) {
        let kind = if timeout { "timeout" } else { "shed" };
        let labels = vec![("listener", listener.name().to_string()), ("kind", kind.to_string())];
        self.overload.get_or_create(&labels).inc();
    }

    /// An enqueue refused for its proof-of-work.
    pub fn pow_refused(&self, slug: &str, reason: &'static str) {
        let labels = vec![("queue", slug.to_string()), ("reason", reason.to_string())];
        self.pow.get_or_create(&labels).inc();
    }

    /// A status answer served.
    pub fn status_read(&self, slug: &str, via_edge: bool) {
        let source = if via_edge { "edge" } else { "direct" };
        let labels = vec![("queue", slug.to_string()), ("source", source.to_string())];
        self.status_reads.get_or_create(&labels).inc();
    }

    /// An edge freshness pull answered (`what`: `state` or `index`).
    pub fn edge_pull(&self, what: &'static str, queue: &str, outcome: &'static str) {
        let labels = vec![
            ("what", what.to_string()),
            ("queue", queue.to_string()),
            ("outcome", outcome.to_string()),
        ];
        self.edge_pulls.get_or_create(&labels).inc();
    }

    /// A queue's state reached the edge, `lag` after it changed (`None`: a periodic
    /// republish of an unchanged state).
    pub fn published(&self, slug: &str, lag: Option<Duration>, now_ms: u64) {
        lock(&self.collector.published).insert(slug.to_string(), now_ms);
        if let Some(lag) = lag {
            self.publish_lag.get_or_create(&q(slug)).observe(lag.as_secs_f64());
        }
    }

    /// A sync batch failed.
    pub fn publish_failed(&self) {
        self.publish_failures.inc();
    }

    /// An event entered the webhook buffer.
    pub fn webhook_event(&self, kind: &str) {
        self.webhook_events.get_or_create(&vec![("type", kind.to_string())]).inc();
    }

    /// An event was dropped: the buffer was full.
    pub fn webhook_dropped(&self) {
        self.webhook_dropped.inc();
    }

    /// A delivery attempt ended: `delivered`, `failed` or `gave_up`.
    pub fn webhook_delivery(&self, result: &'static str) {
        self.webhook_deliveries.get_or_create(&vec![("result", result.to_string())]).inc();
    }

    /// An audit entry could not be written.
    pub fn audit_failed(&self) {
        self.audit_failures.inc();
    }
}

/// Counts one answer with `status` on a route's counters.
pub fn count_answer(counters: &ClassCounters, status: u16) {
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    counters[class].inc();
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Metrics {
    fn redis_command(&self, command: &'static str, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let labels = || vec![("command", command.to_string())];
        self.local(|l| {
            l.redis
                .entry(command)
                .or_insert_with(|| self.redis.get_or_create_owned(&labels()))
                .observe(secs);
        });
        if !ok {
            self.redis_errors.get_or_create(&labels()).inc();
            use std::sync::atomic::Ordering::Relaxed;
            self.redis_failed.fetch_add(1, Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.redis_failed_at_ms.store(now, Relaxed);
        }
    }
}

impl Metrics {
    /// Failed Redis commands since start, and when the last one failed (unix ms).
    pub fn redis_errors(&self) -> (u64, Option<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        let at = self.redis_failed_at_ms.load(Relaxed);
        (self.redis_failed.load(Relaxed), (at > 0).then_some(at))
    }
}

/// Writes one metric family of const values.
fn family<M: EncodeMetric, S: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Vec<(S, M)>,
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut d = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &rows {
        value.encode(d.encode_family(labels)?)?;
    }
    Ok(())
}

fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, u64)>,
) -> std::fmt::Result {
    let rows = rows.into_iter().map(|(l, v)| (l, ConstCounter::new(v))).collect();
    family(
        enc,
        name,
        &format!("{help} (from the store: survives restarts)"),
        MetricType::Counter,
        rows,
    )
}

fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, f64)>,
) -> std::fmt::Result {
    let rows = rows.into_iter().map(|(l, v)| (l, ConstGauge::new(v))).collect();
    family(enc, name, help, MetricType::Gauge, rows)
}

impl QueueCollector {
    fn totals(&self, enc: &mut DescriptorEncoder, s: &[QueueSnapshot]) -> std::fmt::Result {
        let per = |f: &dyn Fn(&QueueSnapshot) -> u64| -> Vec<(Labels, u64)> {
            s.iter().map(|x| (q(&x.queue), f(x))).collect()
        };
        counters(
            enc,
            "anteroom_arrivals",
            "Places handed out",
            per(&|x| x.stats.facts.counters.assigned),
        )?;
        counters(
            enc,
            "anteroom_admitted",
            "Places the serving position has passed",
            per(&|x| x.stats.admitted()),
        )?;
        counters(
            enc,
            "anteroom_sessions_claimed",
            "Tokens issued (new sessions)",
            per(&|x| x.stats.facts.claimed_total),
        )?;
        counters(
            enc,
            "anteroom_places_expired_unclaimed",
            "Served places that expired without a claim",
            per(&|x| x.stats.unclaimed_expired()),
        )?;
        let ended = s
            .iter()
            .flat_map(|x| {
                [
                    ("completed", x.stats.completed),
                    ("abandoned", x.stats.abandoned),
                    ("expired", x.stats.expired),
                ]
                .map(|(o, v)| (vec![("queue", x.queue.clone()), ("outcome", o.to_string())], v))
            })
            .collect();
        counters(enc, "anteroom_sessions_ended", "Sessions ended, by outcome", ended)
    }

    fn state(&self, enc: &mut DescriptorEncoder, s: &[QueueSnapshot]) -> std::fmt::Result {
        let per = |f: &dyn Fn(&QueueSnapshot) -> f64| -> Vec<(Labels, f64)> {
            s.iter().map(|x| (q(&x.queue), f(x))).collect()
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        gauges(
            enc,
            "anteroom_waiting",
            "Visitors waiting: placed, not claimed, not expired",
            per(&|x| x.stats.facts.waiting() as f64),
        )?;
        gauges(
            enc,
            "anteroom_serving_position",
            "Serving position",
            per(&|x| x.stats.facts.counters.serving as f64),
        )?;
        gauges(
            enc,
            "anteroom_last_position",
            "Last position handed out",
            per(&|x| x.stats.facts.counters.assigned as f64),
        )?;
        gauges(enc, "anteroom_active_sessions", "Live sessions", per(&|x| x.stats.active as f64))?;
        let caps =
            s.iter().filter_map(|x| x.max_active.map(|m| (q(&x.queue), f64::from(m)))).collect();
        gauges(enc, "anteroom_max_active", "Session cap of queues that have one", caps)?;
        let rates = s
            .iter()
            .flat_map(|x| {
                let measured = Some((
                    vec![("queue", x.queue.clone()), ("kind", "measured".to_string())],
                    x.measured_rate,
                ));
                let target = x
                    .target_rate
                    .map(|r| (vec![("queue", x.queue.clone()), ("kind", "target".to_string())], r));
                [measured, target].into_iter().flatten()
            })
            .collect();
        gauges(
            enc,
            "anteroom_admission_rate_per_second",
            "Admission rate: measured, and the strategy's target where it has one",
            rates,
        )?;
        gauges(
            enc,
            "anteroom_admission_paused",
            "1 while the operator has paused admissions",
            per(&|x| flag(x.paused)),
        )?;
        gauges(
            enc,
            "anteroom_admission_draining",
            "1 while the queue drains",
            per(&|x| flag(x.draining)),
        )?;
        let strategy = s
            .iter()
            .map(|x| (vec![("queue", x.queue.clone()), ("strategy", x.strategy.to_string())], 1.0))
            .collect();
        gauges(enc, "anteroom_admission_strategy", "The admission strategy (value 1)", strategy)?;
        gauges(
            enc,
            "anteroom_pow_difficulty_bits",
            "Proof-of-work difficulty asked of each enqueue",
            per(&|x| f64::from(x.pow_difficulty)),
        )?;
        let waits = s
            .iter()
            .flat_map(|x| {
                x.waits.iter().flat_map(|(until, p)| {
                    [("0.5", p.p50), ("0.9", p.p90), ("0.99", p.p99)].into_iter().filter_map(
                        |(quantile, v)| {
                            let labels = vec![
                                ("queue", x.queue.clone()),
                                ("until", (*until).to_string()),
                                ("quantile", quantile.to_string()),
                            ];
                            v.map(|v| (labels, v))
                        },
                    )
                })
            })
            .collect();
        gauges(
            enc,
            "anteroom_wait_seconds",
            "Time from joining to being served (until=served) or to claiming (until=claimed) of the visitors who claimed, since the queue was created; each quantile is the upper end of its bucket (1 s wide to 10 s, then 10% wide)",
            waits,
        )
    }

    fn origin(
        &self,
        enc: &mut DescriptorEncoder,
        s: &[QueueSnapshot],
        now_ms: u64,
    ) -> std::fmt::Result {
        let with = |f: &dyn Fn(&shared::admission::HealthReading, f64) -> Option<f64>| -> Vec<(Labels, f64)> {
            s.iter().filter_map(|x| x.health.as_ref().and_then(|(h, age)| f(h, *age)).map(|v| (q(&x.queue), v))).collect()
        };
        gauges(
            enc,
            "anteroom_origin_latency_milliseconds",
            "Latency in the origin's last health report",
            with(&|h, _| Some(h.latency_ms)),
        )?;
        gauges(
            enc,
            "anteroom_origin_error_ratio",
            "Error rate in the origin's last health report",
            with(&|h, _| Some(h.error_rate)),
        )?;
        gauges(
            enc,
            "anteroom_origin_in_flight",
            "In-flight work in the origin's last health report",
            with(&|h, _| h.in_flight.map(|v| v as f64)),
        )?;
        gauges(
            enc,
            "anteroom_origin_report_age_seconds",
            "Age of the origin's last health report",
            with(&|_, age| Some(age)),
        )?;
        let published = lock(&self.published)
            .iter()
            .map(|(slug, at)| (q(slug), now_ms.saturating_sub(*at) as f64 / 1000.0))
            .collect();
        gauges(
            enc,
            "anteroom_publish_age_seconds",
            "Since this process last published the queue to the edge (only the process holding its publish lease publishes it)",
            published,
        )
    }
}

impl Collector for QueueCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let read = lock(&self.snapshot).clone();
        let now_ms = *lock(&self.now_ms);
        let up = if read.is_some() { 1.0 } else { 0.0 };
        gauges(
            &mut enc,
            "anteroom_store_up",
            "1 if this scrape read the queue figures from the store; 0 if the store failed and they are left out",
            vec![(Vec::new(), up)],
        )?;
        let s = read.unwrap_or_default();
        self.totals(&mut enc, &s)?;
        self.state(&mut enc, &s)?;
        self.origin(&mut enc, &s, now_ms)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
