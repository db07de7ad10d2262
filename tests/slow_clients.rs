//! Slow and idle clients against a real `payglot serve` under a low file descriptor limit:
//! slow request heads, idle keep-alive connections and slow bodies are cut off, and
//! thousands of trickling connections do not keep a fresh request from its answer or make
//! the idle gateway spin.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &str = "server:\n  header_read_timeout_ms: 1000\n  idle_timeout_ms: 1500\n  body_read_timeout_ms: 1000\n";

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After "pid (comm) ", utime and stime are the 12th and 13th fields, in clock ticks.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Reads until the peer closes; `true` when it closed (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (false, got),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_idle_connections_and_slow_bodies_are_cut_off() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.extra_yaml = LIMITS.into();
    g.write_config(&g.routes_yaml("xxpay-a"));
    g.start().await;
    let addr = ("127.0.0.1", g.port);

    // A connection that never sends a request head.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (closed, _) = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent connection is closed");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500), "closed after {waited:?}");

    // A head trickled one byte at a time never completes in time.
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET /v1/payments/x HTTP/1.1\r\nHost: a\r\nX-Slow: ".iter().cycle().take(200) {
        if trickle.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let (gone, _) = closed_within(&mut trickle, Duration::from_millis(100)).await;
        if gone {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled head is cut off");
    assert!(started.elapsed() < Duration::from_secs(4), "cut after {:?}", started.elapsed());

    // A kept-alive connection that goes idle after its request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /v1/payments/x HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (closed, answer) = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 401"), "answered first");
    assert!(closed, "an idle keep-alive connection is closed");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1300) && waited < Duration::from_secs(3), "closed after {waited:?}");

    // A body that stops halfway: 408, and nothing is created.
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(b"POST /v1/payments HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"out_")
        .await
        .unwrap();
    let (_, answer) = closed_within(&mut slow_body, Duration::from_secs(4)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "slow body answered: {answer}");
    assert!(answer.contains("request_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_trickling_connections_under_a_low_fd_limit() {
    const SLOW: usize = 2000;
    const FD_LIMIT: u64 = 256;
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.fd_limit = Some(FD_LIMIT);
    g.start().await;
    let pid = g.pid().expect("running");
    let port = g.port;

    // 2,000 connections that each send part of a request head, then a byte every 300 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..SLOW {
        let (stop, opened) = (stop.clone(), opened.clone());
        slow.spawn(async move {
            let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(("127.0.0.1", port))).await
            else {
                return;
            };
            opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if s.write_all(b"POST /v1/payments HTTP/1.1\r\nHost: a\r\n").await.is_err() {
                return;
            }
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if s.write_all(b"X").await.is_err() {
                    // Closed by the gateway: hold the socket like a stubborn client would.
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    return;
                }
            }
        });
    }
    let opened_all = {
        let opened = opened.clone();
        eventually("the slow connections to open", Duration::from_secs(30), move || {
            let n = opened.load(std::sync::atomic::Ordering::SeqCst);
            async move { (n >= SLOW).then_some(n) }
        })
        .await
    };
    assert_eq!(opened_all, SLOW);

    // While they trickle, fresh signed requests get their answers at once.
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        let (status, body) = g.call("GET", &format!("/v1/payments/NONE-{i}"), "").await;
        let took = started.elapsed();
        assert_eq!(status, 404, "{body}");
        slowest = slowest.max(took);
    }
    assert!(slowest < Duration::from_secs(2), "a fresh request took {slowest:?} among slow connections");
    let (status, created) = g.call("POST", "/v1/payments", &payment_body("SLOW-1", 100)).await;
    assert_eq!(status, 200, "{created}");

    // The gateway neither spins nor runs out of descriptors while they go on.
    let cpu_before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    // Spinning on accept errors (before) burned the whole 3 s.
    assert!(cpu < 1.0, "the gateway used {cpu:.2} s of CPU in 3 s among slow connections");
    let fds = open_fds(pid);
    assert!(fds < FD_LIMIT as usize, "{fds} descriptors open under a limit of {FD_LIMIT}");
    println!("{SLOW} slow connections held; slowest fresh request {slowest:?}; CPU {cpu:.2} s in 3 s; {fds} fds");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while slow.join_next().await.is_some() {}
    let (status, _) = g.call("GET", "/v1/payments/SLOW-1", "").await;
    assert_eq!(status, 200);
}
