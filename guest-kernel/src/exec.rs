//! Program loading (`execve`): reads the file from the Vfs, handles `#!` scripts, parses the
//! ELF (static ET_EXEC, static-PIE ET_DYN, or with `PT_INTERP` the interpreter too), builds a
//! fresh address space with the segments, brk and stack VMAs, and the Linux initial stack.

use crate::elf::{Elf, ElfError, PF_W, PF_X};
use crate::fs::ExecFile;
use crate::mm::space::{AddrSpace, STACK_MAX, STACK_TOP};
use crate::mm::vma::VmaKind;
use crate::mm::filecache::Image;
use crate::mm::{page_down, page_up, phys_to_virt, PAGE_SIZE};
use crate::stack::{self, StackSpec};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::layout::{USER_END, USER_START};
use guest_fs::{Errno, FsContext};

/// Load address of a static-PIE main program (Linux's `ELF_ET_DYN_BASE`-like choice).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Longest `#!` line.
const SHEBANG_MAX: usize = 256;
/// Maximum nesting of `#!` interpreters (Linux allows 4 levels).
const SHEBANG_DEPTH: u32 = 4;
/// Total bytes of argument + environment strings allowed (Linux: a quarter of the stack).
const ARG_MAX: usize = 2 << 20;

/// A failed exec: the errno for the caller and a human-readable reason for the log.
#[derive(Debug)]
pub struct ExecError {
    /// errno (`ENOENT`, `ENOEXEC`, `EACCES`, `ENOMEM`, `E2BIG`...).
    pub errno: Errno,
    /// One-line reason.
    pub reason: String,
}

fn err(errno: Errno, reason: String) -> ExecError {
    ExecError { errno, reason }
}

/// A loaded program, ready to run.
pub struct Loaded {
    /// The new address space.
    pub mm: AddrSpace,
    /// Initial instruction pointer.
    pub entry: u64,
    /// Initial stack pointer.
    pub rsp: u64,
    /// Path of the executed file (after `#!` resolution the script path stays the exe).
    pub exe: Vec<u8>,
}

/// Reads a whole regular file for execution, checking it is executable.
fn read_exec(ctx: &FsContext, path: &[u8]) -> Result<ExecFile, Errno> {
    crate::fs::read_exec_file(ctx, path)
}

