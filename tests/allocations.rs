//! The repack hot path allocates nothing per entry: reading a member,
//! flattening it, checking it against the conflict table and writing its
//! header and data into blocks reuse buffers. Counted with a global
//! allocator that tallies calls on this thread, over artifacts of N and 2N
//! members; what grows with N is per-entry allocation. (The conflict table
//! itself grows with the number of paths, amortised: its doublings are
//! the only allocations allowed to scale, a handful per doubling.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rockpack::codec::Block;
use rockpack::fixtures::{plan_of, raw_tar, Member};
use rockpack::plan::Format;
use rockpack::repack::{BlockOut, ConflictPolicy, Mask, Repacker};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations() -> u64 {
    COUNT.with(Cell::get)
}

/// Drops blocks (one allocation per 1 MiB block is not per entry).
struct Discard;

impl BlockOut for Discard {
    fn send(&mut self, block: Block, _format: Format, _mask: Mask) -> rockpack::Result<()> {
        drop(block);
        Ok(())
    }

    fn at_end(&mut self, _tarballs: &Mask, _bytes: &[u8]) -> rockpack::Result<()> {
        Ok(())
    }
}

/// A realistic artifact of `n` entries: directories, small files,
/// executables, symlinks and hardlinks.
fn artifact(n: usize) -> Vec<u8> {
    let mut m = vec![Member::dir("pkg/include"), Member::dir("pkg/lib")];
    for i in 0..n / 4 {
        let dir = format!("pkg/include/sub{:03}", i % 97);
        if i < 97 {
            m.push(Member::dir(dir.clone()));
        }
        m.push(Member::file(
            format!("{dir}/header_{i:06}.h"),
            vec![b'x'; 300 + i % 700],
        ));
        m.push(Member::exe(format!("pkg/lib/tool_{i:06}"), vec![b'y'; 100]));
        m.push(Member::symlink(
            format!("{dir}/alias_{i:06}.h"),
            format!("header_{i:06}.h"),
        ));
        m.push(Member::hardlink(
            format!("pkg/lib/copy_{i:06}"),
            format!("pkg/lib/tool_{i:06}"),
        ));
    }
    raw_tar(Some(&["pkg"]), &m)
}

fn count(n: usize) -> (u64, u64) {
    let tar = artifact(n);
    let plan = plan_of(&["core_lib_generic.tar.zst"], &[&[0]], Format::Gzip);
    let mut repacker = Repacker::new(&plan, ConflictPolicy::Error, Default::default()).unwrap();
    let before = allocations();
    let stats = repacker
        .repack(0, "core_lib_generic.tar.zst", &tar[..], &mut Discard)
        .unwrap();
    (allocations() - before, stats.members)
}

#[test]
fn repacking_allocates_nothing_per_entry() {
    // Warm up lazily initialised state.
    count(400);
    let (small, n_small) = count(4_000);
    let (large, n_large) = count(8_000);
    let per_entry = (large - small) as f64 / (n_large - n_small) as f64;
    eprintln!("{small} allocations for {n_small} members, {large} for {n_large}: {per_entry:.3} per entry");
    assert!(per_entry < 0.05, "{per_entry:.3} allocations per entry");
}
