//! The thread entry points that wasi-libc leaves out of its single-threaded build, with the
//! answers Rust's std expects from a platform without threads: creating a thread fails with
//! ENOTSUP (std reports `io::ErrorKind::Unsupported`, and rayon then runs its pool on the
//! calling thread); joining or detaching a thread that cannot exist fails with ESRCH.
//!
//! scripts/install-toolchain.sh compiles this with the guest compiler into a static library that
//! also bundles wasi-libc's `libc.a`, and installs the result as the guest sysroot's `libc.a`, so
//! every guest build links it without extra flags. Mutexes, condition variables, thread-specific
//! keys and thread attributes come from wasi-libc itself.
#![no_core]
#![feature(no_core, lang_items)]
#![crate_type = "staticlib"]
#![allow(internal_features)]

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}

/// WASI's errno for "not supported".
const ENOTSUP: i32 = 58;
/// WASI's errno for "no such process" (here: no such thread).
const ESRCH: i32 = 71;

#[no_mangle]
pub extern "C" fn pthread_create(
    _thread: *mut u8,
    _attributes: *const u8,
    _start: *const u8,
    _argument: *mut u8,
) -> i32 {
    ENOTSUP
}

#[no_mangle]
pub extern "C" fn pthread_join(_thread: usize, _result: *mut u8) -> i32 {
    ESRCH
}

#[no_mangle]
pub extern "C" fn pthread_detach(_thread: usize) -> i32 {
    ESRCH
}
