//! `/pause`: the first process of every pod sandbox. It holds the pod's
//! namespaces open, reaps orphaned children (it is PID 1 when the pod shares
//! its PID namespace) and exits 0 on SIGTERM/SIGINT. Nothing else.

use std::os::raw::c_int;

extern "C" fn on_terminate(_: c_int) {
    // Only async-signal-safe calls in a handler: _exit, not exit.
    unsafe { libc::_exit(0) }
}

extern "C" fn on_child(_: c_int) {
    // Several children may have exited for one SIGCHLD: reap them all.
    loop {
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

fn install(signal: c_int, handler: extern "C" fn(c_int)) -> bool {
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("pause (skiff) {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let ok = install(libc::SIGTERM, on_terminate)
        && install(libc::SIGINT, on_terminate)
        && install(libc::SIGCHLD, on_child);
    if !ok {
        eprintln!("pause: cannot install signal handlers");
        std::process::exit(1);
    }
    loop {
        unsafe { libc::pause() };
    }
}
