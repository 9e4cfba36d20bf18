//! Links the release `freshd` binary with the code its daemon runs placed
//! together, in the order of `link/freshd.order` (written by
//! `link/order.py`). The kernel maps code 64 KiB at a time around each page
//! a program touches, so code spread over the binary makes most of it
//! resident; placed together, what an idle daemon has run takes a few such
//! windows (ARCHITECTURE.md, "Memory").
//!
//! Only lld reads such a file (GNU ld refuses the option and fails the
//! link). rustc links with its own lld on x86_64-unknown-linux-gnu from
//! 1.90 on, but only as the Rust project builds it: a distribution's rustc
//! built against the system's LLVM links with `cc` and GNU ld. So the
//! option is given only when a trial link of an empty program with it
//! succeeds, with this build's rustc, target and flags; otherwise, and with
//! any linker chosen in the configuration, the binary is linked as usual.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=link/freshd.order");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() != Ok("release") || !may_link_with_lld() {
        return;
    }
    let (Some(dir), Some(out)) = (
        std::env::var_os("CARGO_MANIFEST_DIR"),
        std::env::var_os("OUT_DIR"),
    ) else {
        return;
    };
    let order = Path::new(&dir).join("link/freshd.order");
    // A path cargo cannot pass on as it is (not UTF-8) is left out.
    let Some(order_text) = order.to_str().filter(|_| order.exists()) else {
        return;
    };
    // Each option its own argument (`-Xlinker`), not `-Wl,`: that one
    // splits at commas, which a checkout's path may hold.
    let args = [
        "-Xlinker",
        &format!("--symbol-ordering-file={order_text}"),
        // Names of an older build that are gone now are no error.
        "-Xlinker",
        "--no-warn-symbol-ordering",
    ];
    if !links_with(&args, &PathBuf::from(out)) {
        return;
    }
    for arg in args {
        println!("cargo:rustc-link-arg-bin=freshd={arg}");
    }
}

/// Whether this build may link with rustc's own lld: x86_64-unknown-linux-gnu,
/// rustc 1.90 or later, and no linker chosen in the configuration.
fn may_link_with_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || std::env::var_os("RUSTC_LINKER").is_some()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
    {
        return false;
    }
    let Ok(out) = rustc().arg("-vV").output() else {
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

/// Whether an empty program links with `link_args` added, as this build
/// links (its rustc, target and flags), in `out`.
fn links_with(link_args: &[&str], out: &Path) -> bool {
    let source = out.join("link_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = rustc();
    rustc
        .arg("--crate-name=link_probe")
        .arg("--crate-type=bin")
        .arg("--edition=2021")
        .arg("--target")
        .arg(std::env::var("TARGET").unwrap_or_default())
        .arg("-o")
        .arg(out.join("link_probe"));
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    for flag in flags.split('\x1f').filter(|f| !f.is_empty()) {
        rustc.arg(flag);
    }
    for arg in link_args {
        rustc.arg(format!("-Clink-arg={arg}"));
    }
    rustc
        .arg(&source)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rustc() -> Command {
    Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}
