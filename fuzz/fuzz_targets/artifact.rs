//! One artifact: option byte, then the archive (see rockpack_fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rockpack_fuzz::fuzz_artifact(data);
});
