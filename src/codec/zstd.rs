//! Independent zstd frames, one per block (as pzstd writes them), so blocks
//! compress in parallel and any sequence of them is a valid stream.

use std::cell::RefCell;

use bytes::Bytes;

thread_local! {
    static CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

pub fn compress_frame(level: i32, data: &[u8]) -> Bytes {
    CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            let mut c = zstd::bulk::Compressor::new(level).expect("zstd context");
            c.include_checksum(true).expect("zstd checksum flag");
            *slot = Some((level, c));
        }
        let c = &mut slot.as_mut().unwrap().1;
        Bytes::from(c.compress(data).expect("zstd compress"))
    })
}
