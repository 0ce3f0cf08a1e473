//! The [`Mapper`] trait: how a shadow space changes the host mappings of its address space.

use crate::error::MapperError;
use guest_abi::mapper::MapOp;

/// Applies batches of mapping operations to the host address space of one shadow space. In
/// production this is the U process's mapper thread (batches go through
/// [`guest_abi::mapper::MapperCmd`]; a batch longer than [`guest_abi::mapper::MAX_OPS`] is the
/// implementation's to split); in tests a recording model.
///
/// Contract: operations are applied in order; `Map` has `mmap(MAP_SHARED | MAP_FIXED)`
/// semantics (replaces whatever was mapped there), `Unmap` has `munmap` semantics. The shadow
/// space calls `apply` concurrently from several threads, but never concurrently for
/// operations on the same 2 MiB region, so the order of calls touching one region is the
/// order the space decided. Every op is page aligned and inside the guest user range. `apply`
/// runs with region locks of the space held: it must not call back into the space.
pub trait Mapper: Send + Sync {
    /// Applies `ops` in order, stopping at the first failure.
    ///
    /// # Errors
    /// [`MapperError`] with the index of the failed operation and its errno.
    fn apply(&self, ops: &[MapOp]) -> Result<(), MapperError>;
}

impl<T: Mapper + ?Sized> Mapper for std::sync::Arc<T> {
    fn apply(&self, ops: &[MapOp]) -> Result<(), MapperError> {
        (**self).apply(ops)
    }
}

impl<T: Mapper + ?Sized> Mapper for &T {
    fn apply(&self, ops: &[MapOp]) -> Result<(), MapperError> {
        (**self).apply(ops)
    }
}
