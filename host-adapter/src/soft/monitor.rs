//! Watches the VM's sandbox processes with their pidfds: a dead K ends the VM; a dead U marks
//! its space's PVCSs `SpaceDead` so the guest kernel learns it at its next switch. A stop
//! request ([`crate::stop`]: pvm got SIGTERM, SIGINT or SIGHUP) ends the VM too.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use guest_abi::pvcs::SwitchState;
use switcher::StubProcess;

use super::Vm;
use crate::ExitReason;

/// Poll period while nothing happens, ms (also bounds how late a new U process is watched).
const PERIOD_MS: i32 = 50;

/// Runs until the VM stops.
pub(crate) fn run(vm: &Vm, kernel: &StubProcess) {
    let mut dead_spaces = std::collections::HashSet::new();
    // pvm's stop request (SIGTERM and the like): -1 when there is no eventfd (then the
    // request is noticed at the next poll timeout).
    let stop_fd = crate::stop::fd().map_or(-1, |fd| fd.as_raw_fd());
    while !vm.stop.load(Ordering::Acquire) {
        if let Some(sig) = crate::stop::requested() {
            vm.finish(ExitReason::Stopped(sig));
            return;
        }
        let spaces = vm.spaces.live();
        let mut fds = vec![
            libc::pollfd { fd: kernel.pidfd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: vm.stop_event.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop_fd, events: libc::POLLIN, revents: 0 },
        ];
        fds.extend(spaces.iter().map(|s| libc::pollfd {
            fd: s.process.pidfd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, PERIOD_MS) };
        if n <= 0 || fds[1].revents != 0 || fds[2].revents != 0 {
            continue;
        }
        if fds[0].revents != 0 {
            // Give a shutdown hypercall that raced with K's exit the chance to win.
            std::thread::sleep(std::time::Duration::from_millis(PERIOD_MS as u64));
            let how = match kernel.try_wait() {
                Ok(Some(info)) => format!("guest kernel process ended: {info}"),
                Ok(None) => "guest kernel process ended".to_string(),
                Err(e) => format!("guest kernel process ended ({e})"),
            };
            vm.finish(ExitReason::KernelDied(how));
            return;
        }
        for (space, fd) in spaces.iter().zip(&fds[3..]) {
            // A released space's U was killed on purpose: only a live one's death is news.
            let live = vm.spaces.get(space.shadow.root()).is_some_and(|s| std::sync::Arc::ptr_eq(&s, space));
            if fd.revents != 0 && live && dead_spaces.insert(space.process.pid()) {
                let how = match space.process.try_wait() {
                    Ok(Some(info)) => info.to_string(),
                    _ => "unknown".to_string(),
                };
                // The guest kernel learns it and kills what used the space; not pvm's failure.
                tracing::debug!(space = space.id, "a guest address-space process died: {how}");
                for v in 0..vm.setup.vcpus {
                    let pvcs = vm.shared.pvcs(space.id, v);
                    pvcs.state.store(SwitchState::SpaceDead as u32, Ordering::Release);
                    let _ = switcher::futex::wake(&pvcs.state, i32::MAX);
                }
            }
        }
    }
}
