//! Command-line parsing (`clap`), with `docker run`'s convention that a usage error is pvm's own
//! failure (exit status 125).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// pvm: a software-only hypervisor for secure containers.
#[derive(Debug, Parser)]
#[command(name = "pvm", version, about)]
pub struct Cli {
    /// Options every OCI runtime command takes (runc's global flags).
    #[command(flatten)]
    pub global: crate::oci::cli::GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether `--verbose` (or, for the OCI commands, `--debug`) was given.
    pub fn verbose(&self) -> bool {
        match &self.command {
            Command::Run(r) => r.verbose > 0 || self.global.debug,
            Command::Info(_) => false,
            Command::Bench(_) => false,
            Command::Oci(_) | Command::OciMonitor(_) => self.global.debug,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program in a new guest (without PROGRAM: a built-in demo).
    Run(RunArgs),
    /// Show what this host offers pvm (KVM, seccomp, Syscall User Dispatch, ...).
    Info(InfoArgs),
    /// Measure pvm against native, pvm-kvm, gVisor, QEMU and UML side by side.
    Bench(crate::bench::BenchArgs),
    /// OCI runtime commands (runc's command line: create, start, state, kill, delete, ...).
    #[command(flatten)]
    Oci(crate::oci::cli::OciCommand),
    /// The container monitor `pvm create` starts (internal).
    #[command(name = "oci-monitor", hide = true)]
    OciMonitor(crate::oci::cli::MonitorArgs),
}

/// `pvm info` options.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `pvm run` options.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Backend: `soft` (no hardware virtualization), `kvm` (/dev/kvm), or `auto` (kvm where
    /// KVM is hardware-accelerated, else soft).
    #[arg(long, default_value = "soft", value_parser = ["soft", "kvm", "auto"])]
    pub backend: String,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(guest_abi::MAX_VCPUS)))]
    pub cpus: u32,
    /// Guest memory size (bytes, or with a K, M, G suffix).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub memory: u64,
    /// Most guest processes that may exist at once (0: no limit); fork beyond it fails with
    /// EAGAIN in the guest, like a cgroup's pids.max.
    #[arg(long, default_value_t = 0)]
    pub pids_limit: u32,
    /// Directory served in place as the guest's root filesystem by the file server (writes
    /// reach it; see --read-only). Without it the root is an initramfs with the program.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Serve --rootfs read-only (writes fail with EROFS in the guest).
    #[arg(long, requires = "rootfs")]
    pub read_only: bool,
    /// Bind a host directory into the guest (repeatable): `HOST:GUEST`, `HOST:GUEST:ro` for
    /// read-only, `:rw` (the default) for writable. GUEST is an absolute guest path.
    #[arg(long = "volume", short = 'v', value_name = "HOST:GUEST[:ro]", value_parser = parse_volume)]
    pub volumes: Vec<Volume>,
    /// Mount an empty tmpfs in the guest (repeatable): `GUEST` or `GUEST:size=N` (N bytes or
    /// with a K, M, G suffix).
    #[arg(long = "tmpfs", value_name = "GUEST[:size=N]", value_parser = parse_tmpfs)]
    pub tmpfs: Vec<Tmpfs>,
    /// Environment entry of the guest program (repeatable); the guest gets only these.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,
    /// Working directory of the guest program (a guest path).
    #[arg(long, default_value = "/")]
    pub workdir: String,
    /// After the run, print a table of every transition kind on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Print what pvm does, and the guest kernel's log, on stderr (given twice: also the
    /// guest kernel's per-syscall trace). No short form: `-v` is `--volume`, as in docker.
    #[arg(long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Host CPU to pin every thread and process of the VM to (for benchmarks), or `none`
    /// (no pinning). Default: vCPU i runs on its own host CPU of the allowed set
    /// (round-robin when vCPUs outnumber CPUs), with every thread that works for it.
    #[arg(long, value_parser = parse_pin)]
    pub pin: Option<Pin>,
    /// The guest's hostname (at most 63 bytes of letters, digits, `-`, `.`, `_`).
    #[arg(long, default_value = "pvm", value_parser = parse_hostname)]
    pub hostname: String,
    /// OCI mode (runc's `run`): run the container of the bundle in DIR; PROGRAM is then the
    /// container ID. See `pvm create`.
    #[arg(long, short = 'b', value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// OCI mode: write the container's host pid (pvm's container monitor) to FILE.
    #[arg(long, value_name = "FILE", requires = "bundle")]
    pub pid_file: Option<PathBuf>,
    /// OCI mode: return once the container runs instead of waiting for its end.
    #[arg(long, short = 'd', requires = "bundle")]
    pub detach: bool,
    /// OCI mode: the console socket (refused: pvm has no consoles yet).
    #[arg(long, value_name = "SOCKET", requires = "bundle")]
    pub console_socket: Option<PathBuf>,
    /// OCI mode: accepted and ignored (runc's pivot_root choice; the guest has its own root).
    #[arg(long, requires = "bundle")]
    pub no_pivot: bool,
    /// OCI mode: accepted and ignored (runc's session keyring; the guest has no keyrings).
    #[arg(long, requires = "bundle")]
    pub no_new_keyring: bool,
    /// OCI mode: extra fds to pass (only 0 is supported: the guest gets stdio only).
    #[arg(long, default_value_t = 0, requires = "bundle")]
    pub preserve_fds: u32,
    /// Do not offer the guest kernel paravirtual lock-holder hints (`YIELD_TO` after a long
    /// spin; `BootInfo::pv_features` bit `PV_LOCK_HINTS`): to compare, in benchmarks.
    #[arg(long)]
    pub no_pv_lock_hints: bool,
    /// The program and its arguments. Without --rootfs: a host path to a static ELF. With
    /// --rootfs: a guest path, or a bare name looked up in the guest's PATH (from --env PATH=,
    /// else `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`).
    #[arg(value_name = "PROGRAM [ARGS]...")]
    pub program: Vec<String>,
}

