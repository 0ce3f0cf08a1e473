//! config.json (OCI runtime spec `config.md`) to the VM pvm boots: the same [`RunArgs`] that
//! `pvm run`'s command line gives, so a container and `pvm run` boot one way.
//!
//! Trust: config.json is user input. Every field pvm uses is checked here (paths absolute or
//! relative to the bundle, guest paths by `cli::parse_guest_path`, sizes and counts bounded);
//! a field whose meaning pvm cannot give fails with a line naming it, and a field that the VM
//! boundary makes moot is accepted as documented in docs/oci.md (namespaces, cgroups,
//! capabilities, seccomp, AppArmor, SELinux, masked paths: the guest kernel runs every
//! process of the container and nothing of the host is visible to it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use oci_spec::runtime::{Hooks, LinuxNamespaceType, Mount, Spec};

use super::log;
use crate::cli::{self, RunArgs, Tmpfs, Volume};

/// Destinations of single-file bind mounts that container engines add on their own (podman:
/// /etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv; Kubernetes:
/// /dev/termination-log). hostfs volumes are directories, so pvm skips these
/// (a debug line) and the guest sees the image's own files; any other file bind mount fails.
const ENGINE_FILES: &[&str] =
    &["/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run/.containerenv", "/dev/termination-log"];

/// Annotation choosing the backend (`soft`, `kvm`, `auto`; default `soft`), as `--backend`.
pub const BACKEND_ANNOTATION: &str = "io.pvm.backend";

/// A container as pvm boots it.
pub struct Container {
    /// The VM, as `pvm run` options.
    pub args: RunArgs,
    /// `linux.namespaces[type=network].path`.
    pub network_namespace: Option<PathBuf>,
    /// `annotations`.
    pub annotations: HashMap<String, String>,
    /// `hooks`.
    pub hooks: Option<Hooks>,
}

/// Reads and checks `bundle/config.json` (or `config` when given: the state directory's copy),
/// resolving relative paths against `bundle`.
///
/// # Errors
/// One line naming the field: unreadable or malformed JSON, a missing `process`/`root`, an
/// unsupported value.
pub fn load(bundle: &Path, config: Option<&Path>) -> Result<Container> {
    let path = config.map_or_else(|| bundle.join("config.json"), Path::to_path_buf);
    let spec = Spec::load(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    translate(&spec, bundle).with_context(|| format!("{}", path.display()))
}

fn translate(spec: &Spec, bundle: &Path) -> Result<Container> {
    if !spec.version().starts_with("1.") {
        bail!("ociVersion {:?}: pvm implements version 1 of the OCI runtime spec", spec.version());
    }
    let Some(process) = spec.process() else { bail!("process: missing (pvm needs a process to run)") };
    let argv = process.args().clone().unwrap_or_default();
    if argv.is_empty() || argv[0].is_empty() {
        bail!("process.args: empty (no program to run)");
    }
    if argv.iter().any(|a| a.contains('\0')) {
        bail!("process.args: contains a NUL byte");
    }
    if process.terminal() == Some(true) {
        bail!(
            "process.terminal is true: pvm has no consoles yet (needs the guest's pty support and runc's --console-socket protocol); run without a terminal (podman run without -t)"
        );
    }
    let env = process.env().clone().unwrap_or_default();
    for e in &env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
            _ => bail!("process.env: expected KEY=VALUE, got {e:?}"),
        }
    }
    let cwd = process.cwd().to_str().context("process.cwd: not UTF-8")?.to_string();
    if !cwd.starts_with('/') || cwd.contains('\0') {
        bail!("process.cwd {cwd:?}: not an absolute path");
    }
    let user = process.user();
    if user.uid() != 0 || user.gid() != 0 || user.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        log::warn(&format!(
            "process.user uid={} gid={}: not enforced, the guest kernel has no credentials yet (every guest process runs as uid 0 inside the VM)",
            user.uid(),
            user.gid()
        ));
    }
    if process.rlimits().as_ref().is_some_and(|r| !r.is_empty()) {
        log::debug("process.rlimits: not enforced (the guest kernel has no rlimits; the VM's memory and vCPUs bound the container)");
    }

    let Some(root) = spec.root() else { bail!("root: missing (pvm needs a root filesystem)") };
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    if !rootfs.is_dir() {
        bail!("root.path {}: not a directory", rootfs.display());
    }

    let mut volumes = Vec::new();
    let mut tmpfs = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        mount(m, bundle, &mut volumes, &mut tmpfs)?;
    }

    let hostname = match spec.hostname().as_deref() {
        None | Some("") => "pvm".to_string(),
        Some(h) => cli::parse_hostname(h).map_err(|e| anyhow::anyhow!("hostname: {e}"))?,
    };

    let mut memory = 1 << 30;
    let mut cpus = 1u32;
    let mut pids_limit = 0u32;
    let mut network_namespace = None;
    if let Some(linux) = spec.linux() {
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            if ns.typ() == LinuxNamespaceType::Network {
                network_namespace.clone_from(ns.path());
            }
        }
        if let Some(res) = linux.resources() {
            if let Some(limit) = res.memory().as_ref().and_then(|m| m.limit()).filter(|&l| l > 0) {
                memory = limit as u64;
            }
            if let Some(cpu) = res.cpu() {
                let mut n = u32::MAX;
                if let (Some(q), Some(p)) = (cpu.quota().filter(|&q| q > 0), cpu.period().filter(|&p| p > 0)) {
                    n = n.min(u32::try_from((q as u64).div_ceil(p)).unwrap_or(u32::MAX));
                }
                if let Some(list) = cpu.cpus().as_deref().filter(|c| !c.trim().is_empty()) {
                    n = n.min(count_cpus(list)?);
                }
                if n != u32::MAX {
                    cpus = n.clamp(1, guest_abi::MAX_VCPUS);
                }
            }
            if let Some(p) = res.pids().as_ref().map(|p| p.limit()).filter(|&l| l > 0) {
                pids_limit = u32::try_from(p).unwrap_or(u32::MAX);
            }
        }
    }
    let annotations = spec.annotations().clone().unwrap_or_default();
    let backend = annotations.get(BACKEND_ANNOTATION).cloned().unwrap_or_else(|| "soft".into());
    if !["soft", "kvm", "auto"].contains(&backend.as_str()) {
        bail!("annotation {BACKEND_ANNOTATION}={backend:?}: expected soft, kvm or auto");
    }
    let args = RunArgs {
        backend,
        cpus,
        memory,
        pids_limit,
        rootfs: Some(rootfs),
        read_only: root.readonly() == Some(true),
        volumes,
        tmpfs,
        env,
        workdir: cwd,
        stats: false,
        verbose: 0,
        pin: None,
        hostname,
        bundle: None,
        pid_file: None,
        detach: false,
        console_socket: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        no_pv_lock_hints: false,
        program: argv,
    };
    Ok(Container { args, network_namespace, annotations, hooks: spec.hooks().clone() })
}

