//! Host detection: what this host offers pvm (KVM and its kind, seccomp, Syscall User
//! Dispatch, FSGSBASE, memfd, the VMA limit, cores, memory), and the backend choice of
//! `--backend soft|kvm|auto`.
//!
//! Probing reads `/proc` and `/sys` and makes harmless system calls; the parsing and the
//! selection are pure functions over what was read, so tests inject any host.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::BackendError;

/// `KVM_GET_API_VERSION` (`_IO(KVMIO, 0x00)`; KVMIO = 0xAE). Source: Linux
/// `include/uapi/linux/kvm.h`.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
/// `PR_SET_SYSCALL_USER_DISPATCH` and `PR_SYS_DISPATCH_OFF` (Linux `include/uapi/linux/prctl.h`).
const PR_SET_SYSCALL_USER_DISPATCH: libc::c_int = 59;
const PR_SYS_DISPATCH_OFF: libc::c_ulong = 0;
/// The only KVM API version there has ever been (Linux docs, `virt/kvm/api.rst`, 4.1).
pub const KVM_API_VERSION: i32 = 12;

/// Which hardware virtualization extension the CPU reports in `/proc/cpuinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuVirt {
    /// Intel VT-x (`vmx` flag).
    Vmx,
    /// AMD-V (`svm` flag).
    Svm,
}

impl CpuVirt {
    /// The flag's name in `/proc/cpuinfo`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vmx => "vmx",
            Self::Svm => "svm",
        }
    }
}

/// What kind of KVM this host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvmKind {
    /// No usable `/dev/kvm`.
    Absent,
    /// KVM on VT-x/AMD-V (`kvm_intel`/`kvm_amd`, or a vmx/svm CPU flag): guest code runs at
    /// hardware speed.
    Hardware,
    /// KVM without hardware virtualization (`kvm_pvm`, or no vmx/svm flag): guest CPL 0 is
    /// emulated (design section 9), usable for functional tests only.
    Software,
}

impl KvmKind {
    /// Short name for `pvm info`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Hardware => "hardware",
            Self::Software => "software",
        }
    }
}

/// What this host says about KVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvmProbe {
    /// `/dev/kvm` exists.
    pub device: bool,
    /// `KVM_GET_API_VERSION` result when `/dev/kvm` could be opened read-write.
    pub api_version: Option<i32>,
    /// Why `/dev/kvm` is not usable (`None` when it is).
    pub error: Option<String>,
    /// vmx/svm in `/proc/cpuinfo`.
    pub cpu_virt: Option<CpuVirt>,
    /// Loaded KVM vendor module (`kvm_intel`, `kvm_amd`, `kvm_pvm`), from `/proc/modules` or
    /// `/sys/module`.
    pub module: Option<String>,
}

impl KvmProbe {
    /// `/dev/kvm` opens and speaks API version 12.
    pub fn usable(&self) -> bool {
        self.api_version == Some(KVM_API_VERSION)
    }

    /// Hardware or software KVM (or none).
    pub fn kind(&self) -> KvmKind {
        if !self.usable() {
            return KvmKind::Absent;
        }
        match self.module.as_deref() {
            Some("kvm_pvm") => KvmKind::Software,
            Some("kvm_intel" | "kvm_amd") => KvmKind::Hardware,
            _ if self.cpu_virt.is_some() => KvmKind::Hardware,
            _ => KvmKind::Software,
        }
    }

    /// Probes this host.
    pub fn probe() -> Self {
        let device = Path::new("/dev/kvm").exists();
        let (api_version, error) = if device { kvm_api_version() } else { (None, Some("/dev/kvm does not exist".into())) };
        let cpu_virt = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| parse_cpu_virt(&s));
        let module = std::fs::read_to_string("/proc/modules")
            .ok()
            .and_then(|s| parse_kvm_module(&s))
            .or_else(|| {
                KVM_MODULES.iter().find(|m| Path::new("/sys/module").join(m).exists()).map(|m| (*m).to_string())
            });
        Self { device, api_version, error, cpu_virt, module }
    }
}

/// KVM vendor modules, most specific first.
const KVM_MODULES: [&str; 3] = ["kvm_pvm", "kvm_intel", "kvm_amd"];

