//! `--log FILE` and `--log-format text|json` as runc writes them: one line per message,
//! appended; JSON lines are `{"level":"error","msg":"...","time":"RFC3339"}` (logrus' JSON
//! formatter, which containerd's shim parses from `log.json` to report a failure), text lines
//! are logrus' `time="..." level=error msg="..."`. Errors also go to stderr as one
//! `pvm: ...` line.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use super::cli::GlobalArgs;

struct Logger {
    file: Option<Mutex<File>>,
    json: bool,
    debug: bool,
    /// Whether warnings may go to stderr when there is no --log (not in the monitor, whose
    /// stderr is the container's).
    warn_to_stderr: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging from the global flags. An unopenable --log file is reported on stderr
/// and logging goes on without it.
pub fn init(global: &GlobalArgs, warn_to_stderr: bool) {
    let file = global.log.as_ref().and_then(|p| match OpenOptions::new().create(true).append(true).open(p) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            eprintln!("pvm: --log {}: {e}", p.display());
            None
        }
    });
    let _ = LOGGER.set(Logger { file, json: global.log_format == "json", debug: global.debug, warn_to_stderr });
}

fn line(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let Some(file) = &l.file else { return };
    let time = super::state::now_rfc3339();
    let text = if l.json {
        let mut s = serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string();
        s.push('\n');
        s
    } else {
        format!("time={time:?} level={level} msg={msg:?}\n")
    };
    if let Ok(mut f) = file.lock() {
        let _ = f.write_all(text.as_bytes());
    }
}

/// An error: to --log and to stderr.
pub fn error(msg: &str) {
    line("error", msg);
    eprintln!("pvm: {msg}");
}

/// A warning (something config.json asks that pvm does not enforce): to --log, else stderr.
pub fn warn(msg: &str) {
    match LOGGER.get() {
        Some(l) if l.file.is_some() => line("warning", msg),
        Some(l) if !l.warn_to_stderr => {}
        _ => eprintln!("pvm: warning: {msg}"),
    }
}

/// A debug line, with --debug only, to --log.
pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        line("debug", msg);
    }
}
