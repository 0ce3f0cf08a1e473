//! Isolation: guest code cannot reach the host, and cannot break pvm or other guest processes
//! through the host stub area it can see (and leaves no VM process behind when it tries).
//!
//! The guest programs here are NEVER run natively (they kill pid 1, call reboot(2), and write
//! into addresses that only exist in pvm's sandbox processes).

mod common;

use common::{Libc, Outcome, Run, program, pvm_run_args};
use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

const SECRET: &str = "host-only secret 7f3a9c1e: the guest must never read this";
const CAD_PATH: &str = "/proc/sys/kernel/ctrl-alt-del";

/// The value printed by the escape program for `name` ("ret=R errno=E").
fn result_of<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}` line in the guest output:\n{out}"))
}

fn escape_attempts(libc: Libc) {
    common::become_subreaper();
    let dir = tempfile::tempdir().expect("temp dir");
    let host_file = dir.path().join("host-only-file");
    std::fs::write(&host_file, SECRET).expect("write");
    let host_dir = dir.path().join("host-only-dir");
    std::fs::create_dir(&host_dir).expect("mkdir");
    let mut sentinel = std::process::Command::new("sleep").arg("120").spawn().expect("spawning the sentinel `sleep`");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a host listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("local addr").port().to_string();
    let mountinfo_before = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let cad_before = std::fs::read_to_string(CAD_PATH).ok();
    // Ask for the opposite of the host's Ctrl-Alt-Del mode: if the call reached the host, the
    // change would show (and is harmless; it is restored below).
    let cad_request = if cad_before.as_deref().map(str::trim) == Some("0") { "on" } else { "off" };

    let exe = program("escape", libc);
    let sentinel_pid = sentinel.id().to_string();
    let args = [
        host_file.to_str().expect("utf-8"),
        host_dir.to_str().expect("utf-8"),
        sentinel_pid.as_str(),
        port.as_str(),
        cad_request,
    ];
    let out = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &args)).run().finished();

    // Host side first (and restore what an escape would have changed).
    let cad_after = std::fs::read_to_string(CAD_PATH).ok();
    if cad_after != cad_before
        && let Some(v) = &cad_before
    {
        let _ = std::fs::write(CAD_PATH, v);
    }
    let sentinel_alive = sentinel.try_wait().expect("try_wait").is_none();
    let _ = sentinel.kill();
    let _ = sentinel.wait();
    let accepted = listener.accept().is_ok();
    let mountinfo_after = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut content = String::new();
    let file_ok = std::fs::File::open(&host_file).and_then(|mut f| f.read_to_string(&mut content)).is_ok();

    let o = out.out();
    let ctx = out.describe();
    assert!(file_ok && content == SECRET, "the host file was removed or changed\n{ctx}");
    assert!(!o.contains("host-only secret") && !out.err().contains("host-only secret"), "host data leaked\n{ctx}");
    assert!(sentinel_alive, "the guest killed a host process\n{ctx}");
    assert!(!accepted, "the guest connected to a host socket\n{ctx}");
    assert_eq!(mountinfo_after, mountinfo_before, "the host mount table changed\n{ctx}");
    assert_eq!(cad_after, cad_before, "reboot(2) from the guest reached the host\n{ctx}");
    assert!(common::no_orphans_soon(), "VM processes outlived pvm\n{ctx}");

    // Guest side: the answers of a kernel that does not have these host objects.
    for name in ["open_host_file", "stat_host_file", "unlink_host_file", "create_host_file"] {
        assert_eq!(result_of(&o, name), "ret=-1 errno=ENOENT", "{name}\n{ctx}");
    }
    let connect = result_of(&o, "connect_host_listener");
    assert!(connect == "skipped" || connect.starts_with("ret=-1 "), "connect must fail\n{ctx}");
    if sentinel.id() > 1000 {
        assert_eq!(result_of(&o, "kill_host_sentinel"), "ret=-1 errno=ESRCH", "{ctx}");
    }
    let ptrace = result_of(&o, "ptrace_traceme");
    assert!(
        ["ret=0 errno=0", "ret=-1 errno=EPERM", "ret=-1 errno=ENOSYS"].contains(&ptrace),
        "ptrace(PTRACE_TRACEME): {ptrace}\n{ctx}"
    );
    let mount = result_of(&o, "mount_host_dir");
    assert!(mount.starts_with("ret=-1 "), "mount on a host-only path must fail: {mount}\n{ctx}");
    let _ = result_of(&o, "reboot_cad");
    // kill(1, SIGKILL): pid 1 of a Linux pid namespace (the container's init, which the first
    // guest process is) ignores SIGKILL sent from inside the namespace: kill(2) returns 0 and
    // the process goes on (kernel/signal.c, SIGNAL_UNKILLABLE). So pvm exits normally.
    assert_eq!(out.status, 0, "pvm must exit normally\n{ctx}");
    assert_eq!(result_of(&o, "kill_pid_1"), "ret=0 errno=0", "{ctx}");
    assert!(o.ends_with("end\n"), "{ctx}");
}

#[test]
fn escape_attempts_glibc() {
    escape_attempts(Libc::Glibc);
}

#[test]
fn escape_attempts_musl() {
    escape_attempts(Libc::Musl);
}

/// Runs one stub-area attack; returns the outcome after the common checks: it finished in
/// time (60 s), and no VM process survived pvm.
fn attack(args: &[&str]) -> Outcome {
    attack_with_cpus("1", args)
}

/// [`attack`] with `--cpus cpus`.
fn attack_with_cpus(cpus: &str, args: &[&str]) -> Outcome {
    common::become_subreaper();
    let exe = program("stub_attack", Libc::Glibc);
    let out = Run::pvm()
        .args(pvm_run_args(&["--cpus", cpus], &[], None, &exe, args))
        .timeout(Duration::from_secs(60))
        .run();
    assert!(!out.timed_out, "pvm hung after the attack\n{}", out.describe());
    assert!(
        common::no_orphans_soon(),
        "VM processes outlived pvm: {:?}\n{}",
        common::orphaned_vm_processes(),
        out.describe()
    );
    out
}

/// The attack may at worst end the VM with a clear error: a nonzero status with a message.
fn ends_cleanly_or_with_error(out: &Outcome) {
    if out.status != 0 {
        assert!(!out.stderr_lines().is_empty(), "nonzero status without any message\n{}", out.describe());
        assert!(out.status != 124 && out.status < 256, "{}", out.describe());
    }
}

/// Writing to memory the guest must not be able to write: a SIGSEGV for the guest (139), or a
/// clear error; never success.
fn refused(out: &Outcome) {
    assert!(!out.out().contains("(wrong)"), "the write succeeded\n{}", out.describe());
    assert_ne!(out.status, 0, "{}", out.describe());
    ends_cleanly_or_with_error(out);
}

#[test]
fn garbage_over_pvcs() {
    let out = attack(&["pvcs"]);
    ends_cleanly_or_with_error(&out);
}

#[test]
fn garbage_over_pvcs_repeatedly() {
    let out = attack(&["pvcs-loop"]);
    ends_cleanly_or_with_error(&out);
}

#[test]
fn garbage_over_every_pvcs_with_two_vcpus() {
    let out = attack_with_cpus("2", &["pvcs-all"]);
    ends_cleanly_or_with_error(&out);
}

#[test]
fn garbage_over_mapper_completion_page() {
    let out = attack(&["mapper-done"]);
    ends_cleanly_or_with_error(&out);
    if out.status == 0 {
        // Whatever the mapper reported, the memory the guest touched must be right.
        assert!(out.out().contains("sum=368640"), "{}", out.describe());
    }
}

#[test]
fn write_to_mapper_command_area() {
    refused(&attack(&["mapper-cmd"]));
}

#[test]
fn write_to_stub_text() {
    refused(&attack(&["stub-write"]));
}

#[test]
fn jump_into_stub_text() {
    for offset in ["0", "0x40", "0x1000"] {
        let out = attack(&["stub-jump", offset]);
        assert!(!out.out().contains("returned from the stub text"), "{}", out.describe());
        ends_cleanly_or_with_error(&out);
    }
}

#[test]
fn attacks_do_not_affect_other_guest_processes() {
    let out = attack(&["fork"]);
    assert_eq!(out.status, 0, "the parent guest process must survive its children's attacks\n{}", out.describe());
    assert!(out.out().ends_with("parent alive\n"), "{}", out.describe());
}

/// A guest thread that jumps into the stub and sleeps in the host (FUTEX_WAIT on its PVCS word)
/// while the guest kernel thinks it runs user code: H's watchdog ends that address space (the
/// process dies of SIGKILL) and the rest of the VM goes on. Without it, a 1-vCPU VM froze.
#[test]
fn sleeping_in_the_stub_ends_only_the_sleeper() {
    let out = attack(&["stub-sleep"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.out().contains("child killed by signal 9\n"), "{}", out.describe());
    assert!(out.out().ends_with("parent alive\n"), "{}", out.describe());
}
