//! shadow-mmu (in progress).
