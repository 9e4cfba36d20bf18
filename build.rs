//! Links the release `freshd` binary with the code its daemon runs placed
//! together, in the order of `link/freshd.order` (written by
//! `link/order.py`). The kernel maps code 64 KiB at a time around each page
//! a program touches, so code spread over the binary makes most of it
//! resident; placed together, what an idle daemon has run takes a few such
//! windows (ARCHITECTURE.md, "Memory").
//!
//! Only lld reads such a file, and rustc links with lld on
//! x86_64-unknown-linux-gnu from 1.90 on unless a linker is chosen; with
//! any other linker the binary is linked as usual.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/freshd.order");
    println!("cargo:rerun-if-changed=build.rs");
    if !links_with_lld() || std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = std::path::Path::new(&dir).join("link/freshd.order");
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bin=freshd=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names of an older build that are gone now are no error.
        println!("cargo:rustc-link-arg-bin=freshd=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this build with its own lld: the default linker of
/// x86_64-unknown-linux-gnu from Rust 1.90, when no other is configured.
fn links_with_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || std::env::var_os("RUSTC_LINKER").is_some()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
    {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .lines()
        .find_map(|l| l.strip_prefix("release: 1."))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
