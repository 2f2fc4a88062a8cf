//! The operator's command line as a library: one module per command family (`plan`, ...) and
//! the client of the coordinator's private API they share. `src/main.rs` parses and
//! dispatches; the tests call the same functions.

pub mod admin;
pub mod plan;
