//! `anteroom plan` against a real stack: a real `redis-server` on a free loopback port and the
//! coordinator (in this process, both listeners on loopback sockets, edge-only with an edge
//! key, as deployed). `--apply` through the binary creates the seed scenarios' queues exactly
//! as planned, and a small rehearsal, played open loop against it, matches the predicted
//! median wait within 15%.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};

use anteroom_cli::admin::Admin;
use anteroom_cli::plan::profile::Profile;
use anteroom_cli::plan::rehearse::{self, Options};
use common::{ADMIN_KEY, Stack};
use serde_json::Value;

/// The edge key (64 hex): the coordinator is edge-only, so visitors' calls carry the edge's
/// signed client header.
const EDGE_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// The stack tests take turns: a rehearsal keeps time and should not share two cores with
/// another test's planning.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs the `anteroom` binary; returns success, stdout and stderr.
async fn anteroom(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_anteroom"))
            .args(&args)
            .env_remove("ANTEROOM_ADMIN_URL")
            .env_remove("ANTEROOM_ADMIN_KEY")
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.success(), text(out.stdout), text(out.stderr))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_the_planned_queue_and_refuses_a_taken_name() {
    let _turn = TURN.lock().await;
    let stack = Stack::start(Some(EDGE_KEY)).await;
    let admin = Admin::new(&stack.admin_args()).unwrap();
    for name in ["spike-500k", "ramp-100k-bots"] {
        let file = root().join(format!("examples/plans/{name}.toml"));
        let args: Vec<String> = vec![
            "plan".into(),
            file.display().to_string(),
            "--apply".into(),
            "--format".into(),
            "json".into(),
            "--admin-url".into(),
            format!("http://{}", stack.admin),
            "--admin-key".into(),
            ADMIN_KEY.into(),
        ];
        let (ok, stdout, stderr) = anteroom(args.clone()).await;
        assert!(ok, "{name}: {stderr}");
        assert!(stderr.contains(&format!("created queue {name}")), "{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        let rec = &report["recommendation"];
        let q = admin.status(name).await.unwrap().queue;
        assert_eq!(serde_json::to_value(&q.admission).unwrap()["policy"], rec["policy"], "{name}");
        assert_eq!(Value::from(q.position_expiry_second), rec["position_expiry_secs"]);
        assert_eq!(Value::from(q.token_validity_second), rec["token_validity_secs"]);
        assert_eq!(Value::from(q.pow_difficulty), rec["pow"]["difficulty"]);
        assert!(q.enable_queue_position_expiry);
        assert_eq!(serde_json::to_value(&q.paths).unwrap(), rec["queue"]["paths"]);
        if name == "spike-500k" {
            // The same plan again: the name is taken, and the operator is told why.
            let (ok, _, stderr) = anteroom(args).await;
            assert!(!ok);
            assert!(
                stderr.contains("could not create the queue: the coordinator answered 409"),
                "{stderr}"
            );
            assert!(stderr.contains("duplicate_queue_id"), "{stderr}");
        }
    }
    // Without the key nothing is sent.
    let file = root().join("examples/plans/spike-500k.toml").display().to_string();
    let (ok, _, stderr) = anteroom(vec!["plan".into(), file, "--apply".into()]).await;
    assert!(!ok && stderr.contains("needs the operator key"), "{stderr}");
    stack.stop().await;
}

/// A crowd of 960 in 8 s (120 a second) in front of a stage that takes 60 a second: the
/// line peaks near 580 and drains in about 18 s.
const SMALL: &str = r#"
name = "rehearsal-test"
[traffic]
curve = { shape = "spike", peak_rps = 120, duration_secs = 8 }
[visitors]
abandon_while_waiting = 0.1
abandon_after_admission = 0.1
session = { distribution = "fixed", secs = 3 }
[[downstream]]
name = "checkout"
rate_per_sec = 60
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_rehearsal_matches_the_predicted_median_wait() {
    let _turn = TURN.lock().await;
    let stack = Stack::start(Some(EDGE_KEY)).await;
    let profile: Profile = toml::from_str(SMALL).unwrap();
    let options = Options {
        public_addr: stack.public,
        scale: Some(1.0),
        speedup: 1.0,
        edge_key: Some(EDGE_KEY.into()),
    };
    let admin = Admin::new(&stack.admin_args()).unwrap();
    let r = rehearse::rehearse(&profile, &options, &admin).await.unwrap();
    println!("{}", r.table());
    assert!(r.complete, "the line did not empty in time");
    assert_eq!(r.places, 960);
    assert_eq!(r.enqueues.failures(), 0);
    // About 90% of the places are claimed (10% leave while waiting, 10% of the rest never
    // claim); every claim got a token.
    assert!((700..=900).contains(&r.crowd.claims), "{:?}", r.crowd);
    let (p, m) = (&r.predicted_waits, &r.measured_waits);
    assert!(p.p50 > 2.0, "the prediction has a real wait to compare: {p:?}");
    assert!(
        (m.p50 - p.p50).abs() <= 0.15 * p.p50,
        "median wait: predicted {} s, measured {} s",
        p.p50,
        m.p50
    );
    let (pl, ml) = (r.predicted_line_peak, r.measured_line_peak);
    assert!((ml - pl).abs() <= 0.15 * pl, "line peak: predicted {pl}, measured {ml}");
    // The rehearsal queue is gone.
    let gone = admin.status(&r.queue_id).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(gone.contains("unknown_queue"), "{gone}");
    stack.stop().await;
}
