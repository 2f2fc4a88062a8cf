//! The planner's two inputs: the traffic profile (arrival curve, new visitors against polls,
//! regions, bots, sessions, abandonment) and the downstream's limits (stages, each a rate
//! and/or a concurrency). Read from TOML (the schema is `docs/plans/README.md`) and checked before
//! anything is computed, so a bad profile is one clear error, never a panic or a silly plan.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Serialize};

/// Longest profile the planner accepts: a week of arrivals.
pub const MAX_SECS: f64 = 7.0 * 86_400.0;

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The sale's slug: the queue's `queue_id` and the report's file names.
    pub name: String,
    /// One line saying what the sale is.
    #[serde(default)]
    pub title: String,
    /// Who comes, when and how.
    pub traffic: Traffic,
    /// How visitors behave once they have a place.
    #[serde(default)]
    pub visitors: Visitors,
    /// What proof-of-work may cost a visitor, and what the bots bring.
    #[serde(default)]
    pub pow: Pow,
    /// How close to the downstream's limit admission may run.
    #[serde(default)]
    pub admission: Admission,
    /// Queue settings the plan passes through unchanged.
    #[serde(default)]
    pub queue: QueueSettings,
    /// The protected systems, in the order a visitor reaches them; the tightest one governs.
    pub downstream: Vec<Stage>,
}

/// The traffic profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Requests per second over time.
    pub curve: Curve,
    /// Share of those requests that are new visitors (each wants a place); the rest are polls
    /// and reloads of visitors already there, which the waiting room replaces by its own polls.
    #[serde(default = "one")]
    pub new_visitor_share: f64,
    /// Share of new visitors that are bots.
    #[serde(default)]
    pub bot_share: f64,
    /// Where the visitors are.
    #[serde(default)]
    pub regions: Vec<Region>,
}

fn one() -> f64 {
    1.0
}

/// Requests per second over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum Curve {
    /// Full rate from the first second for `duration_secs`.
    Spike {
        /// Requests per second.
        peak_rps: f64,
        /// How long the spike lasts, seconds.
        duration_secs: f64,
    },
    /// A linear rise to the peak, a plateau, a linear fall.
    Ramp {
        /// Requests per second at the top.
        peak_rps: f64,
        /// Rise from zero, seconds.
        ramp_secs: f64,
        /// Time at the peak, seconds.
        #[serde(default)]
        hold_secs: f64,
        /// Fall back to zero, seconds.
        #[serde(default)]
        down_secs: f64,
    },
    /// Requests per second, one line per second (a header line is allowed), relative to the
    /// profile file.
    Csv {
        /// The file.
        path: PathBuf,
    },
}

/// One region the visitors come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Its name.
    pub name: String,
    /// Share of the visitors.
    pub share: f64,
    /// Round trip from its PoPs to the coordinator, milliseconds, if known: added to every
    /// enqueue and claim from there.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

/// How visitors behave once they have a place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visitors {
    /// Share of human visitors who leave before their turn (their place is passed like any
    /// other, but nobody claims it).
    #[serde(default)]
    pub abandon_while_waiting: f64,
    /// Share of the humans still there at their turn who never claim it.
    #[serde(default)]
    pub abandon_after_admission: f64,
    /// How long an admitted visitor stays on the protected site.
    #[serde(default)]
    pub session: SessionLength,
}

impl Default for Visitors {
    fn default() -> Self {
        Visitors {
            abandon_while_waiting: 0.0,
            abandon_after_admission: 0.0,
            session: SessionLength::default(),
        }
    }
}

/// The distribution of session lengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum SessionLength {
    /// Every session the same length.
    Fixed {
        /// Seconds.
        secs: f64,
    },
    /// Memoryless: many short sessions, a few long ones.
    Exponential {
        /// Mean, seconds.
        mean_secs: f64,
    },
    /// Log-normal through a median and a 90th percentile (checkout times usually look so).
    Lognormal {
        /// Median, seconds.
        median_secs: f64,
        /// 90th percentile, seconds.
        p90_secs: f64,
    },
}

impl Default for SessionLength {
    fn default() -> Self {
        SessionLength::Lognormal { median_secs: 180.0, p90_secs: 480.0 }
    }
}

