//! Runs one contender process: pinned to the CPU set, in its own process group (so a timeout
//! kills it and everything it started, and nothing else), stdout streamed line by line to a
//! callback (progress), stderr kept for failure reports.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cpuset::CpuSet;

/// What a finished (or killed) contender process left.
#[derive(Debug)]
pub struct Finished {
    /// Exit status; `None` when it was killed for running past its deadline.
    pub status: Option<ExitStatus>,
    /// Every stdout line, `\r` stripped.
    pub stdout: Vec<String>,
    /// The stderr text (lossy UTF-8).
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Finished {
    /// The status in words, for a failure report.
    pub fn status_text(&self) -> String {
        match self.status {
            None => format!("timed out after {:.0} s", self.elapsed.as_secs_f64()),
            Some(s) => s.to_string(),
        }
    }

    /// The last `n` non-empty stderr lines, joined by ` | `.
    pub fn stderr_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }
}

/// Runs `cmd` pinned to `cpus` with stdin from /dev/null, calling `on_line` for each stdout
/// line as it arrives; kills the process group after `timeout`, or once it has printed nothing
/// for `silence` (a guest that hangs in one benchmark of many).
pub fn run(
    mut cmd: Command,
    cpus: &CpuSet,
    timeout: Duration,
    silence: Duration,
    on_line: &mut dyn FnMut(&str),
) -> std::io::Result<Finished> {
    let mask = cpus.mask();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe system
    // calls (setpgid, sched_setaffinity) on memory it owns (`mask` is moved in).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(m) = &mask
                && libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), m) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (tx, rx) = mpsc::channel::<String>();
    let out_thread = std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send(text).is_err() {
                    break;
                }
            }
        }
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    let deadline = start + timeout;
    let mut last_line = start;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline || now >= last_line + silence {
            timed_out = true;
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(200))) {
            Ok(line) => {
                last_line = Instant::now();
                on_line(&line);
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out && pgid > 0 {
        // SAFETY: kill(2) on the process group this function created for its own child.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    let status = child.wait()?;
    // The group may hold stragglers (a guest's helpers) that keep the pipes open.
    if pgid > 0 {
        // SAFETY: as above; ESRCH when the group is already gone is fine.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    let _ = out_thread.join();
    while let Ok(line) = rx.try_recv() {
        on_line(&line);
        lines.push(line);
    }
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Finished {
        status: if timed_out { None } else { Some(status) },
        stdout: lines,
        stderr,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stream_and_status_is_kept() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; printf 'three\\r\\n'; exit 3"]);
        let mut seen = Vec::new();
        let twenty = Duration::from_secs(20);
        let f = run(cmd, &CpuSet::default(), twenty, twenty, &mut |l| {
            seen.push(l.to_string());
        })
        .expect("runs");
        assert_eq!(seen, ["one", "three"]);
        assert_eq!(f.status.and_then(|s| s.code()), Some(3));
        assert_eq!(f.stderr_tail(1), "two");
    }

    #[test]
    fn a_hung_process_group_is_killed_at_the_deadline() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30"]);
        let f = run(
            cmd,
            &CpuSet::default(),
            Duration::from_millis(300),
            Duration::from_secs(20),
            &mut |_| {},
        )
        .expect("runs");
        assert!(f.status.is_none());
        assert!(f.elapsed < Duration::from_secs(10));
        assert!(f.status_text().contains("timed out"));
    }

    #[test]
    fn a_silent_process_is_killed_even_before_the_deadline() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30"]);
        let mut seen = 0;
        let f = run(
            cmd,
            &CpuSet::default(),
            Duration::from_secs(60),
            Duration::from_millis(500),
            &mut |_| seen += 1,
        )
        .expect("runs");
        assert_eq!(seen, 1);
        assert!(f.status.is_none());
        assert!(f.elapsed < Duration::from_secs(10));
    }
}
