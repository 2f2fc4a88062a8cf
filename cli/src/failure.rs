//! Why an operator command failed, as types the exit code is decided from (`exit.rs`):
//! the coordinator's refusal of a call, and a command line that cannot be run as given.

use shared::wire::ErrorBody;

/// The coordinator refused a call: which call, the status and the API's own error (the exit
/// code follows the status: `exit.rs`).
#[derive(Debug)]
pub struct Refusal {
    /// What the command tried ("pause the queue").
    pub what: String,
    /// The HTTP status.
    pub status: u16,
    /// The API's error body, when it sent one.
    pub body: Option<ErrorBody>,
    /// The answer as text, when it was not an error body.
    pub raw: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.body {
            Some(e) => format!("{} ({})", e.message, e.error),
            None => self.raw.clone(),
        };
        let status = reqwest::StatusCode::from_u16(self.status)
            .map_or_else(|_| self.status.to_string(), |s| s.to_string());
        write!(f, "could not {}: the coordinator answered {status}: {why}", self.what)
    }
}

impl std::error::Error for Refusal {}

/// A command line that is well-formed but asks for something it cannot (exit code 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}
