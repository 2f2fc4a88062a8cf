//! The load generator against a real socket: a small HTTP/1.1 server on loopback that
//! records when each request arrives. Open loop keeps to its schedule (not faster, every
//! request once), closed loop stops at its count, statuses are tallied, and the inspect hook
//! sees every request of the window once.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadgen::{Call, Plan, steady};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Arrival time and request line of every request the server saw.
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

/// Serves until the test ends: `/busy` answers 503, anything else 200 `ok`.
async fn server() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, log.clone()));
        }
    });
    (addr, seen)
}

/// One keep-alive connection: reads each request (headers and a `content-length` body)
/// and answers it.
async fn serve(mut stream: TcpStream, seen: Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            let line = head.lines().next().unwrap_or("").to_string();
            seen.lock().unwrap().push((Instant::now(), line.clone()));
            let status =
                if line.contains(" /busy ") { "503 Service Unavailable" } else { "200 OK" };
            let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_keeps_to_its_schedule_and_sends_each_request_once() {
    let (addr, seen) = server().await;
    let indexes: Arc<Mutex<Vec<u64>>> = Arc::default();
    let hook = indexes.clone();
    let plan = Plan {
        addr,
        connections: 4,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(40),
        schedule: Some(steady(80.0)),
        make: Arc::new(|i| Some(Call::form("/join", format!("n={i}")))),
        inspect: Some(Arc::new(move |i, status, body, _, _| {
            assert!(status.is_success() && &body[..] == b"ok");
            hook.lock().unwrap().push(i);
        })),
    };
    let out = loadgen::run(plan).await.unwrap();
    assert_eq!((out.ok, out.failures()), (40, 0), "{out:?}");
    let mut got = indexes.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, (0..40).collect::<Vec<_>>());
    let times: Vec<Instant> = seen.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(times.len(), 40);
    // 40 requests at 80 a second: the last is due 39/80 s after the first, never sooner.
    let span = times.iter().max().unwrap().duration_since(*times.iter().min().unwrap());
    assert!(span >= Duration::from_millis(470), "sent in {span:?}: faster than scheduled");
    assert!(span < Duration::from_secs(3), "sent in {span:?}");
    // Open loop: the rate is the schedule's, not what the server could take.
    assert!((out.rps - 80.0).abs() < 20.0, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_stops_at_its_count_and_tallies_statuses() {
    let (addr, seen) = server().await;
    let plan = Plan {
        addr,
        connections: 3,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(30),
        schedule: None,
        make: Arc::new(|i| Some(if i % 3 == 0 { Call::get("/busy") } else { Call::get("/fine") })),
        inspect: None,
    };
    let out = loadgen::run(plan).await.unwrap();
    assert_eq!(out.ok, 20, "{out:?}");
    assert_eq!(out.statuses.get(&503), Some(&10), "{out:?}");
    assert_eq!(out.failures(), 10);
    assert_eq!(seen.lock().unwrap().len(), 30);
    assert!(out.p50_ms > 0.0 && out.p50_ms <= out.p99_ms && out.p99_ms <= out.max_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_that_runs_out_ends_the_run() {
    let (addr, seen) = server().await;
    let plan = Plan {
        addr,
        connections: 2,
        warmup: Duration::ZERO,
        duration: Some(Duration::from_secs(30)),
        max_requests: None,
        // Five requests, 10 ms apart, then nothing: the run ends long before its 30 s.
        schedule: Some(Arc::new(|j| (j < 5).then(|| Duration::from_millis(10 * j)))),
        make: Arc::new(|_| Some(Call::get("/fine"))),
        inspect: None,
    };
    let started = Instant::now();
    let out = loadgen::run(plan).await.unwrap();
    assert_eq!(out.ok, 5, "{out:?}");
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert!(started.elapsed() < Duration::from_secs(10));
}
