//! Large output arrays.
//!
//! A read that returns hundreds of megabytes spends much of its time in the kernel when the output is backed by
//! 4 KiB pages: every first write to a page faults, and each fault zeroes one page and charges it to the process.
//! Backing the buffer with transparent huge pages (2 MiB) cuts the number of faults 512-fold. On Linux systems
//! whose huge-page policy is `madvise` (the common default) a buffer only gets them when asked, which is what
//! [`zeroed`] does; elsewhere it is an ordinary zeroed allocation.

use ndarray::Array2;

/// Buffers at least this large are advised to use huge pages (smaller ones cannot hold an aligned huge page).
pub const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// `len` zero float32 values whose pages are not yet touched (the allocator takes fresh zero pages from the kernel
/// for large sizes), advised to use transparent huge pages when large.
#[must_use]
pub fn zeroed(len: usize) -> Vec<f32> {
    let v = vec![0.0f32; len];
    advise_huge_pages(v.as_ptr().cast(), std::mem::size_of_val(v.as_slice()));
    v
}

/// A zeroed `(rows, cols)` float32 array backed as [`zeroed`] describes.
///
/// # Panics
/// If `rows * cols` overflows `usize` (no such array could be allocated anyway).
#[must_use]
pub fn zeroed_array(rows: usize, cols: usize) -> Array2<f32> {
    let len = rows.checked_mul(cols).expect("output array size overflows usize");
    Array2::from_shape_vec((rows, cols), zeroed(len)).expect("length matches the shape")
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *const u8, bytes: usize) {
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
    let start = (ptr as usize).div_ceil(page) * page;
    let end = (ptr as usize + bytes) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made, page-aligned; MADV_HUGEPAGE only changes how
        // the kernel backs those pages, never their contents. A failure (an old kernel, huge pages disabled) leaves
        // ordinary pages, so the result is ignored.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *const u8, _bytes: usize) {}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zero_and_writable() {
        for len in [0usize, 1, 1000, (HUGE_PAGE_MIN_BYTES / 4) * 3 + 17] {
            let mut v = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
            for (i, x) in v.iter_mut().enumerate() {
                *x = i as f32;
            }
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
        let a = zeroed_array(3, 5);
        assert_eq!(a.shape(), &[3, 5]);
        assert!(a.iter().all(|&x| x == 0.0));
    }
}
