//! The policy for calling an API with an account's access token, shared by
//! the Spotify client and the `http` job.

use secrecy::{ExposeSecret, SecretString};

/// `text` with every occurrence of `secret` replaced, for output that a job's
/// program or server produced and freshd logs.
pub fn redact(text: &str, secret: &SecretString) -> String {
    let s = secret.expose_secret();
    if s.len() < 4 {
        return text.to_owned();
    }
    text.replace(s, "[REDACTED]")
}
