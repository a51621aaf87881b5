//! Per-instance limits: time per call and memory.

use std::time::Duration;

/// Limits of one module's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleLimits {
    /// Longest a single `process` (or `init`) call may run.
    pub call_timeout: Duration,
    /// Most linear memory one instance may hold, in bytes, over all its memories.
    pub memory_bytes: u64,
}

impl ModuleLimits {
    /// Default time per call.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(100);
    /// Default memory for a component that embeds a language runtime (Python): its interpreter
    /// and heap need room.
    pub const DEFAULT_RUNTIME_MEMORY: u64 = 512 << 20;
    /// Default memory for a compiled (Rust, C) component.
    pub const DEFAULT_COMPILED_MEMORY: u64 = 64 << 20;
}

impl Default for ModuleLimits {
    fn default() -> Self {
        ModuleLimits {
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            memory_bytes: Self::DEFAULT_COMPILED_MEMORY,
        }
    }
}

/// The memory limit was reached: the trap's cause, found again by downcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (the module asked for {requested} bytes)")]
pub struct MemoryLimitReached {
    /// The limit.
    pub limit: u64,
    /// What the instance would have held after the refused growth.
    pub requested: u64,
}

/// Enforces [`ModuleLimits::memory_bytes`] over all memories of an instance; a refused growth
/// traps with [`MemoryLimitReached`] instead of letting the module see an allocation failure.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    in_use: u64,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes.
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, in_use: 0 }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = self.in_use + (desired - current) as u64;
        if requested > self.limit {
            return Err(MemoryLimitReached {
                limit: self.limit,
                requested,
            }
            .into());
        }
        self.in_use = requested;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