/// A `-v/--volume` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Host directory, as given.
    pub host: PathBuf,
    /// Absolute guest path, normalised (no trailing `/`, no `.` or empty components).
    pub guest: String,
    /// `:ro`.
    pub read_only: bool,
}

/// A `--tmpfs` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tmpfs {
    /// Absolute guest path, normalised as [`Volume::guest`].
    pub guest: String,
    /// Size limit, bytes (0: the guest kernel's default).
    pub size: u64,
}

/// Checks and normalises an absolute guest mount point: at most
/// `guest_abi::hostfs::MOUNT_PATH_MAX - 1` bytes, no NUL, no `..`; `.` and empty components
/// are dropped. `/` is refused (the root is --rootfs's).
pub fn parse_guest_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("guest path `{s}` is not absolute"));
    }
    if s.contains('\0') {
        return Err("guest path contains a NUL byte".into());
    }
    let mut out = String::new();
    for c in s.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(format!("guest path `{s}` contains `..`"));
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        return Err("cannot mount over the guest's root `/` (use --rootfs)".into());
    }
    if out.len() >= guest_abi::hostfs::MOUNT_PATH_MAX {
        return Err(format!("guest path `{s}` is longer than {} bytes", guest_abi::hostfs::MOUNT_PATH_MAX - 1));
    }
    Ok(out)
}

fn parse_volume(s: &str) -> Result<Volume, String> {
    let (rest, read_only) = match s.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        _ => (s, false),
    };
    let Some((host, guest)) = rest.rsplit_once(':') else {
        return Err(format!("expected HOST:GUEST[:ro], got `{s}`"));
    };
    if host.is_empty() {
        return Err(format!("expected HOST:GUEST[:ro], got `{s}` (no host directory)"));
    }
    Ok(Volume { host: PathBuf::from(host), guest: parse_guest_path(guest)?, read_only })
}

