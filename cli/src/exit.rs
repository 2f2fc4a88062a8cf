//! The exit codes scripts can rely on, decided from what went wrong (`Refusal` carries the
//! API's status; a call that got no answer carries the HTTP client's error).

use std::process::ExitCode;

pub use crate::failure::{Refusal, Usage};

/// Done.
pub const OK: u8 = 0;
/// Anything else: an unexpected answer, a file that could not be written.
pub const FAILED: u8 = 1;
/// The command line itself is wrong, or the key is missing (clap's own code for usage
/// errors).
pub const USAGE: u8 = 2;
/// A wrong key, or a key not allowed to do this (401, 403).
pub const UNAUTHORIZED: u8 = 3;
/// No such queue, key or webhook (404, and 400 `unknown_queue`).
pub const NOT_FOUND: u8 = 4;
/// The API refused the change as asked (another 4xx: invalid input, a conflict).
pub const REFUSED: u8 = 5;
/// The coordinator did not answer, timed out or is unavailable (5xx, no connection).
pub const UNAVAILABLE: u8 = 6;

/// The table printed by `anteroom --help`.
pub const HELP: &str = "\
Exit codes:
  0  done
  1  failed (unexpected answer, a file not written)
  2  usage (a flag or argument is wrong, or the key is missing)
  3  unauthorized (a wrong key, or a key not allowed this)
  4  not found (no such queue, key or webhook)
  5  refused (the API refused the change: invalid input, a conflict)
  6  unavailable (the coordinator did not answer, or answered 5xx)";

/// The code for an error.
pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<Refusal>() {
            let code = r.body.as_ref().map(|b| b.error.as_str());
            return match (r.status, code) {
                (401 | 403, _) => UNAUTHORIZED,
                (404, _) | (_, Some("unknown_queue")) => NOT_FOUND,
                (400..=499, _) => REFUSED,
                _ => UNAVAILABLE,
            };
        }
        if cause.downcast_ref::<reqwest::Error>().is_some() {
            return UNAVAILABLE;
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return USAGE;
        }
    }
    FAILED
}

/// Prints the error and turns it into the process's exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, error: &str) -> anyhow::Error {
        let body = Some(shared::wire::ErrorBody { error: error.into(), message: "m".into() });
        Refusal { what: "x".into(), status, body, raw: String::new() }.into()
    }

    #[test]
    fn codes_follow_the_answer() {
        assert_eq!(code(&refusal(401, "unauthorized")), UNAUTHORIZED);
        assert_eq!(code(&refusal(403, "csrf_failed")), UNAUTHORIZED);
        assert_eq!(code(&refusal(404, "queue_not_found")), NOT_FOUND);
        assert_eq!(code(&refusal(400, "unknown_queue")), NOT_FOUND);
        assert_eq!(code(&refusal(400, "invalid_parameter")), REFUSED);
        assert_eq!(code(&refusal(409, "admission_manual")), REFUSED);
        assert_eq!(code(&refusal(503, "unavailable")), UNAVAILABLE);
        assert_eq!(code(&refusal(409, "x").context("while pausing")), REFUSED, "through context");
        assert_eq!(code(&anyhow::Error::new(Usage("no".into()))), USAGE);
        assert_eq!(code(&anyhow::anyhow!("disk full")), FAILED);
    }
}
