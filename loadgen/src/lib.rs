//! The load generator of the bench and of `anteroom plan --rehearse`: N keep-alive HTTP/1.1
//! connections (hyper), closed loop or open loop on a schedule (latency counted from each
//! request's scheduled time), bounded by a duration and/or a request count, latency in an HDR
//! histogram.

mod call;
mod outcome;
mod run;

pub use call::{Call, Sender, connect, once, once_ok, send};
pub use outcome::Outcome;
pub use run::{Inspect, MakeCall, Plan, Schedule, run, steady};
