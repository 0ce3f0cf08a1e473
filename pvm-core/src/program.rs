//! What the first guest process runs: the program's guest path, argv, environment and working
//! directory, and the root filesystem it comes with. Checks a host program before boot so a
//! missing or unrunnable program gets a clear line and `docker run`'s status (127 / 126).

use std::path::{Path, PathBuf};

use goblin::elf::{Elf, header, program_header};

use crate::cli::RunArgs;
use crate::initramfs::Initramfs;
use crate::mounts::{self, MountPlan};

/// The built-in demo program (a static C program, see `demo/demo.c`).
static DEMO: &[u8] = include_bytes!(env!("PVM_DEMO"));
/// Guest path of the demo program.
const DEMO_PATH: &str = "/bin/pvm-demo";

/// Why the program cannot be launched.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// Not found (exit status 127).
    #[error("{0}")]
    NotFound(String),
    /// Found but cannot run (exit status 126).
    #[error("{path}: cannot execute: {why}")]
    CannotExecute {
        /// The program as given.
        path: String,
        /// Why.
        why: String,
    },
    /// Anything else of pvm's own (exit status 125).
    #[error("{0}")]
    Other(String),
}

/// The first process and its filesystem.
pub struct Launch {
    /// Absolute guest path to execute.
    pub path: String,
    /// argv (argv[0] as the user gave it).
    pub argv: Vec<String>,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory (guest path).
    pub workdir: String,
    /// The initramfs archive (without --rootfs the root filesystem; with it, empty).
    pub initramfs: Vec<u8>,
    /// The boot mount table and what the file server serves.
    pub mounts: MountPlan,
}

/// Checks that `data` is a static x86-64 ELF executable pvm can run without a root filesystem.
fn check_static_elf(shown: &str, data: &[u8]) -> Result<(), ProgramError> {
    let bad = |why: &str| ProgramError::CannotExecute { path: shown.to_string(), why: why.to_string() };
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(bad("not an ELF executable (exec format error)"));
    }
    let elf = Elf::parse(data).map_err(|e| bad(&format!("malformed ELF ({e})")))?;
    if !elf.is_64 || elf.header.e_machine != header::EM_X86_64 {
        return Err(bad(&format!(
            "wrong architecture ({}, pvm runs x86-64 programs)",
            header::machine_to_str(elf.header.e_machine)
        )));
    }
    if elf.header.e_type != header::ET_EXEC && elf.header.e_type != header::ET_DYN {
        return Err(bad("not an executable ELF file"));
    }
    if let Some(interp) = elf.interpreter {
        return Err(bad(&format!(
            "dynamically linked (needs {interp}); without --rootfs pvm runs static programs only"
        )));
    }
    for ph in elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD) {
        let end = ph.p_offset.checked_add(ph.p_filesz);
        if end.is_none_or(|e| e > data.len() as u64) {
            return Err(bad("truncated ELF file (a segment extends past the end of the file)"));
        }
    }
    Ok(())
}

/// Docker's default PATH (what `docker run` gives a container whose image sets none).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves what `args` asks to run.
///
/// # Errors
/// [`ProgramError`], mapped to exit statuses by the caller.
pub fn resolve(args: &RunArgs) -> Result<Launch, ProgramError> {
    let mounts = mounts::plan(args).map_err(ProgramError::Other)?;
    let mut fs = Initramfs::new();
    let io = |e: std::io::Error| ProgramError::Other(format!("building the initramfs: {e}"));
    let (path, argv) = match (args.program.split_first(), &mounts.root) {
        (None, Some(_)) => {
            return Err(ProgramError::Other("--rootfs needs the PROGRAM to run (`pvm run --rootfs DIR PROGRAM [ARGS]...`)".into()));
        }
        (None, None) => {
            fs.add_file(DEMO_PATH, 0o755, DEMO).map_err(io)?;
            (DEMO_PATH.to_string(), vec!["pvm-demo".to_string()])
        }
        (Some((prog, rest)), Some(root)) => {
            // The root is served in place by the file server: nothing of it is read here but
            // the program's directory entry (start-up does not depend on the tree's size).
            let guest = find_in_root(root, prog, &args.env, &args.workdir)?;
            (guest, std::iter::once(prog.clone()).chain(rest.iter().cloned()).collect())
        }
        (Some((prog, rest)), None) => {
            let host = PathBuf::from(prog);
            let data = match std::fs::read(&host) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ProgramError::NotFound(format!("{prog}: no such file or directory")));
                }
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                    return Err(ProgramError::CannotExecute { path: prog.clone(), why: "is a directory".into() });
                }
                Err(e) => {
                    return Err(ProgramError::CannotExecute { path: prog.clone(), why: e.to_string() });
                }
            };
            check_static_elf(prog, &data)?;
            let guest = guest_path_for(&host)?;
            fs.add_file(&guest, 0o755, &data).map_err(io)?;
            (guest, std::iter::once(prog.clone()).chain(rest.iter().cloned()).collect())
        }
    };
    if mounts.root.is_none() {
        fs.add_dir("/tmp", 0o1777).map_err(io)?;
        fs.add_dir("/dev", 0o755).map_err(io)?;
        fs.add_dir("/proc", 0o555).map_err(io)?;
    }
    Ok(Launch {
        path,
        argv,
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        initramfs: fs.finish().map_err(io)?,
        mounts,
    })
}

