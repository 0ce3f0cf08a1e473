//! `pvm features` (runc's `features` JSON, OCI runtime spec `features.md`: what this runtime
//! honours, not what it parses) and `pvm spec` (a default config.json to start a bundle from).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use oci_spec::runtime::{Apparmor, Cgroup, Features, LinuxFeature, Seccomp, Selinux, Spec};

use super::state::OCI_VERSION;

/// The features document.
pub fn features() -> Features {
    let mut linux = LinuxFeature::default();
    // Accepted; the VM is the isolation boundary for all of them (docs/oci.md).
    linux.set_namespaces(Some(oci_spec::runtime::get_default_namespaces().iter().map(|n| n.typ()).collect()));
    linux.set_capabilities(Some(Vec::new()));
    let mut cgroup = Cgroup::default();
    cgroup.set_v1(Some(false));
    cgroup.set_v2(Some(false));
    cgroup.set_systemd(Some(false));
    cgroup.set_systemd_user(Some(false));
    linux.set_cgroup(Some(cgroup));
    let mut seccomp = Seccomp::default();
    seccomp.set_enabled(Some(false));
    linux.set_seccomp(Some(seccomp));
    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(false));
    linux.set_apparmor(Some(apparmor));
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(false));
    linux.set_selinux(Some(selinux));
    let mut f = Features::default();
    f.set_oci_version_min("1.0.0".to_string());
    f.set_oci_version_max(OCI_VERSION.to_string());
    f.set_hooks(Some(
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"].map(String::from).to_vec(),
    ));
    // tmpfs's size= is honoured, a bind mount's ro; the rest are accepted and have no effect.
    f.set_mount_options(Some(["bind", "rbind", "ro", "rw", "size"].map(String::from).to_vec()));
    f.set_linux(Some(linux));
    f.set_annotations(Some(HashMap::from([
        ("io.pvm.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (super::config::BACKEND_ANNOTATION.to_string(), "soft|kvm|auto".to_string()),
    ])));
    f.set_potentially_unsafe_config_annotations(Some(Vec::new()));
    f
}

/// Writes runc's default config.json (`oci_spec::runtime::Spec::default`: `sh` in `rootfs`,
/// with the usual mounts) into `bundle`, which must not have one.
///
/// # Errors
/// config.json exists, or cannot be written.
pub fn write_spec(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec = Spec::default();
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(false));
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
