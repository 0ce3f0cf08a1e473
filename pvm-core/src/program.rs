//! What the first guest process runs: the program's guest path, argv, environment and working
//! directory, and the root filesystem it comes with. Checks a host program before boot so a
//! missing or unrunnable program gets a clear line and `docker run`'s status (127 / 126).

use std::path::{Path, PathBuf};

use goblin::elf::{Elf, header, program_header};

use crate::cli::RunArgs;
use crate::initramfs::{Initramfs, InitramfsError};

/// The built-in demo program (a static C program, see `demo/demo.c`).
static DEMO: &[u8] = include_bytes!(env!("PVM_DEMO"));
/// Guest path of the demo program.
const DEMO_PATH: &str = "/bin/pvm-demo";

/// Why the program cannot be launched.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// Not found (exit status 127).
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// Found but cannot run (exit status 126).
    #[error("{path}: cannot execute: {why}")]
    CannotExecute {
        /// The program as given.
        path: String,
        /// Why.
        why: String,
    },
    /// The root filesystem could not be read (exit status 125).
    #[error("root filesystem: {0}")]
    Rootfs(#[from] InitramfsError),
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
    /// The initramfs archive.
    pub initramfs: Vec<u8>,
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

/// Resolves what `args` asks to run.
///
/// # Errors
/// [`ProgramError`], mapped to exit statuses by the caller.
pub fn resolve(args: &RunArgs) -> Result<Launch, ProgramError> {
    let mut fs = Initramfs::new();
    let io = |e: std::io::Error| ProgramError::Other(format!("building the initramfs: {e}"));
    let (path, argv) = match (args.program.split_first(), &args.rootfs) {
        (None, rootfs) => {
            if let Some(dir) = rootfs {
                add_rootfs(&mut fs, dir)?;
            }
            fs.add_file(DEMO_PATH, 0o755, DEMO).map_err(io)?;
            (DEMO_PATH.to_string(), vec!["pvm-demo".to_string()])
        }
        (Some((prog, rest)), Some(dir)) => {
            add_rootfs(&mut fs, dir)?;
            if !prog.starts_with('/') {
                return Err(ProgramError::NotFound(format!(
                    "{prog} (with --rootfs, PROGRAM is an absolute path inside the root filesystem)"
                )));
            }
            let host = dir.join(prog.trim_start_matches('/'));
            if std::fs::symlink_metadata(&host).is_err() {
                return Err(ProgramError::NotFound(prog.clone()));
            }
            (prog.clone(), std::iter::once(prog.clone()).chain(rest.iter().cloned()).collect())
        }
        (Some((prog, rest)), None) => {
            let host = PathBuf::from(prog);
            let data = match std::fs::read(&host) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ProgramError::NotFound(prog.clone()));
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
    fs.add_dir("/tmp", 0o1777).map_err(io)?;
    fs.add_dir("/dev", 0o755).map_err(io)?;
    fs.add_dir("/proc", 0o555).map_err(io)?;
    Ok(Launch {
        path,
        argv,
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        initramfs: fs.finish().map_err(io)?,
    })
}

fn add_rootfs(fs: &mut Initramfs, dir: &Path) -> Result<(), ProgramError> {
    if !dir.is_dir() {
        return Err(ProgramError::Other(format!("--rootfs {}: not a directory", dir.display())));
    }
    fs.add_tree(dir)?;
    Ok(())
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