/// What proof-of-work may cost a visitor, and what the bots bring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pow {
    /// Longest median solve a visitor's browser may spend, seconds (on the throttled-phone
    /// figure of `shared::pow::MAX_DIFFICULTY`'s measurement).
    #[serde(default = "defaults::max_human_secs")]
    pub max_human_secs: f64,
    /// CPU cores the bot operators bring, if known; without it proof-of-work only prices a
    /// place and cannot cap the bots' share.
    #[serde(default)]
    pub bot_cores: Option<f64>,
    /// SHA-256 attempts per second of one bot core.
    #[serde(default = "defaults::bot_hashes_per_core_sec")]
    pub bot_hashes_per_core_sec: f64,
    /// Share of the places bots may end up with; the difficulty is the least that gets there.
    #[serde(default = "defaults::max_bot_share")]
    pub max_bot_share: f64,
}

impl Default for Pow {
    fn default() -> Self {
        Pow {
            max_human_secs: defaults::max_human_secs(),
            bot_cores: None,
            bot_hashes_per_core_sec: defaults::bot_hashes_per_core_sec(),
            max_bot_share: defaults::max_bot_share(),
        }
    }
}

/// How close to the downstream's limit admission may run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// Share of the tightest stage's limit admission runs at (room for retries and for
    /// visitors who do more than the profile says).
    #[serde(default = "defaults::headroom")]
    pub headroom: f64,
}

impl Default for Admission {
    fn default() -> Self {
        Admission { headroom: defaults::headroom() }
    }
}

/// Queue settings passed through to the queue configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Path prefixes the edge protects with this queue.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// One protected system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Its name.
    pub name: String,
    /// Units of work per second it takes (requests, transactions, payments).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Units it holds at once.
    #[serde(default)]
    pub concurrency: Option<f64>,
    /// How long one unit is held, seconds; without it a unit is held for the visitor's whole
    /// session (then `concurrency` is a cap on sessions).
    #[serde(default)]
    pub hold_secs: Option<f64>,
    /// Units one admitted visitor sends to it over a session.
    #[serde(default = "one")]
    pub per_visitor: f64,
}

/// Defaults, with the reasons in `docs/plans/README.md`.
pub mod defaults {
    /// Median solve a visitor may spend: 2 s keeps difficulty 20 (1.8 s measured) allowed.
    pub fn max_human_secs() -> f64 {
        2.0
    }
    /// One core's SHA-256 attempts per second: `openssl speed -evp sha256 -bytes 54` on this
    /// project's 2-core Xeon machine (SHA-NI) gave 315 MB/s of 54-byte messages, 5.8 M/s.
    /// GPUs do far more; state bot compute in cores of this speed.
    pub fn bot_hashes_per_core_sec() -> f64 {
        5.8e6
    }
    /// Bots may keep 5% of the places.
    pub fn max_bot_share() -> f64 {
        0.05
    }
    /// Admission at 90% of the tightest stage.
    pub fn headroom() -> f64 {
        0.9
    }
}

impl Profile {
    /// Reads a profile file.
    pub fn read(path: &Path) -> anyhow::Result<Profile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let mut p: Profile = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        if let Curve::Csv { path: csv } = &mut p.traffic.curve
            && csv.is_relative()
        {
            *csv = path.parent().unwrap_or(Path::new(".")).join(&*csv);
        }
        Ok(p)
    }

    /// Checks every number; the error names the field and what it must be.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            shared::valid_slug(&self.name),
            "name must match [a-z0-9_-]{{1,32}} (it becomes the queue_id)"
        );
        self.traffic.validate()?;
        share("visitors.abandon_while_waiting", self.visitors.abandon_while_waiting)?;
        share("visitors.abandon_after_admission", self.visitors.abandon_after_admission)?;
        self.visitors.session.validate()?;
        self.pow.validate()?;
        let h = self.admission.headroom;
        ensure!(h > 0.0 && h <= 1.0, "admission.headroom must be above 0 and at most 1");
        ensure!(!self.downstream.is_empty(), "downstream needs at least one stage");
        self.downstream.iter().try_for_each(Stage::validate)
    }
}