/// Opens `/dev/kvm` and asks its API version.
fn kvm_api_version() -> (Option<i32>, Option<String>) {
    let file = match File::options().read(true).write(true).open("/dev/kvm") {
        Ok(f) => f,
        Err(e) => return (None, Some(format!("cannot open /dev/kvm: {e}"))),
    };
    // SAFETY: KVM_GET_API_VERSION takes no argument and only returns a number.
    let v = unsafe { libc::ioctl(file.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if v < 0 {
        return (None, Some(format!("KVM_GET_API_VERSION: {}", std::io::Error::last_os_error())));
    }
    if v != KVM_API_VERSION {
        return (Some(v), Some(format!("/dev/kvm speaks API version {v}, not {KVM_API_VERSION}")));
    }
    (Some(v), None)
}

/// vmx or svm among the `flags` of `/proc/cpuinfo`.
pub fn parse_cpu_virt(cpuinfo: &str) -> Option<CpuVirt> {
    let flags = cpuinfo.lines().find(|l| l.starts_with("flags"))?.split_once(':')?.1;
    flags.split_whitespace().find_map(|f| match f {
        "vmx" => Some(CpuVirt::Vmx),
        "svm" => Some(CpuVirt::Svm),
        _ => None,
    })
}

/// The KVM vendor module listed in `/proc/modules` (first word of each line).
pub fn parse_kvm_module(modules: &str) -> Option<String> {
    let loaded: Vec<&str> = modules.lines().filter_map(|l| l.split_whitespace().next()).collect();
    KVM_MODULES.iter().find(|m| loaded.contains(m)).map(|m| (*m).to_string())
}

/// `MemTotal` of `/proc/meminfo`, bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Everything `pvm info` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// KVM.
    pub kvm: KvmProbe,
    /// seccomp filters are available (`prctl(PR_GET_SECCOMP)` works).
    pub seccomp: bool,
    /// Syscall User Dispatch is available (`prctl(PR_SET_SYSCALL_USER_DISPATCH, OFF)` works).
    pub syscall_user_dispatch: bool,
    /// User-space FSGSBASE instructions are enabled (`AT_HWCAP2` bit 1).
    pub fsgsbase: bool,
    /// `vm.max_map_count` (host VMAs per process).
    pub max_map_count: Option<u64>,
    /// `memfd_create` works.
    pub memfd: bool,
    /// CPUs this process may use.
    pub cores: usize,
    /// Host memory, bytes.
    pub memory: Option<u64>,
}

impl HostInfo {
    /// Probes this host.
    pub fn probe() -> Self {
        // SAFETY: PR_GET_SECCOMP takes no pointers; it returns the mode or fails with EINVAL
        // when seccomp is not built in.
        let seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
        // SAFETY: switching Syscall User Dispatch off for this thread (it is off) takes no
        // pointers; EINVAL means the kernel lacks it (Linux Documentation/admin-guide/
        // syscall-user-dispatch.rst).
        let sud = unsafe { libc::prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) } == 0;
        // SAFETY: getauxval only reads the auxiliary vector.
        let fsgsbase = unsafe { libc::getauxval(libc::AT_HWCAP2) } & 2 != 0;
        let max_map_count =
            std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok());
        // SAFETY: the name is NUL-terminated; the fd is closed at once.
        let memfd = unsafe {
            let fd = libc::memfd_create(c"pvm-probe".as_ptr(), libc::MFD_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
            fd >= 0
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| parse_mem_total(&s));
        Self { kvm: KvmProbe::probe(), seccomp, syscall_user_dispatch: sud, fsgsbase, max_map_count, memfd, cores, memory }
    }
}

/// The backend asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendRequest {
    /// The software backend.
    Soft,
    /// KVM, or fail.
    Kvm,
    /// KVM where it is hardware-accelerated, else soft.
    Auto,
}

/// The backend to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The software backend.
    Soft,
    /// The KVM backend.
    Kvm,
}