/// Loads `path` with `argv`/`envp` into a new address space.
pub fn load(ctx: &FsContext, path: &[u8], argv: Vec<Vec<u8>>, envp: &[Vec<u8>]) -> Result<Loaded, ExecError> {
    let show = String::from_utf8_lossy(path).into_owned();
    let mut path: Vec<u8> = path.to_vec();
    let mut argv = argv;
    let mut data = read_exec(ctx, &path).map_err(|e| err(e, format!("exec {show}: {}", e.name().unwrap_or("error"))))?;
    let mut depth = 0;
    while data.bytes().starts_with(b"#!") {
        depth += 1;
        if depth > SHEBANG_DEPTH {
            return Err(err(Errno::ELOOP, format!("exec {show}: too many #! levels")));
        }
        let bytes = data.bytes();
        let line_end = bytes.iter().take(SHEBANG_MAX).position(|&b| b == b'\n').unwrap_or(bytes.len().min(SHEBANG_MAX));
        let line = &bytes[2..line_end];
        let line: Vec<u8> = line.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let mut parts = line.splitn(2, |b| *b == b' ' || *b == b'\t');
        let interp: Vec<u8> = parts.next().unwrap_or(&[]).to_vec();
        let arg: Vec<u8> = parts.next().map(|a| a.trim_ascii().to_vec()).unwrap_or_default();
        if interp.is_empty() {
            return Err(err(Errno::ENOEXEC, format!("exec {show}: empty #! line")));
        }
        let mut new_argv = Vec::with_capacity(argv.len() + 2);
        new_argv.push(interp.clone());
        if !arg.is_empty() {
            new_argv.push(arg);
        }
        new_argv.push(path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        data = read_exec(ctx, &interp).map_err(|e| {
            err(e, format!("exec {show}: interpreter {} : {}", String::from_utf8_lossy(&interp), e.name().unwrap_or("error")))
        })?;
        path = interp;
    }
    let elf = Elf::parse(data.bytes()).map_err(|e| {
        let why = match e {
            ElfError::NotElf => "not an ELF executable",
            ElfError::WrongArch => "not an x86-64 ELF executable",
            ElfError::Malformed => "truncated or malformed ELF file",
        };
        err(Errno::ENOEXEC, format!("exec {show}: {why}"))
    })?;
    let interp = match &elf.interp {
        Some(ip) => {
            let idata = read_exec(ctx, ip).map_err(|e| {
                err(e, format!("exec {show}: dynamically linked, interpreter {} not found", String::from_utf8_lossy(ip)))
            })?;
            let ielf = Elf::parse(idata.bytes()).map_err(|_| {
                err(Errno(linux_raw_sys::errno::ELIBBAD), format!("exec {show}: bad interpreter {}", String::from_utf8_lossy(ip)))
            })?;
            Some((idata, ielf))
        }
        None => None,
    };
    let oom = |_| err(Errno::ENOMEM, format!("exec {show}: out of memory"));
    let mut mm = AddrSpace::new().map_err(oom)?;
    let (lo, _) = elf.span();
    let bias = if elf.e_type == crate::elf::ET_DYN { PIE_BASE - lo } else { 0 };
    let end = load_segments(&mut mm, &data, &elf, bias).map_err(|e| err(e, format!("exec {show}: cannot map segments")))?;
    let mut entry = elf.entry.wrapping_add(bias);
    let mut interp_base = 0;
    if let Some((idata, ielf)) = &interp {
        let (ilo, ihi) = ielf.span();
        let base = mm.find_free(page_up(ihi - ilo)).ok_or_else(|| err(Errno::ENOMEM, format!("exec {show}: no room for interpreter")))?;
        let ibias = base - ilo;
        load_segments(&mut mm, idata, ielf, ibias).map_err(|e| err(e, format!("exec {show}: cannot map interpreter")))?;
        interp_base = base;
        entry = ielf.entry.wrapping_add(ibias);
    }
    mm.brk_start = page_up(end);
    mm.brk = mm.brk_start;
    // Stack.
    let stack_prot = 3 | if elf.exec_stack { 4 } else { 0 };
    mm.add_vma(STACK_TOP - STACK_MAX, STACK_TOP, stack_prot, VmaKind::Stack);
    let mut random = [0u8; 16];
    crate::rand::fill(&mut random);
    let (_, _, _, edx) = crate::arch::cpuid(1, 0);
    let (_, xsave_size, _, _) = crate::arch::cpuid(0xd, 0);
    let phdr = elf.phdr_vaddr().map_or(0, |v| v.wrapping_add(bias));
    let vdso = crate::vdso::map_into(&mut mm);
    let aux = [
        (stack::AT_PHDR, phdr),
        (stack::AT_PHENT, crate::elf::PHDR_SIZE as u64),
        (stack::AT_PHNUM, u64::from(elf.phnum)),
        (stack::AT_PAGESZ, PAGE_SIZE),
        (stack::AT_BASE, interp_base),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, elf.entry.wrapping_add(bias)),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_SECURE, 0),
        (stack::AT_HWCAP, u64::from(edx)),
        (stack::AT_HWCAP2, 0),
        (stack::AT_CLKTCK, 100),
        (stack::AT_MINSIGSTKSZ, u64::from(xsave_size) + 1024),
    ];
    // Linux puts AT_SYSINFO_EHDR first and leaves it out when there is no vDSO.
    let aux: Vec<(u64, u64)> = vdso.map(|v| (crate::vdso::AT_SYSINFO_EHDR, v)).into_iter().chain(aux).collect();
    let img = stack::build(STACK_TOP, &StackSpec { argv: &argv, envp, execfn: &path, random, aux: &aux }, ARG_MAX)
        .ok_or_else(|| err(Errno::E2BIG, format!("exec {show}: argument list too long")))?;
    // Only the pages the initial stack needs (plus a little room): fresh frames must be
    // zeroed, and the first stack fault below allocates the rest of its chunk.
    let stack_lo = page_down(img.rsp).saturating_sub(STACK_ROOM).max(STACK_TOP - STACK_MAX);
    mm.populate(stack_lo, STACK_TOP).map_err(|_| err(Errno::ENOMEM, format!("exec {show}: out of memory for the stack")))?;
    crate::mm::uaccess::copy_to_user(&mut mm, img.rsp, &img.bytes)
        .map_err(|_| err(Errno::ENOMEM, format!("exec {show}: out of memory for the stack")))?;
    // Map what the program touches first in two PREFAULTs once the space is loaded: the
    // image (segments) and the part of the stack the loader populated.
    let (lo, _) = elf.span();
    mm.prefault_on_load.push((page_down(lo.wrapping_add(bias)), page_up(end) - page_down(lo.wrapping_add(bias))));
    mm.prefault_on_load.push((stack_lo, STACK_TOP - stack_lo));
    Ok(Loaded { mm, entry, rsp: img.rsp, exe: path })
}

/// Stack bytes populated (and prefaulted) below the initial stack pointer at exec.
const STACK_ROOM: u64 = 16 << 10;

