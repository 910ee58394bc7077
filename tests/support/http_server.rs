//! A static HTTP file server for tests (being written).
