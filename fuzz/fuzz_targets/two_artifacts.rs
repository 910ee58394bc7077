//! Two artifacts into up to three tarballs: option byte, u16 length of the
//! first archive, the first archive, the second (see rockpack_fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rockpack_fuzz::fuzz_two_artifacts(data);
});
