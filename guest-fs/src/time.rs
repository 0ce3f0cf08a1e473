//! Timestamps and the clock the kernel supplies for file times.

/// A point in `CLOCK_REALTIME` (seconds and nanoseconds since the Unix epoch), as in
/// `struct timespec` (`clock_gettime(2)`). `nsec` is in `0..1_000_000_000` for valid times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: i64,
}

impl Timespec {
    /// Builds a time from seconds and nanoseconds.
    pub const fn new(sec: i64, nsec: i64) -> Self {
        Self { sec, nsec }
    }
}

/// Source of the realtime clock, provided by the kernel; used for atime/mtime/ctime/btime.
pub trait Clock: Send + Sync {
    /// Current `CLOCK_REALTIME`.
    fn now(&self) -> Timespec;
}