/// Resolves `request` against `kvm`; returns the choice and a line saying why (for
/// `--verbose`).
///
/// # Errors
/// [`BackendError::Unavailable`] when `kvm` was asked for and `/dev/kvm` is missing or
/// unusable.
pub fn select(request: BackendRequest, kvm: &KvmProbe) -> Result<(BackendChoice, String), BackendError> {
    match request {
        BackendRequest::Soft => Ok((BackendChoice::Soft, "soft backend (requested)".into())),
        BackendRequest::Kvm if kvm.usable() => {
            Ok((BackendChoice::Kvm, format!("kvm backend (requested; {} KVM)", kvm.kind().name())))
        }
        BackendRequest::Kvm => Err(BackendError::Unavailable(
            kvm.error.clone().unwrap_or_else(|| "/dev/kvm is not usable".into()),
        )),
        BackendRequest::Auto => match kvm.kind() {
            KvmKind::Hardware => Ok((BackendChoice::Kvm, "auto: kvm backend (hardware-accelerated KVM)".into())),
            KvmKind::Software => Ok((
                BackendChoice::Soft,
                format!(
                    "auto: soft backend (KVM here is software-only{})",
                    kvm.module.as_deref().map(|m| format!(", module {m}")).unwrap_or_default()
                ),
            )),
            KvmKind::Absent => Ok((
                BackendChoice::Soft,
                format!("auto: soft backend ({})", kvm.error.as_deref().unwrap_or("no usable /dev/kvm")),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(api: Option<i32>, cpu_virt: Option<CpuVirt>, module: Option<&str>) -> KvmProbe {
        KvmProbe {
            device: api.is_some(),
            api_version: api,
            error: api.is_none().then(|| "/dev/kvm does not exist".to_string()),
            cpu_virt,
            module: module.map(str::to_string),
        }
    }

    #[test]
    fn cpuinfo_flags() {
        let intel = "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse2\nbugs\t\t: spectre\n";
        let amd = "flags\t\t: fpu svm sse2\n";
        let none = "flags\t\t: fpu hypervisor sse2 svm_lock\nbugs : vmx\n";
        assert_eq!(parse_cpu_virt(intel), Some(CpuVirt::Vmx));
        assert_eq!(parse_cpu_virt(amd), Some(CpuVirt::Svm));
        assert_eq!(parse_cpu_virt(none), None);
        assert_eq!(parse_cpu_virt(""), None);
    }

    #[test]
    fn modules_and_meminfo() {
        let m = "kvm_pvm 90112 0 - Live 0x0\nkvm 1347584 1 kvm_pvm, Live 0x0\n";
        assert_eq!(parse_kvm_module(m).as_deref(), Some("kvm_pvm"));
        assert_eq!(parse_kvm_module("kvm_intel 1 0 - Live 0\n").as_deref(), Some("kvm_intel"));
        assert_eq!(parse_kvm_module("kvm 1 0 - Live 0\n"), None);
        assert_eq!(parse_mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24_576_000 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(probe(None, Some(CpuVirt::Vmx), Some("kvm_intel")).kind(), KvmKind::Absent);
        assert_eq!(probe(Some(12), Some(CpuVirt::Vmx), Some("kvm_intel")).kind(), KvmKind::Hardware);
        assert_eq!(probe(Some(12), None, Some("kvm_amd")).kind(), KvmKind::Hardware);
        assert_eq!(probe(Some(12), Some(CpuVirt::Svm), None).kind(), KvmKind::Hardware);
        assert_eq!(probe(Some(12), None, Some("kvm_pvm")).kind(), KvmKind::Software);
        assert_eq!(probe(Some(12), None, None).kind(), KvmKind::Software);
        assert_eq!(probe(Some(11), Some(CpuVirt::Vmx), None).kind(), KvmKind::Absent);
    }

    #[test]
    fn auto_picks_kvm_only_when_accelerated() {
        let hw = probe(Some(12), Some(CpuVirt::Vmx), Some("kvm_intel"));
        let sw = probe(Some(12), None, Some("kvm_pvm"));
        let none = probe(None, None, None);
        assert_eq!(select(BackendRequest::Auto, &hw).expect("auto").0, BackendChoice::Kvm);
        let (c, why) = select(BackendRequest::Auto, &sw).expect("auto");
        assert_eq!(c, BackendChoice::Soft);
        assert!(why.contains("kvm_pvm"), "{why}");
        assert_eq!(select(BackendRequest::Auto, &none).expect("auto").0, BackendChoice::Soft);
    }

    #[test]
    fn explicit_requests() {
        let sw = probe(Some(12), None, Some("kvm_pvm"));
        let none = probe(None, None, None);
        assert_eq!(select(BackendRequest::Soft, &sw).expect("soft").0, BackendChoice::Soft);
        assert_eq!(select(BackendRequest::Kvm, &sw).expect("kvm").0, BackendChoice::Kvm);
        let err = select(BackendRequest::Kvm, &none).expect_err("no kvm");
        assert!(err.to_string().contains("/dev/kvm"), "{err}");
    }

    #[test]
    fn probing_this_host_is_consistent() {
        let info = HostInfo::probe();
        assert!(info.cores >= 1);
        assert!(info.memfd);
        if info.kvm.usable() {
            assert!(info.kvm.device);
            assert!(info.kvm.error.is_none());
        } else {
            assert!(info.kvm.error.is_some());
        }
    }
}