/// What one candidate path inside the root is.
enum Found {
    /// A regular file with an execute bit.
    Executable,
    /// Exists but cannot be executed (why).
    NotExecutable(&'static str),
    /// Nothing there (or a path that leaves nothing to open).
    Missing,
}

/// Looks `guest` (absolute or relative to the root) up inside `root` the way the guest will:
/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so symlinks and `..` stay inside it
/// (openat2(2)).
fn probe(root: &std::fs::File, guest: &str) -> Result<Found, ProgramError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let Ok(c) = std::ffi::CString::new(guest.trim_start_matches('/')) else { return Ok(Found::Missing) };
    let c = if c.as_bytes().is_empty() { c".".to_owned() } else { c };
    // SAFETY: open_how is plain integers; all-zero is valid (and required for new fields).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads `c` (NUL-terminated) and `how` (its size passed) and returns a
    // new descriptor or -1.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, root.as_raw_fd(), c.as_ptr(), &how as *const libc::open_how, size_of::<libc::open_how>())
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG | libc::EXDEV) => Ok(Found::Missing),
            Some(libc::EACCES) => Ok(Found::NotExecutable("permission denied")),
            _ => Err(ProgramError::Other(format!("looking up {guest} in --rootfs: {e}"))),
        };
    }
    // SAFETY: a descriptor openat2 just returned, owned by nobody else.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    let meta = file.metadata().map_err(|e| ProgramError::Other(format!("looking up {guest} in --rootfs: {e}")))?;
    use std::os::unix::fs::PermissionsExt;
    Ok(if meta.is_dir() {
        Found::NotExecutable("is a directory")
    } else if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        Found::NotExecutable("permission denied")
    } else {
        Found::Executable
    })
}

/// The guest path of `prog` inside the root filesystem at `root`: a path with a `/` as given
/// (relative ones against `workdir`); a bare name searched in the guest's PATH (`--env PATH=`,
/// else [`DEFAULT_PATH`]; empty and relative entries are taken against `workdir`, as
/// execvp(3) does), skipping entries where it is missing or not executable.
///
/// # Errors
/// [`ProgramError::NotFound`] (127) when nothing is there, [`ProgramError::CannotExecute`]
/// (126) when the only matches cannot be executed.
pub fn find_in_root(root: &Path, prog: &str, env: &[String], workdir: &str) -> Result<String, ProgramError> {
    let dir = std::fs::File::open(root).map_err(|e| ProgramError::Other(format!("--rootfs {}: {e}", root.display())))?;
    let against = |d: &str, name: &str| -> String {
        let d = if d.starts_with('/') { d.to_string() } else { format!("{}/{d}", workdir.trim_end_matches('/')) };
        format!("{}/{name}", d.trim_end_matches('/'))
    };
    if prog.is_empty() {
        return Err(ProgramError::NotFound("'': no such file or directory".into()));
    }
    if prog.contains('/') {
        let guest = if prog.starts_with('/') { prog.to_string() } else { against(".", prog).replace("/./", "/") };
        return match probe(&dir, &guest)? {
            Found::Executable => Ok(guest),
            Found::NotExecutable(why) => Err(ProgramError::CannotExecute { path: prog.to_string(), why: why.into() }),
            Found::Missing => Err(ProgramError::NotFound(format!("{prog}: no such file or directory"))),
        };
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    let mut refused = None;
    for d in path.split(':') {
        let d = if d.is_empty() { "." } else { d };
        let guest = against(d, prog);
        match probe(&dir, &guest)? {
            Found::Executable => return Ok(guest.replace("/./", "/")),
            Found::NotExecutable(why) => {
                refused.get_or_insert(why);
            }
            Found::Missing => {}
        }
    }
    match refused {
        Some(why) => Err(ProgramError::CannotExecute { path: prog.to_string(), why: why.into() }),
        None => Err(ProgramError::NotFound(format!("{prog}: executable file not found in $PATH"))),
    }
}

/// The guest path a host program is placed at: its absolute host path, so that a program
/// that looks at its own path sees the same as natively.
fn guest_path_for(host: &Path) -> Result<String, ProgramError> {
    let abs = std::path::absolute(host).map_err(|e| ProgramError::Other(e.to_string()))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| ProgramError::Other(format!("{}: path is not UTF-8", host.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_is_rejected() {
        let e = check_static_elf("x", b"#!/bin/sh\necho hi\n").expect_err("text");
        assert!(e.to_string().contains("not an ELF"), "{e}");
    }

    #[test]
    fn the_demo_is_a_static_elf() {
        check_static_elf("demo", DEMO).expect("demo is static x86-64");
    }

    #[test]
    fn truncated_elf_is_rejected() {
        let cut = &DEMO[..DEMO.len() / 2];
        let e = check_static_elf("cut", cut).expect_err("truncated");
        assert!(matches!(e, ProgramError::CannotExecute { .. }), "{e}");
    }
}
