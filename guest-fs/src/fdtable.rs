//! Per-process file descriptor table: fd -> (open file description, close-on-exec).

use crate::errno::{Errno, Result};
use crate::file::OpenFile;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Default `RLIMIT_NOFILE`: fds are `0..DEFAULT_FD_LIMIT`.
pub const DEFAULT_FD_LIMIT: usize = 1024;

#[derive(Clone)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// A file descriptor table. `Clone` is `fork(2)`: the copy shares every open file
/// description (offsets and status flags) with the original, as Linux does.
#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FdTable {
    /// An empty table with the default limit.
    pub fn new() -> Self {
        Self { slots: Vec::new(), limit: DEFAULT_FD_LIMIT }
    }

    /// `RLIMIT_NOFILE` soft limit (fds must be below it).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sets the limit (`setrlimit(RLIMIT_NOFILE)`); existing higher fds stay open.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    fn index(&self, fd: i32) -> Result<usize> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match self.slots.get(i) {
            Some(Some(_)) => Ok(i),
            _ => Err(Errno::EBADF),
        }
    }

    /// The description open as `fd`; `EBADF` if none.
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>> {
        let i = self.index(fd)?;
        self.slots[i].as_ref().map(|s| s.file.clone()).ok_or(Errno::EBADF)
    }

    /// The lowest free fd `>= min`, without taking it; `EMFILE` when none is below the limit,
    /// `EINVAL` if `min` is negative or not below the limit.
    pub fn lowest_free(&self, min: i32) -> Result<i32> {
        let min = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        if min >= self.limit {
            return Err(Errno::EINVAL);
        }
        let free = (min..self.limit).find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()));
        free.map(|i| i as i32).ok_or(Errno::EMFILE)
    }

    /// Installs `file` at the lowest free fd `>= min`; `EMFILE` past the limit, `EINVAL`
    /// if `min` is negative or not below the limit (`fcntl(F_DUPFD)`).
    pub fn alloc(&mut self, file: Arc<OpenFile>, cloexec: bool, min: i32) -> Result<i32> {
        let i = self.lowest_free(min)? as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some(Slot { file, cloexec });
        Ok(i as i32)
    }

    /// Installs `file` as `fd`, replacing what was there (returned, for the caller to drop
    /// outside its locks: `dup2(2)` closes it silently). `EBADF` if `fd` is negative or not
    /// below the limit.
    pub fn install_at(&mut self, fd: i32, file: Arc<OpenFile>, cloexec: bool) -> Result<Option<Arc<OpenFile>>> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i >= self.limit {
            return Err(Errno::EBADF);
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        Ok(self.slots[i].replace(Slot { file, cloexec }).map(|s| s.file))
    }

    /// Removes `fd` (`close(2)`), returning its description; `EBADF` if not open.
    pub fn close(&mut self, fd: i32) -> Result<Arc<OpenFile>> {
        let i = self.index(fd)?;
        let slot = self.slots[i].take().ok_or(Errno::EBADF)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(slot.file)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool> {
        let i = self.index(fd)?;
        Ok(self.slots[i].as_ref().is_some_and(|s| s.cloexec))
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<()> {
        let i = self.index(fd)?;
        if let Some(s) = self.slots[i].as_mut() {
            s.cloexec = on;
        }
        Ok(())
    }

    /// Closes every close-on-exec fd (`execve(2)`); returns the closed descriptions.
    pub fn close_on_exec(&mut self) -> Vec<Arc<OpenFile>> {
        let mut closed = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.cloexec)
                && let Some(s) = slot.take()
            {
                closed.push(s.file);
            }
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        closed
    }

    /// Open fds in increasing order, with their descriptions (for `/proc/self/fd`, `poll`).
    pub fn iter(&self) -> impl Iterator<Item = (i32, &Arc<OpenFile>)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i as i32, &s.file)))
    }

    /// Number of open fds.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// True when no fd is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