/// Counts the CPUs of a cpuset list (`0-3,5`: 5).
fn count_cpus(list: &str) -> Result<u32> {
    let mut n = 0u32;
    for part in list.split(',').map(str::trim) {
        let bad = || anyhow::anyhow!("linux.resources.cpu.cpus {list:?}: expected a list like 0-3,5");
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if b < a {
            return Err(bad());
        }
        n = n.saturating_add(b - a + 1);
    }
    Ok(n)
}

/// One `mounts[]` entry into a volume, a tmpfs, or nothing (what the guest kernel provides
/// itself: /proc, /dev, /dev/shm; what it has not: sysfs, cgroupfs, mqueue, devpts).
fn mount(m: &Mount, bundle: &Path, volumes: &mut Vec<Volume>, tmpfs: &mut Vec<Tmpfs>) -> Result<()> {
    let dest = m.destination().to_str().context("mounts[].destination: not UTF-8")?;
    let options = m.options().clone().unwrap_or_default();
    let is_bind = options.iter().any(|o| o == "bind" || o == "rbind");
    let typ = m.typ().clone().unwrap_or_else(|| if is_bind { "bind".into() } else { String::new() });
    let skip = |why: &str| {
        log::debug(&format!("mount {typ} on {dest}: skipped, {why}"));
        Ok(())
    };
    match typ.as_str() {
        _ if is_bind || typ == "bind" || typ == "rbind" => {
            if dest == "/dev/shm" {
                return skip("the guest kernel mounts its own tmpfs there");
            }
            let Some(src) = m.source() else { bail!("mount on {dest}: a bind mount needs a source") };
            let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
            let meta = std::fs::metadata(&src).with_context(|| format!("bind mount {} on {dest}", src.display()))?;
            if !meta.is_dir() {
                if ENGINE_FILES.contains(&dest) {
                    return skip("pvm's volumes are directories (the guest sees the image's own file)");
                }
                bail!("bind mount of {} on {dest}: pvm mounts directories only (hostfs volumes), not single files", src.display());
            }
            let guest = cli::parse_guest_path(dest).map_err(|e| anyhow::anyhow!("mount on {dest}: {e}"))?;
            volumes.push(Volume { host: src, guest, read_only: options.iter().any(|o| o == "ro") });
            Ok(())
        }
        "tmpfs" => {
            if dest == "/dev" || dest == "/dev/shm" {
                return skip("the guest kernel's devfs and /dev/shm tmpfs are there");
            }
            let mut size = 0;
            for o in &options {
                if let Some(n) = o.strip_prefix("size=") {
                    size = cli::parse_size(n).map_err(|e| anyhow::anyhow!("tmpfs on {dest}: {e}"))?;
                }
            }
            let guest = cli::parse_guest_path(dest).map_err(|e| anyhow::anyhow!("mount on {dest}: {e}"))?;
            tmpfs.push(Tmpfs { guest, size });
            Ok(())
        }
        "proc" if dest == "/proc" => skip("the guest kernel mounts its procfs there"),
        "devpts" | "mqueue" | "sysfs" | "cgroup" | "cgroup2" => {
            skip("the guest kernel has no such filesystem yet (docs/oci.md)")
        }
        other => bail!("mount type {other:?} on {dest} is not supported by pvm (it knows bind, tmpfs, proc, and skips devpts, mqueue, sysfs, cgroup)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpus("0-3,5").expect("parses"), 5);
        assert_eq!(count_cpus("7").expect("parses"), 1);
        assert!(count_cpus("3-1").is_err());
        assert!(count_cpus("a").is_err());
    }
}
