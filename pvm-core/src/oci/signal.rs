//! Signal names and numbers as `kill` takes them (`TERM`, `SIGTERM`, `15`; signal(7)), and
//! which of them pvm can deliver to a container today.

use anyhow::{Result, bail};

const NAMES: &[(&str, libc::c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal name (any case, with or without `SIG`) or number (1 to 64).
///
/// # Errors
/// An unknown name or a number out of range.
pub fn parse(s: &str) -> Result<libc::c_int> {
    if let Ok(n) = s.parse::<libc::c_int>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    match NAMES.iter().find(|(n, _)| *n == name) {
        Some(&(_, sig)) => Ok(sig),
        None => bail!("unknown signal {s:?}"),
    }
}

/// Whether pvm delivers `sig` to a container: SIGKILL ends the monitor (and by parent-death
/// signals every sandbox process) at once; SIGTERM, SIGINT and SIGHUP end the VM the orderly
/// way (`crate::signals`), after which the monitor dies of that signal, so the container's
/// status is 128+N as for an init killed by it. The guest's init does not see the signal
/// itself (no trap runs): that needs a host-to-guest signal path, which pvm does not have yet.
pub fn deliverable(sig: libc::c_int) -> bool {
    [libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGHUP].contains(&sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").expect("parses"), 15);
        assert_eq!(parse("sigkill").expect("parses"), 9);
        assert_eq!(parse("SIGHUP").expect("parses"), 1);
        assert_eq!(parse("9").expect("parses"), 9);
        for bad in ["0", "65", "-1", "FOO", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
