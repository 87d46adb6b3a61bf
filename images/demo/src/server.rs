//! The HTTP server: one thread per connection, one request per connection
//! (`Connection: close`), which is all probes, curl and port-forward need.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static HEALTHY: AtomicBool = AtomicBool::new(true);

pub fn run() -> i32 {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: listen on :{port}: {e}");
            return 1;
        }
    };
    println!("demo: listening on :{port} as {}", hostname());
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                std::thread::spawn(move || handle(stream));
            }
            Err(e) => eprintln!("demo: accept: {e}"),
        }
    }
    0
}

/// The pod's hostname (its UTS namespace), without libc.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    // Drain a body so the client sees a clean close.
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = std::io::copy(&mut reader.take(length), &mut std::io::sink());
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
    })
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn handle(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(req) = read_request(&stream) else {
        return;
    };
    let mut exit_code = None;
    let (status, body) = match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/") => (200, format!("hello from {}\n", hostname())),
        ("GET" | "HEAD", "/healthz") => {
            if HEALTHY.load(Ordering::Relaxed) {
                (200, "ok\n".to_string())
            } else {
                (500, "unhealthy\n".to_string())
            }
        }
        ("GET" | "POST", "/healthz/fail") => {
            HEALTHY.store(false, Ordering::Relaxed);
            (200, "healthz now fails\n".to_string())
        }
        ("GET" | "POST", "/healthz/ok") => {
            HEALTHY.store(true, Ordering::Relaxed);
            (200, "healthz now ok\n".to_string())
        }
        ("GET", "/burn") => {
            let ms = query_param(&req.query, "ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(100);
            burn(Duration::from_millis(ms));
            (200, format!("burned {ms} ms\n"))
        }
        ("GET", "/env") => {
            let mut vars: Vec<String> = std::env::vars()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            vars.sort();
            (200, vars.concat())
        }
        ("GET", "/clientip") => match stream.peer_addr() {
            Ok(a) => (200, format!("{}\n", a.ip())),
            Err(e) => (500, format!("{e}\n")),
        },
        ("GET", "/headers") => (
            200,
            req.headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect(),
        ),
        ("GET" | "POST", "/exit") => {
            let code = query_param(&req.query, "code")
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(0);
            exit_code = Some(code);
            (200, format!("exiting with code {code}\n"))
        }
        _ => (404, "not found\n".to_string()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head_only = req.method == "HEAD";
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if head_only { "" } else { body.as_str() }
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    println!("{} {} {}", req.method, req.path, status);
    if let Some(code) = exit_code {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        std::process::exit(code);
    }
}

/// Spins one core for `d` (the autoscaling load).
fn burn(d: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0;
    while start.elapsed() < d {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}
