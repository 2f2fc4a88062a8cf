//! The operator's command line as a library: one module per command family (`plan`, ...) and
//! the client of the coordinator's private API they share. `src/main.rs` parses and
//! dispatches; the tests call the same functions.

pub mod admin;
pub mod advance;
pub mod audit;
pub mod exit;
pub mod failure;
pub mod keys;
pub mod message;
pub mod out;
pub mod plan;
pub mod queue;
pub mod rate;
pub mod report;
pub mod switch;
pub mod watch;