fn parse_tmpfs(s: &str) -> Result<Tmpfs, String> {
    let (path, opts) = s.split_once(':').unwrap_or((s, ""));
    let mut size = 0;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", n)) => size = parse_size(n)?,
            _ => return Err(format!("unknown --tmpfs option `{opt}` (pvm knows size=N)")),
        }
    }
    Ok(Tmpfs { guest: parse_guest_path(path)?, size })
}

/// `--pin` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Do not pin.
    None,
    /// Pin to this host CPU.
    Cpu(usize),
}

fn parse_pin(s: &str) -> Result<Pin, String> {
    if s == "none" {
        return Ok(Pin::None);
    }
    s.parse::<usize>()
        .ok()
        .filter(|&c| c < libc::CPU_SETSIZE as usize)
        .map(Pin::Cpu)
        .ok_or_else(|| format!("expected a CPU number or `none`, got `{s}`"))
}

/// Parses `512M`, `1G`, `65536`, `64k` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix in `{s}` (use K, M, G)")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("invalid size `{s}`"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size `{s}` is too large"))
}

/// Checks a hostname: 1 to 63 bytes of ASCII letters, digits, `-`, `.` and `_` (RFC 1123
/// labels, plus `_` as Linux allows; `BootInfo::hostname` holds 64 bytes with the NUL).
pub fn parse_hostname(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 63 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
        return Err(format!("invalid hostname `{s}` (1 to 63 letters, digits, `-`, `.`, `_`)"));
    }
    Ok(s.to_string())
}

fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() && !s.contains('\0') => Ok(s.to_string()),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Parses the command line; on a usage error prints one line and returns status 125.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            // One line, like every other pvm failure (docker prints one line too).
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string();
            // "the following required arguments were not provided:" names them on the next line.
            if first.ends_with(':')
                && let Some(next) = lines.next()
            {
                first = format!("{first} {next}");
            }
            let oci = std::env::args().nth(1).is_some_and(|a| a.starts_with("--") || crate::oci::cli::VERBS.contains(&a.as_str()));
            if oci && !std::env::args().any(|a| a == "run") {
                // runc's convention: a usage error of a runtime command is status 1.
                eprintln!("pvm: {first} (see `pvm --help`)");
                return ExitCode::from(1);
            }
            eprintln!("pvm: {first} (see `pvm run --help`)");
            ExitCode::from(125)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn program_args_keep_hyphens() {
        let cli = Cli::try_parse_from(["pvm", "run", "--stats", "/bin/x", "-a", "--b"]).expect("parses");
        let Command::Run(r) = cli.command else { panic!("not run") };
        assert!(r.stats);
        assert_eq!(r.program, ["/bin/x", "-a", "--b"]);
    }

    #[test]
    fn volumes_parse() {
        let v = parse_volume("/srv/data:/data:ro").expect("parses");
        assert_eq!(v, Volume { host: "/srv/data".into(), guest: "/data".into(), read_only: true });
        let v = parse_volume("rel/dir:/mnt//x/./y/").expect("parses");
        assert_eq!(v, Volume { host: "rel/dir".into(), guest: "/mnt/x/y".into(), read_only: false });
        assert!(!parse_volume("/a:/b:rw").expect("parses").read_only);
        for bad in ["/a", "/a:b", ":/b", "/a:/", "/a:/b/../c", "/a:/b:ro:x"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
        let long = format!("/a:/{}", "x".repeat(guest_abi::hostfs::MOUNT_PATH_MAX));
        assert!(parse_volume(&long).is_err());
    }

    #[test]
    fn tmpfs_parse() {
        assert_eq!(parse_tmpfs("/run").expect("parses"), Tmpfs { guest: "/run".into(), size: 0 });
        assert_eq!(parse_tmpfs("/run:size=64M").expect("parses"), Tmpfs { guest: "/run".into(), size: 64 << 20 });
        for bad in ["run", "/run:mode=1777", "/run:size=x", "/"] {
            assert!(parse_tmpfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_needs_a_key() {
        assert!(parse_env("=x").is_err());
        assert!(parse_env("A").is_err());
        assert_eq!(parse_env("A=").as_deref(), Ok("A="));
    }
}
