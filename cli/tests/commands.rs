//! Every operator command of the `anteroom` binary against a real coordinator (in this
//! process, on loopback sockets) over a real `redis-server`: text for people, `--json`
//! parsed, the exit codes, `watch` under a pseudo-terminal (util-linux `script`) and piped,
//! completions and the help's examples.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Stack};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_anteroom");

/// A run of the binary: exit code, stdout, stderr.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.out))
    }
}

fn ran(o: Output) -> Ran {
    Ran {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs `anteroom args...` with the admin URL and `key` in the environment (off the
/// runtime's threads: the coordinator answers on them).
async fn cli(admin: SocketAddr, key: Option<&str>, args: &[&str]) -> Ran {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("ANTEROOM_ADMIN_URL", format!("http://{admin}"))
        .env_remove("ANTEROOM_ADMIN_KEY");
    if let Some(k) = key {
        c.env("ANTEROOM_ADMIN_KEY", k);
    }
    tokio::task::spawn_blocking(move || ran(c.output().unwrap())).await.unwrap()
}

async fn ok(admin: SocketAddr, args: &[&str]) -> Ran {
    let r = cli(admin, Some(ADMIN_KEY), args).await;
    assert_eq!(r.code, 0, "anteroom {args:?}: {}{}", r.out, r.err);
    r
}

async fn code(admin: SocketAddr, args: &[&str]) -> i32 {
    cli(admin, Some(ADMIN_KEY), args).await.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_command_against_a_real_coordinator() {
    let s = Stack::start(None).await;
    let a = s.admin;

    // queue create / list / show / update.
    let q = ok(
        a,
        &[
            "queue",
            "create",
            "demo",
            "--paths",
            "/shop",
            "--expiry",
            "60",
            "--capacity",
            "3",
            "--display-name",
            "The Night Orchestra",
            "--logo-text",
            "Riverside Tickets",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(
        (q["queue_id"].as_str(), q["display_name"].as_str()),
        (Some("demo"), Some("The Night Orchestra"))
    );
    assert_eq!(
        q["admission"]["policy"],
        serde_json::json!({"strategy": "capacity", "max_active": 3})
    );
    let text = ok(a, &["queue", "create", "second", "--rate", "2.5"]).await.out;
    assert!(
        text.starts_with("created second (id ") && text.contains("\"strategy\":\"fixed_rate\""),
        "{text}"
    );
    assert_eq!(code(a, &["queue", "create", "demo"]).await, 5, "a taken slug is refused");
    assert_eq!(code(a, &["queue", "create", "Not A Slug"]).await, 5);
    let bad =
        cli(a, Some(ADMIN_KEY), &["queue", "create", "x", "--display-name", "two\nlines"]).await;
    assert_eq!(bad.code, 5);
    assert!(
        bad.err.contains("answered 400 Bad Request: display_name contains a control character")
            && bad.err.trim_end().ends_with("(invalid_parameter)"),
        "{}",
        bad.err
    );
    let list = ok(a, &["queue", "list"]).await.out;
    let header = list.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["QUEUE", "ID", "STATE", "WAITING", "ACTIVE", "RATE", "NAME"]
    );
    assert!(
        list.lines().any(|l| l.starts_with("demo ")
            && l.contains(" open ")
            && l.ends_with("The Night Orchestra")),
        "{list}"
    );
    let listed = ok(a, &["queue", "list", "--json"]).await.json();
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["queue_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["demo", "second"]
    );
    let shown = ok(a, &["queue", "show", "demo"]).await.out;
    assert!(
        shown.contains("display name     The Night Orchestra")
            && shown.contains("position expiry  60 s"),
        "{shown}"
    );
    let live = ok(a, &["queue", "show", &q["id"].to_string(), "--json"]).await.json();
    assert_eq!(live["summary"]["state"], "open", "by numeric id too");
    assert_eq!(
        ok(
            a,
            &[
                "queue",
                "update",
                "demo",
                "--token-validity",
                "120",
                "--set",
                "waiting_status=429",
                "--json"
            ]
        )
        .await
        .json()["token_validity_second"],
        120
    );
    assert_eq!(code(a, &["queue", "update", "demo"]).await, 2, "nothing to change");
    assert_eq!(code(a, &["queue", "show", "nope"]).await, 4);
    assert_eq!(code(a, &["queue", "update", "demo", "--set", "pow_difficulty=99"]).await, 5);

    // People join through the public API.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let r = http
            .post(format!("http://{}/assign_queue_pos", s.public))
            .form(&[("queue_id", "demo")])
            .send()
            .await
            .unwrap();
        let st = r.status();
        assert_eq!(st, 200, "{}", r.text().await.unwrap());
    }

    // advance, pause, resume, drain, open, rate.
    assert_eq!(ok(a, &["advance", "demo", "2", "--json"]).await.json()["serving_pos"], 2);
    assert!(
        ok(a, &["advance", "demo", "1"])
            .await
            .out
            .starts_with("demo: serving position 3 (+1): places 3–3 may come in")
    );
    let p = ok(a, &["pause", "demo"]).await.out;
    assert!(p.starts_with("demo: paused; nobody is admitted until resumed ("), "{p}");
    assert_eq!(ok(a, &["pause", "demo", "--json"]).await.json()["admission"]["paused"], true);
    assert_eq!(ok(a, &["resume", "demo", "--json"]).await.json()["admission"]["paused"], false);
    assert!(ok(a, &["drain", "demo"]).await.out.contains("draining"));
    assert_eq!(ok(a, &["open", "demo", "--json"]).await.json()["admission"]["draining"], false);
    assert_eq!(code(a, &["pause", "nope"]).await, 4);
    let r = ok(a, &["rate", "demo", "5", "--json"]).await.json();
    assert_eq!(
        r["admission"]["policy"],
        serde_json::json!({"strategy": "fixed_rate", "rate_per_sec": 5.0, "burst": 0, "max_active": 3}),
        "the cap is kept"
    );
    assert!(
        ok(a, &["rate", "demo", "0.5"])
            .await
            .out
            .starts_with("demo: admitting 0.5/s (fixed rate), at most 3 sessions at once; about ")
    );
    assert_eq!(code(a, &["rate", "demo", "-1"]).await, 2, "clap refuses a negative without --");

    // message: set, show, clear.
    let m = ok(a, &["message", "demo", "--en", "Doors open at 8", "--zh", "八点开门", "--json"])
        .await
        .json();
    assert_eq!(m, serde_json::json!({"en": "Doors open at 8", "zh": "八点开门"}));
    assert!(ok(a, &["message", "demo"]).await.out.contains("en: Doors open at 8\n  zh: 八点开门"));
    assert_eq!(ok(a, &["message", "demo", "--clear", "--json"]).await.json(), Value::Null);
    assert_eq!(ok(a, &["message", "demo"]).await.out.trim(), "demo: no message");
    assert_eq!(code(a, &["message", "demo", "--en", ""]).await, 2);
    assert_eq!(
        code(a, &["message", "demo", "--en", "x", "--clear"]).await,
        2,
        "clap: conflicting flags"
    );

    // keys: a named key works and is audited by name; it cannot manage keys; revoked, it is refused.
    let k = ok(a, &["keys", "add", "ops-alice", "--json"]).await.json();
    let alice = k["key"].as_str().unwrap().to_string();
    assert!(
        ok(a, &["keys", "list"])
            .await
            .out
            .lines()
            .any(|l| l.starts_with("ops-alice ") && l.ends_with("bootstrap"))
    );
    let alice_pause = cli(a, Some(&alice), &["pause", "demo"]).await;
    assert_eq!(alice_pause.code, 0, "{}", alice_pause.err);
    assert_eq!(
        cli(a, Some(&alice), &["keys", "list"]).await.code,
        3,
        "a named key does not manage keys"
    );
    ok(a, &["keys", "revoke", "ops-alice"]).await;
    assert_eq!(cli(a, Some(&alice), &["queue", "list"]).await.code, 3);
    assert_eq!(code(a, &["keys", "revoke", "ops-alice"]).await, 4);
    assert!(
        ok(a, &["keys", "rotate", "--json"]).await.json()["keys"].as_array().unwrap().len() >= 2
    );
    ok(a, &["resume", "demo"]).await;

    // audit: who did what, in text and JSON.
    let entries = ok(a, &["audit", "--queue", "demo", "--since", "1h", "--json"]).await.json();
    let acts: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().into(), e["key"].as_str().unwrap().into()))
        .collect();
    for want in [
        ("queue.create", "bootstrap"),
        ("serving.increment", "bootstrap"),
        ("queue.pause", "ops-alice"),
        ("queue.update", "bootstrap"),
    ] {
        assert!(acts.contains(&(want.0.into(), want.1.into())), "{want:?} in {acts:?}");
    }
    let text = ok(a, &["audit", "--queue", "demo", "--limit", "3"]).await.out;
    assert_eq!(text.lines().count(), 4, "a header and three entries: {text}");
    assert!(
        text.contains("queue.create")
            && text.contains("display_name: null → \"The Night Orchestra\""),
        "{text}"
    );
    assert_eq!(code(a, &["audit", "--since", "yesterday"]).await, 2);

    // report: the HTML page to a file, the JSON to stdout.
    let dir = testkit::TempDir::new("anteroom-cli");
    let file = dir.0.join("demo.html");
    let r = ok(a, &["report", "demo", "-o", file.to_str().unwrap()]).await;
    assert!(r.err.starts_with(&format!("wrote {}", file.display())), "{}", r.err);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!doctype html") && html.contains("<svg"), "{}", &html[..200]);
    let report = ok(a, &["report", "demo", "--json"]).await.json();
    assert_eq!(report["totals"]["arrivals"], 5);

    // watch under a pseudo-terminal: three frames a second apart, redrawn in place.
    let started = Instant::now();
    let command = format!("{BIN} watch demo --count 3");
    let mut c = Command::new("script");
    c.args(["-qfec", &command, "/dev/null"])
        .env("ANTEROOM_ADMIN_URL", format!("http://{a}"))
        .env("ANTEROOM_ADMIN_KEY", ADMIN_KEY);
    let w = tokio::task::spawn_blocking(move || ran(c.output().unwrap())).await.unwrap();
    let took = started.elapsed();
    assert_eq!(w.code, 0, "{}{}", w.out, w.err);
    assert!(took >= Duration::from_millis(1900), "three refreshes a second apart took {took:?}");
    assert_eq!(w.out.matches("\x1b[H\x1b[2J").count(), 3, "redrawn in place: {:?}", w.out);
    assert!(
        w.out.contains("\x1b[?25l") && w.out.contains("\x1b[?25h"),
        "cursor hidden, then shown"
    );
    let last = w.out.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(
        last.contains("anteroom watch · demo — Riverside Tickets: The Night Orchestra"),
        "{last}"
    );
    assert!(last.contains("state     open (fixed rate)"), "{last}");
    assert!(last.lines().any(|l| l.starts_with("waiting   ")), "{last}");
    let served = last.lines().find(|l| l.starts_with("served    ")).unwrap();
    assert!(
        served.contains('█') && served.contains('░') && served.contains(" of 5 handed out"),
        "{served}"
    );
    assert!(last.lines().any(|l| l.starts_with("arrivals  ") && l.contains("/min now")), "{last}");
    // Piped: plain frames, or one JSON object per line.
    let piped = ok(a, &["watch", "demo", "--count", "2", "--interval", "0.5"]).await.out;
    assert_eq!(piped.matches("anteroom watch · demo").count(), 2);
    assert!(!piped.contains('\x1b'), "no terminal codes when piped");
    let lines = ok(a, &["watch", "demo", "--count", "2", "--interval", "0.5", "--json"]).await.out;
    let frames: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["summary"]["assigned"], 5);
    assert_eq!(code(a, &["watch", "nope", "--count", "1"]).await, 4);
    assert_eq!(code(a, &["watch", "demo", "--interval", "0.1"]).await, 2);

    // delete: only with --yes.
    assert_eq!(code(a, &["queue", "delete", "second"]).await, 2);
    assert!(
        ok(a, &["queue", "delete", "second", "--yes"]).await.out.starts_with("deleted second (id ")
    );
    assert_eq!(code(a, &["queue", "show", "second"]).await, 4);

    // Keys and addresses: missing, wrong, nobody there.
    assert_eq!(cli(a, None, &["queue", "list"]).await.code, 2);
    assert_eq!(cli(a, Some("wrong-key-wrong-key"), &["queue", "list"]).await.code, 3);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone = cli(closed, Some(ADMIN_KEY), &["queue", "list"]).await;
    assert_eq!(gone.code, 6, "{}", gone.err);

    // Completions and help.
    let bash = ok(a, &["completions", "bash"]).await.out;
    assert!(bash.contains("_anteroom()") && bash.contains("watch"), "{}", &bash[..200]);
    assert!(ok(a, &["completions", "zsh"]).await.out.starts_with("#compdef anteroom"));
    for cmd in [
        "queue create",
        "pause",
        "rate",
        "advance",
        "message",
        "audit",
        "report",
        "watch",
        "keys add",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let help = ok(a, &args).await.out;
        assert!(help.contains("Examples:\n  anteroom "), "{cmd} --help has examples: {help}");
    }
    assert!(ok(a, &["--help"]).await.out.contains("Exit codes:\n  0  done"));
}
