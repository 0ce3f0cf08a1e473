//! SIGTERM, SIGINT and SIGHUP during `pvm run`: instead of dying at once (which would leave
//! the sandbox processes to `PR_SET_PDEATHSIG`, asynchronously), pvm ends the VM, kills and
//! reaps every process it started, and then dies of the same signal, so that its parent sees
//! the conventional status (a shell's `$?` is 128+N).
//!
//! [`watch`] blocks the signals before any other thread exists (every thread pvm starts
//! later inherits the mask; the stubs set their own) and takes them on one thread with
//! `sigwaitinfo`, which asks the backend to stop ([`host_adapter::stop::request`]).
//! [`die_if_stopped`] runs after the backend returned, when nothing is left to reap.

use std::io::Write as _;

/// The signals pvm turns into an orderly stop.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The set of [`STOP_SIGNALS`] (also what the OCI monitor blocks and forwards).
pub(crate) fn stop_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset/sigaddset initialise it and
    // only write into it (the signal numbers are valid).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the stop signals in the calling thread (call it while it is pvm's only thread) and
/// starts the thread that takes them. If that thread cannot start, the signals keep their
/// default action.
pub fn watch() {
    let set = stop_set();
    // SAFETY: changes this thread's signal mask only; `set` is initialised.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let started = std::thread::Builder::new().name("pvm-signals".into()).spawn(move || {
        loop {
            // SAFETY: waits for one of the blocked signals in `set`; no siginfo is asked for.
            let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
            if sig > 0 {
                tracing::debug!(signal = sig, "stopping the VM");
                host_adapter::stop::request(sig);
            }
        }
    });
    if started.is_err() {
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// If a stop signal arrived, dies of it now (default action); otherwise returns. Call only
/// when every process pvm started has been reaped.
pub fn die_if_stopped() {
    let Some(sig) = host_adapter::stop::requested() else { return };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: restores the default action of `sig` and unblocks it in this thread, then sends
    // it to this thread: the process terminates by it. No memory is shared with a handler.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &act, std::ptr::null_mut());
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::raise(sig);
    }
    // Not reached unless the signal could not kill us: the shell's convention then.
    std::process::exit(128 + sig);
}
