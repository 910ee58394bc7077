//! Real servers on 127.0.0.1 for the network tests (test files that need
//! them include this folder as `mod servers`; the rest of tests/common does
//! not compile them in).
#![allow(dead_code)]

pub mod backend;
pub mod faults;
pub mod http_server;
pub mod s3_server;
