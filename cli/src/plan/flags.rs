//! A profile from flags: each flag replaces its part of the profile file, or, without a
//! file, the flags are the whole profile (a curve and at least one stage required).

use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};

use super::profile::{Curve, Profile, Stage, Traffic};

/// Flags that describe or change a profile.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// The sale's slug (queue_id).
    #[arg(long)]
    pub name: Option<String>,
    /// A spike: PEAK_RPS:SECS.
    #[arg(long, value_name = "PEAK_RPS:SECS")]
    pub spike: Option<String>,
    /// A ramp: PEAK_RPS:RAMP_SECS[:HOLD_SECS[:DOWN_SECS]].
    #[arg(long, value_name = "PEAK_RPS:RAMP_SECS[:HOLD_SECS[:DOWN_SECS]]")]
    pub ramp: Option<String>,
    /// Requests per second from a CSV file, one line per second.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Share of requests that are new visitors.
    #[arg(long)]
    pub new_share: Option<f64>,
    /// Share of new visitors that are bots.
    #[arg(long)]
    pub bot_share: Option<f64>,
    /// Share of visitors who leave while waiting.
    #[arg(long)]
    pub abandon_waiting: Option<f64>,
    /// Share of admitted visitors who never claim.
    #[arg(long)]
    pub abandon_admitted: Option<f64>,
    /// A downstream stage, NAME[,rate=R][,concurrency=C][,hold=SECS][,per_visitor=N];
    /// repeat for several (they replace the file's stages).
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
}

impl Overrides {
    /// `base` with the flags applied, or the profile the flags alone describe.
    pub fn apply(&self, base: Option<Profile>) -> anyhow::Result<Profile> {
        let curve = self.curve()?;
        let mut p = match base {
            Some(p) => p,
            None => {
                let Some(curve) = curve.clone() else {
                    bail!("give a profile file, or a curve with --spike, --ramp or --csv");
                };
                ensure!(!self.stage.is_empty(), "give a profile file, or at least one --stage");
                blank(curve)
            }
        };
        if let Some(c) = curve {
            p.traffic.curve = c;
        }
        if !self.stage.is_empty() {
            p.downstream =
                self.stage.iter().map(|s| parse_stage(s)).collect::<anyhow::Result<_>>()?;
        }
        set(&mut p.name, self.name.clone());
        set(&mut p.traffic.new_visitor_share, self.new_share);
        set(&mut p.traffic.bot_share, self.bot_share);
        set(&mut p.visitors.abandon_while_waiting, self.abandon_waiting);
        set(&mut p.visitors.abandon_after_admission, self.abandon_admitted);
        Ok(p)
    }

    fn curve(&self) -> anyhow::Result<Option<Curve>> {
        let given = [self.spike.is_some(), self.ramp.is_some(), self.csv.is_some()];
        ensure!(
            given.iter().filter(|&&g| g).count() <= 1,
            "give at most one of --spike, --ramp and --csv"
        );
        if let Some(s) = &self.spike {
            let n = numbers("--spike", s, 2, 2)?;
            return Ok(Some(Curve::Spike { peak_rps: n[0], duration_secs: n[1] }));
        }
        if let Some(s) = &self.ramp {
            let n = numbers("--ramp", s, 2, 4)?;
            let at = |i: usize| n.get(i).copied().unwrap_or(0.0);
            return Ok(Some(Curve::Ramp {
                peak_rps: n[0],
                ramp_secs: n[1],
                hold_secs: at(2),
                down_secs: at(3),
            }));
        }
        Ok(self.csv.clone().map(|path| Curve::Csv { path }))
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// A profile with every optional part at its default.
fn blank(curve: Curve) -> Profile {
    Profile {
        name: "plan".into(),
        title: String::new(),
        traffic: Traffic { curve, new_visitor_share: 1.0, bot_share: 0.0, regions: Vec::new() },
        visitors: Default::default(),
        pow: Default::default(),
        admission: Default::default(),
        queue: Default::default(),
        downstream: Vec::new(),
    }
}

/// `min..=max` numbers separated by colons.
fn numbers(flag: &str, text: &str, min: usize, max: usize) -> anyhow::Result<Vec<f64>> {
    let n: Vec<f64> = text
        .split(':')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{flag} {text:?}: not a list of numbers separated by ':'"))?;
    ensure!((min..=max).contains(&n.len()), "{flag} {text:?}: expected {min} to {max} numbers");
    Ok(n)
}

/// `NAME[,key=value]...`.
fn parse_stage(text: &str) -> anyhow::Result<Stage> {
    let mut parts = text.split(',');
    let name = parts.next().unwrap_or("").trim().to_string();
    let mut s =
        Stage { name, rate_per_sec: None, concurrency: None, hold_secs: None, per_visitor: 1.0 };
    for kv in parts {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--stage {text:?}: {kv:?} is not key=value");
        };
        let x: f64 =
            v.trim().parse().with_context(|| format!("--stage {text:?}: {v:?} is not a number"))?;
        match k.trim() {
            "rate" => s.rate_per_sec = Some(x),
            "concurrency" => s.concurrency = Some(x),
            "hold" => s.hold_secs = Some(x),
            "per_visitor" => s.per_visitor = x,
            other => bail!(
                "--stage {text:?}: unknown key {other:?} (rate, concurrency, hold, per_visitor)"
            ),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_alone_make_a_profile_and_bad_ones_say_why() {
        let o = Overrides {
            spike: Some("1000:60".into()),
            stage: vec!["db,rate=100,concurrency=50,hold=0.5".into()],
            ..Overrides::default()
        };
        let p = o.apply(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.traffic.curve, Curve::Spike { peak_rps: 1000.0, duration_secs: 60.0 });
        assert_eq!(p.downstream[0].hold_secs, Some(0.5));
        let err = |o: Overrides| o.apply(None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(Overrides { spike: Some("1000".into()), ..o.clone() })
                .contains("expected 2 to 2 numbers")
        );
        assert!(
            err(Overrides { stage: vec!["db,speed=3".into()], ..o.clone() })
                .contains("unknown key \"speed\"")
        );
        assert!(
            err(Overrides { ramp: Some("1:2".into()), ..o.clone() }).contains("at most one of")
        );
        assert!(err(Overrides { stage: vec![], ..o }).contains("at least one --stage"));
    }
}
