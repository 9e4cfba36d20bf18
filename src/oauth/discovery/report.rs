//! What `freshd check` says of an account's endpoints.

use std::path::PathBuf;

use super::{Discovery, Endpoints, Origin};
use crate::config::Account;

/// What `freshd check` says of an account's endpoints, and where each came
/// from (the config, a preset, the issuer's metadata, or its cached copy).
/// Reads the cache but never writes it.
pub async fn check_report(
    acc: &Account,
    state_dir: Option<PathBuf>,
    http: &reqwest::Client,
) -> String {
    let mut out = String::new();
    if let Some(issuer) = &acc.issuer {
        out.push_str(&format!("    issuer: {issuer}\n"));
    }
    match Discovery::new(acc, state_dir)
        .read_only()
        .endpoints(http)
        .await
    {
        Ok(e) => report_endpoints(&mut out, acc, &e),
        Err(e) => out.push_str(&format!("    endpoints: unknown: {e}\n")),
    }
    report_client(&mut out, acc);
    out
}

/// Each endpoint's URL and where it came from.
fn report_endpoints(out: &mut String, acc: &Account, e: &Endpoints) {
    if let Some((_, origin)) = &e.metadata {
        out.push_str(&format!("    metadata: {origin}\n"));
    }
    for (what, url) in [
        ("token URL", &e.token_url),
        ("authorize URL", &e.authorize_url),
        ("revocation URL", &e.revocation_url),
    ] {
        let preset = acc.provider.filter(|p| {
            url.as_ref()
                .is_some_and(|(u, _)| u == p.authorize_url() || u == p.token_url())
        });
        out.push_str(&match (url, preset) {
            (Some((u, Origin::Config)), Some(p)) => {
                format!("    {what}: {u} (the {} preset)\n", p.as_str())
            }
            (Some((u, origin)), _) => format!("    {what}: {u} ({origin})\n"),
            (None, _) => format!("    {what}: none\n"),
        });
    }
    if e.iss_required {
        out.push_str("    the issuer sends `iss` in every authorization response (RFC 9207): login requires it\n");
    }
}

/// How the client authenticates, and the extra parameters it sends.
fn report_client(out: &mut String, acc: &Account) {
    let auth = match acc.token_endpoint_auth_method {
        Some(m) => m.as_str().to_owned(),
        None if acc.client_secret.is_some() => acc.auth_method(true).as_str().to_owned(),
        None => format!(
            "{} with a client secret in the store, else none",
            acc.auth_method(true).as_str()
        ),
    };
    out.push_str(&format!("    client authentication: {auth}\n"));
    for (what, params) in [
        ("authorize_params", &acc.authorize_params),
        ("token_params", &acc.token_params),
    ] {
        if !params.is_empty() {
            let names: Vec<&str> = params.keys().map(String::as_str).collect();
            out.push_str(&format!("    {what}: {}\n", names.join(", ")));
        }
    }
}
