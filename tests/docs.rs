//! The shipped docs stay in step with the code: the generated man pages and
//! completions with the CLI, `freshd.toml(5)` with `config/freshd.toml`; the
//! pages render with `man -l` and the bash completion loads.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

#[allow(dead_code)] // its main() is for `cargo run --example gen-docs`
#[path = "../examples/gen-docs.rs"]
mod gen_docs;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn generated_man_pages_and_completions_match_the_cli() {
    let mut stale = Vec::new();
    for (path, text) in gen_docs::generated().unwrap() {
        let file = repo().join("docs").join(&path);
        if std::fs::read(&file).ok().as_deref() != Some(&text[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of step with src/cli.rs: docs/{}; run `cargo run --example gen-docs` and commit",
        stale.join(", docs/")
    );
}

/// The keys `config/freshd.toml` sets or shows commented out: the first key
/// of each `key = …` line, and the keys of the `source = { … }` table.
fn example_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("config/freshd.toml")).unwrap();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches(['#', ' ']);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        keys.insert(key.to_owned());
        if key == "source" {
            let table: toml::Table = toml::from_str(&format!("source = {value}")).unwrap();
            keys.extend(table["source"].as_table().unwrap().keys().cloned());
        }
    }
    keys
}

#[test]
fn freshd_toml_5_documents_every_key_of_the_example_config() {
    let page = std::fs::read_to_string(repo().join("docs/man/freshd.toml.5")).unwrap();
    let keys = example_keys();
    for expected in [
        "timezone",
        "client_id",
        "refresh_token_lifetime",
        "kind",
        "on_change",
    ] {
        assert!(
            keys.contains(expected),
            "the key scan missed {expected}: {keys:?}"
        );
    }
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !page.contains(&format!("\\fB{k}\\fR")))
        .collect();
    assert!(
        missing.is_empty(),
        "config/freshd.toml has keys that docs/man/freshd.toml.5 does not document (as \\fBkey\\fR): {missing:?}"
    );
}

#[test]
fn man_pages_render_with_man_l() {
    if !have("man") {
        common::skip("rendering the man pages needs man (package man-db)");
        return;
    }
    for (page, needle) in [
        ("freshd.1", "EXIT STATUS"),
        ("freshd-status.1", "freshd status"),
        ("freshd.toml.5", "refresh_before_expiry"),
    ] {
        let out = Command::new("man")
            .arg("-l")
            .arg(repo().join("docs/man").join(page))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {page}: {out:?}");
        assert!(
            text.contains(needle),
            "man -l {page} lacks {needle:?}:\n{text}"
        );
        assert!(
            out.stderr.is_empty(),
            "man -l {page} warned: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_bash_completion_loads_and_completes_subcommands() {
    let script = repo().join("docs/completions/freshd.bash");
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1" && complete -p freshd && COMP_WORDS=(freshd st) COMP_CWORD=1 COMP_LINE="freshd st" COMP_POINT=9 && _freshd freshd st freshd && printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("-F _freshd freshd"), "{text}");
    assert!(
        text.lines().any(|l| l == "status"),
        "no `status` completion: {text}"
    );
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
