//! Error types of the shadow MMU: the crate's one error enum and the mapper's failure report.

/// Failure of a [`crate::Mapper`] batch, as U's mapper thread reports it
/// ([`guest_abi::mapper::MapperDone`]): the operations before `failed_index` were applied, the
/// one at `failed_index` failed with `errno`, the rest were skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mapper operation {failed_index} failed with errno {errno}")]
pub struct MapperError {
    /// Index in the batch of the operation that failed.
    pub failed_index: usize,
    /// Positive Linux errno (`ENOMEM` when `vm.max_map_count` is exhausted, `ESRCH`/`EPIPE`
    /// when the mapper is gone, ...).
    pub errno: i32,
}

/// Errors of [`crate::ShadowSpace`] operations.
///
/// After [`ShadowError::Mapper`] the host mappings of the space are only known to be a subset
/// of what the space recorded (the space keeps recording the batch's ranges as mapped, so a
/// later flush still unmaps them); H should treat it as fatal for the space (kill its U).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShadowError {
    /// The mapper failed to apply a batch.
    #[error("shadow mapper failed: {0}")]
    Mapper(#[from] MapperError),
    /// The guest kept changing a paging-structure entry between our read and our
    /// Accessed/Dirty compare-exchange (or kept flushing a region under a fill) for more
    /// than the configured number of attempts. Retrying later is safe.
    #[error("guest page table changed under the walk {attempts} times in a row")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
    },
}