impl Traffic {
    fn validate(&self) -> anyhow::Result<()> {
        share("traffic.new_visitor_share", self.new_visitor_share)?;
        ensure!(self.new_visitor_share > 0.0, "traffic.new_visitor_share must be above 0");
        share("traffic.bot_share", self.bot_share)?;
        match &self.curve {
            Curve::Spike { peak_rps, duration_secs } => {
                positive("traffic.curve.peak_rps", *peak_rps)?;
                span("traffic.curve.duration_secs", *duration_secs, true)
            }
            Curve::Ramp { peak_rps, ramp_secs, hold_secs, down_secs } => {
                positive("traffic.curve.peak_rps", *peak_rps)?;
                span("traffic.curve.ramp_secs", *ramp_secs, true)?;
                span("traffic.curve.hold_secs", *hold_secs, false)?;
                span("traffic.curve.down_secs", *down_secs, false)?;
                span("the ramp's total length", ramp_secs + hold_secs + down_secs, true)
            }
            Curve::Csv { .. } => Ok(()),
        }?;
        for r in &self.regions {
            share(&format!("traffic.regions.{}.share", r.name), r.share)?;
            if let Some(rtt) = r.rtt_ms {
                ensure!(
                    rtt.is_finite() && rtt >= 0.0,
                    "traffic.regions.{}.rtt_ms must be a number of at least 0",
                    r.name
                );
            }
        }
        let total: f64 = self.regions.iter().map(|r| r.share).sum();
        ensure!(
            self.regions.is_empty() || (total - 1.0).abs() <= 0.01,
            "traffic.regions' shares must add up to 1 (they add up to {total})"
        );
        Ok(())
    }
}

impl SessionLength {
    fn validate(&self) -> anyhow::Result<()> {
        match *self {
            SessionLength::Fixed { secs } => span("visitors.session.secs", secs, true),
            SessionLength::Exponential { mean_secs } => {
                span("visitors.session.mean_secs", mean_secs, true)
            }
            SessionLength::Lognormal { median_secs, p90_secs } => {
                span("visitors.session.median_secs", median_secs, true)?;
                span("visitors.session.p90_secs", p90_secs, true)?;
                ensure!(
                    p90_secs >= median_secs,
                    "visitors.session.p90_secs must be at least median_secs"
                );
                Ok(())
            }
        }
    }
}

impl Pow {
    fn validate(&self) -> anyhow::Result<()> {
        positive("pow.max_human_secs", self.max_human_secs)?;
        positive("pow.bot_hashes_per_core_sec", self.bot_hashes_per_core_sec)?;
        if let Some(c) = self.bot_cores {
            ensure!(c.is_finite() && c >= 0.0, "pow.bot_cores must be a number of at least 0");
        }
        share("pow.max_bot_share", self.max_bot_share)
    }
}

impl Stage {
    fn validate(&self) -> anyhow::Result<()> {
        let n = &self.name;
        ensure!(!n.trim().is_empty(), "every downstream stage needs a name");
        ensure!(
            self.rate_per_sec.is_some() || self.concurrency.is_some(),
            "downstream stage {n:?} needs rate_per_sec or concurrency"
        );
        if let Some(r) = self.rate_per_sec {
            positive(&format!("downstream {n:?} rate_per_sec"), r)?;
        }
        if let Some(c) = self.concurrency {
            positive(&format!("downstream {n:?} concurrency"), c)?;
        }
        if let Some(h) = self.hold_secs {
            ensure!(
                self.concurrency.is_some(),
                "downstream stage {n:?}: hold_secs needs concurrency"
            );
            span(&format!("downstream {n:?} hold_secs"), h, true)?;
        }
        positive(&format!("downstream {n:?} per_visitor"), self.per_visitor)
    }
}

fn share(field: &str, x: f64) -> anyhow::Result<()> {
    ensure!((0.0..=1.0).contains(&x), "{field} must be between 0 and 1 (got {x})");
    Ok(())
}

fn positive(field: &str, x: f64) -> anyhow::Result<()> {
    ensure!(x.is_finite() && x > 0.0 && x <= 1e12, "{field} must be a number above 0 (got {x})");
    Ok(())
}

/// A length of time within what the planner simulates.
fn span(field: &str, secs: f64, nonzero: bool) -> anyhow::Result<()> {
    let ok = (0.0..=MAX_SECS).contains(&secs) && (!nonzero || secs > 0.0);
    if !ok {
        let least = if nonzero { "above 0" } else { "at least 0" };
        bail!("{field} must be {least} and at most {MAX_SECS} seconds (got {secs})");
    }
    Ok(())
}