/// Maps the `PT_LOAD` segments of `elf` (file `file`) at `bias`. Returns the highest end.
///
/// With a page-cache image, whole file pages of read-only segments are mapped from the
/// image's frames (shared, read-only: Linux's `MAP_PRIVATE` file mapping); writable segments
/// and pages the file only partly fills get private copies, as before.
fn load_segments(mm: &mut AddrSpace, file: &ExecFile, elf: &Elf, bias: u64) -> Result<u64, Errno> {
    let data = file.bytes();
    let mut max_end = 0;
    for p in elf.loads() {
        let va = p.vaddr.checked_add(bias).ok_or(Errno::ENOEXEC)?;
        let vend = va.checked_add(p.memsz).ok_or(Errno::ENOEXEC)?;
        let start = page_down(va);
        let end = page_up(vend);
        if start < USER_START || end > USER_END || end <= start {
            return Err(Errno::ENOEXEC);
        }
        let prot = 1 | if p.flags & PF_W != 0 { 2 } else { 0 } | if p.flags & PF_X != 0 { 4 } else { 0 };
        // A segment may start in the last page of the previous one: widen that page's prot.
        let mut s = start;
        while s < end {
            match mm.vmas.find(s).cloned() {
                Some(v) => {
                    mm.protect(s, s + PAGE_SIZE, v.prot | prot);
                    s += PAGE_SIZE;
                }
                None => break,
            }
        }
        if s < end {
            if mm.vmas.overlaps(s, end) {
                return Err(Errno::ENOEXEC);
            }
            mm.add_vma(s, end, prot, VmaKind::Anon);
        }
        if let Some(img) = file.image()
            && p.flags & PF_W == 0
            && (va.wrapping_sub(p.offset)).is_multiple_of(PAGE_SIZE)
        {
            share_pages(mm, img, start, page_down(p.offset), va + p.filesz, p.memsz == p.filesz, prot)?;
        }
        mm.populate(start, end).map_err(|_| Errno::ENOMEM)?;
        // Copy the file bytes of the pages (as Linux maps whole file pages), then the bss
        // beyond filesz stays zero (fresh frames), except in a page shared with the previous
        // segment, which we zero explicitly from vaddr + filesz.
        let foff = page_down(p.offset);
        let fend = p.offset + p.filesz;
        write_kernel(mm, start, &data[foff as usize..fend as usize], file.image())?;
        let bss = va + p.filesz;
        let bss_page_end = page_up(bss).min(vend.max(bss));
        if p.memsz > p.filesz && bss < bss_page_end {
            zero_kernel(mm, bss, bss_page_end - bss)?;
        }
        max_end = max_end.max(vend);
    }
    mm.flush();
    Ok(max_end)
}

/// Maps the file pages of a read-only segment from the page cache: user pages from `start`
/// get the image's frames from file offset `foff`, as far as whole pages hold file bytes
/// (`file_end`, a user address; with `no_bss` the last partial page too, as Linux maps the
/// whole file page). Pages already present (shared with the previous segment) are left to
/// the copying path.
fn share_pages(mm: &mut AddrSpace, img: &Image, start: u64, foff: u64, file_end: u64, no_bss: bool, prot: u32) -> Result<(), Errno> {
    let last = if no_bss { page_up(file_end) } else { page_down(file_end) };
    let flags = crate::mm::paging::flags_for_prot(prot) - x86_64::structures::paging::PageTableFlags::WRITABLE;
    let mut page = start;
    while page < last {
        let Some(gpa) = img.frame_at(foff + (page - start)) else { break };
        if mm.pt.translate(page).is_none() {
            if !crate::mm::frame::share_all(&[gpa]) {
                break;
            }
            if mm.map_frames(page, gpa, 1, flags).is_err() {
                return Err(Errno::ENOMEM);
            }
        }
        page += PAGE_SIZE;
    }
    Ok(())
}

/// Writes into present user pages regardless of their protection (loader only). Pages that
/// already hold exactly these bytes as frames of `img` (shared from the page cache) are
/// skipped; any other shared frame is replaced by a private copy first.
fn write_kernel(mm: &mut AddrSpace, va: u64, bytes: &[u8], img: Option<&Image>) -> Result<(), Errno> {
    let mut done = 0usize;
    while done < bytes.len() {
        let at = va + done as u64;
        let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(bytes.len() - done);
        let mut leaf = mm.pt.translate(page_down(at)).ok_or(Errno::EFAULT)?;
        if crate::mm::frame::is_shared(leaf.gpa) {
            let src = bytes[done..done + n].as_ptr();
            let same_frame = img.is_some() && core::ptr::eq(src, crate::mm::phys_to_virt(leaf.gpa + at % PAGE_SIZE).cast_const());
            if same_frame {
                done += n;
                continue;
            }
            leaf.gpa = mm.unshare(page_down(at)).map_err(|_| Errno::ENOMEM)?;
        }
        // SAFETY: the frame belongs to this new address space (populated above); n stays
        // within the page.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes[done..].as_ptr(), phys_to_virt(leaf.gpa + at % PAGE_SIZE), n);
        }
        done += n;
    }
    Ok(())
}

fn zero_kernel(mm: &mut AddrSpace, va: u64, len: u64) -> Result<(), Errno> {
    let zeros = alloc::vec![0u8; len as usize];
    write_kernel(mm, va, &zeros, None)
}
