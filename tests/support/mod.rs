//! Real servers on 127.0.0.1 for the network tests.
#![allow(dead_code)]

pub mod faults;
pub mod http_server;
pub mod s3_server;
