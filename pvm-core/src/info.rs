//! `pvm info [--json]`: one screen on what this host offers pvm (KVM and its kind, the
//! sandboxing features the soft backend uses, limits), and which backend `--backend auto`
//! would pick.

use std::process::ExitCode;

use host_adapter::detect::{self, BackendChoice, BackendRequest, HostInfo};
use serde_json::{Value, json};

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn auto_choice(info: &HostInfo) -> (&'static str, String) {
    match detect::select(BackendRequest::Auto, &info.kvm) {
        Ok((BackendChoice::Kvm, why)) => ("kvm", why),
        Ok((BackendChoice::Soft, why)) => ("soft", why),
        Err(e) => ("soft", e.to_string()),
    }
}

/// `info` as JSON (stable keys; `null` where a value is unknown).
pub fn to_json(info: &HostInfo) -> Value {
    let k = &info.kvm;
    let (auto, why) = auto_choice(info);
    json!({
        "kvm": {
            "device": k.device,
            "usable": k.usable(),
            "api_version": k.api_version,
            "kind": k.kind().name(),
            "hardware_accelerated": k.kind() == detect::KvmKind::Hardware,
            "cpu_virtualization": k.cpu_virt.map(|v| v.name()),
            "module": k.module,
            "error": k.error,
        },
        "seccomp": info.seccomp,
        "syscall_user_dispatch": info.syscall_user_dispatch,
        "fsgsbase": info.fsgsbase,
        "max_map_count": info.max_map_count,
        "memfd": info.memfd,
        "cores": info.cores,
        "memory_bytes": info.memory,
        "auto_backend": auto,
        "auto_reason": why,
    })
}

/// `info` as text, one line per fact.
pub fn to_text(info: &HostInfo) -> String {
    let k = &info.kvm;
    let kvm = if k.usable() {
        let module = k.module.as_deref().map(|m| format!(", module {m}")).unwrap_or_default();
        let virt = k.cpu_virt.map(|v| format!(", cpu flag {}", v.name())).unwrap_or_default();
        format!("yes, API version {}, {}{virt}{module}", k.api_version.unwrap_or(0), match k.kind() {
            detect::KvmKind::Hardware => "hardware-accelerated",
            _ => "software only (guest ring 0 is emulated: functional tests only)",
        })
    } else {
        format!("no ({})", k.error.as_deref().unwrap_or("unusable"))
    };
    let mem = info.memory.map_or_else(|| "unknown".to_string(), |m| format!("{} MiB", m >> 20));
    let maps = info.max_map_count.map_or_else(|| "unknown".to_string(), |m| m.to_string());
    let (auto, why) = auto_choice(info);
    format!(
        "KVM:                     {kvm}\n\
         seccomp:                 {}\n\
         Syscall User Dispatch:   {}\n\
         FSGSBASE (user):         {}\n\
         memfd:                   {}\n\
         vm.max_map_count:        {maps}\n\
         cores:                   {}\n\
         memory:                  {mem}\n\
         --backend auto:          {auto} ({why})\n",
        yes(info.seccomp),
        yes(info.syscall_user_dispatch),
        yes(info.fsgsbase),
        yes(info.memfd),
        info.cores,
    )
}

/// Prints `pvm info` and returns success.
pub fn print(json: bool) -> ExitCode {
    let info = HostInfo::probe();
    if json {
        println!("{}", to_json(&info));
    } else {
        print!("{}", to_text(&info));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_adapter::detect::{CpuVirt, KvmProbe};

    fn host(kvm: KvmProbe) -> HostInfo {
        HostInfo {
            kvm,
            seccomp: true,
            syscall_user_dispatch: false,
            fsgsbase: true,
            max_map_count: Some(65530),
            memfd: true,
            cores: 2,
            memory: Some(24 << 30),
        }
    }

    #[test]
    fn software_kvm_is_reported_and_not_chosen() {
        let kvm = KvmProbe {
            device: true,
            api_version: Some(12),
            error: None,
            cpu_virt: None,
            module: Some("kvm_pvm".into()),
        };
        let info = host(kvm);
        let j = to_json(&info);
        assert_eq!(j["kvm"]["kind"], "software");
        assert_eq!(j["kvm"]["module"], "kvm_pvm");
        assert_eq!(j["kvm"]["hardware_accelerated"], false);
        assert_eq!(j["auto_backend"], "soft");
        assert_eq!(j["max_map_count"], 65530);
        let t = to_text(&info);
        assert!(t.contains("software only"), "{t}");
        assert!(t.contains("kvm_pvm"), "{t}");
    }

    #[test]
    fn hardware_kvm_is_chosen_by_auto() {
        let kvm = KvmProbe {
            device: true,
            api_version: Some(12),
            error: None,
            cpu_virt: Some(CpuVirt::Vmx),
            module: Some("kvm_intel".into()),
        };
        let j = to_json(&host(kvm));
        assert_eq!(j["kvm"]["kind"], "hardware");
        assert_eq!(j["kvm"]["cpu_virtualization"], "vmx");
        assert_eq!(j["auto_backend"], "kvm");
    }

    #[test]
    fn missing_kvm_says_why() {
        let kvm = KvmProbe {
            device: false,
            api_version: None,
            error: Some("/dev/kvm does not exist".into()),
            cpu_virt: None,
            module: None,
        };
        let info = host(kvm);
        assert_eq!(to_json(&info)["kvm"]["usable"], false);
        assert!(to_text(&info).contains("no (/dev/kvm does not exist)"));
    }
}
