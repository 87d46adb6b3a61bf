//! `/demo`: the skiff-demo image's one binary.
//!
//! - `demo` (no arguments): an HTTP/1.1 server on `$PORT` (default 8080) —
//!   `/` says hello with the hostname, `/healthz` (switch with
//!   `/healthz/fail` and `/healthz/ok`), `/burn?ms=N`, `/env`, `/headers`,
//!   `/clientip` (the peer's address), `/exit?code=N`.
//! - `demo get URL [--timeout SECS]`: HTTP GET, prints the body, exit 0 on 2xx.
//! - `demo lookup NAME [--server IP]`: DNS A lookup, one address per line.
//! - `demo sleep`: sleeps until signalled.
//!
//! The client modes exist because busybox's `wget -T` crashes on the test
//! machines' kernels. Statically linked and std-only (plus libc for signals),
//! so it needs nothing from the image.

mod dns;
mod http;
mod server;

use std::os::raw::c_int;

extern "C" fn on_terminate(_: c_int) {
    unsafe { libc::_exit(0) }
}

/// PID 1 in a container ignores signals it has no handler for: without this
/// a pod deletion would wait the whole grace period for SIGKILL.
fn exit_on_sigterm() {
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: demo                         serve HTTP on $PORT (default 8080)\n\
         \x20      demo get URL [--timeout SECS]\n\
         \x20      demo lookup NAME [--server IP]\n\
         \x20      demo sleep"
    );
    std::process::exit(2)
}

/// The value after `flag` in `args`, if present.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    exit_on_sigterm();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None | Some("serve") => server::run(),
        Some("get") => {
            let Some(url) = args.get(1) else { usage() };
            let timeout = flag_value(&args, "--timeout")
                .map(|t| t.parse::<f64>().unwrap_or_else(|_| usage()))
                .unwrap_or(10.0);
            http::get_command(url, std::time::Duration::from_secs_f64(timeout))
        }
        Some("lookup") => {
            let Some(name) = args.get(1) else { usage() };
            dns::lookup_command(name, flag_value(&args, "--server").as_deref())
        }
        Some("sleep") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Some("-h" | "--help") => usage(),
        Some(other) => {
            eprintln!("demo: unknown command {other:?}");
            usage()
        }
    };
    std::process::exit(code)
}
