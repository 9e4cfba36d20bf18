//! Writes freshd's generated docs from its clap CLI (`src/cli.rs`): the man
//! pages `freshd(1)` and `freshd-COMMAND(1)` with `clap_mangen`, and the
//! bash, zsh and fish completions with `clap_complete`.
//!
//! ```sh
//! cargo run --example gen-docs            # rewrites docs/man/*.1 and docs/completions/
//! cargo run --example gen-docs -- OUTDIR  # writes OUTDIR/man/… and OUTDIR/completions/…
//! ```
//!
//! The output is committed, so that `cargo deb` packages it without these
//! two crates in the release binary or in a build script; `tests/docs.rs`
//! fails when it is out of step with the CLI. `freshd.toml(5)` is written by
//! hand (`docs/man/freshd.toml.5`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// Every generated file: its path under the output directory and its text.
pub fn generated() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut cmd = freshd::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut files = vec![(PathBuf::from("man/freshd.1"), main_page(&cmd)?)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = clap_mangen::Man::new(sub.clone()).manual("freshd manual");
        let mut page = Vec::new();
        man.render(&mut page)?;
        writeln!(
            page,
            ".SH \"SEE ALSO\"\n\\fBfreshd\\fR(1), \\fBfreshd.toml\\fR(5)"
        )?;
        files.push((PathBuf::from(format!("man/{}", man.get_filename())), page));
    }
    for (shell, name) in [
        (Shell::Bash, "freshd.bash"),
        (Shell::Zsh, "_freshd"),
        (Shell::Fish, "freshd.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "freshd", &mut text);
        files.push((PathBuf::from(format!("completions/{name}")), text));
    }
    Ok(files)
}

/// `freshd(1)`: clap_mangen's sections, then what a man page reader looks
/// for and `--help` leaves out.
fn main_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("freshd manual");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    page.extend_from_slice(DESCRIPTION.as_bytes());
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(MORE.as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

const DESCRIPTION: &str = r#".PP
freshd keeps a refresh token in the Secret Service keyring (or in systemd
credentials), holds the access token in memory, refreshes it ahead of
expiry, and hands it to any script that asks (\fBfreshd token ACCOUNT\fR).
It runs scheduled jobs with the token: \fBnow_playing\fR, \fBplaylist\fR,
\fBhttp\fR and \fBcommand\fR. The configuration is one TOML file, described
in \fBfreshd.toml\fR(5).
.PP
\fBtoken\fR, \fBstatus\fR, \fBrun-job\fR and \fBreload\fR talk to the running
daemon over its control socket.
"#;

const MORE: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success; for \fBstatus\fR, every account is ok.
.TP
\fB1\fR
Failure (for \fBrun-job\fR, the job failed).
.TP
\fB2\fR
Usage: an unknown account, job or option.
.TP
\fB3\fR
\fBstatus\fR only: some account needs a person (state \fBneeds_login\fR or
\fBno_token\fR).
.TP
\fB78\fR
The configuration or the credentials need a person: a bad config, a locked
keyring, a refused refresh token. The units say
\fBRestartPreventExitStatus=78\fR, so systemd does not restart in a loop.
.SH ENVIRONMENT
.TP
\fBFRESHD_CONFIG\fR
The config file when \fB\-\-config\fR is not given.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_RUNTIME_DIR\fR, \fBXDG_STATE_HOME\fR
Where the config, the control socket (\fIfreshd/control.sock\fR) and the
state directory are found for a user.
.TP
\fBRUNTIME_DIRECTORY\fR, \fBSTATE_DIRECTORY\fR, \fBCREDENTIALS_DIRECTORY\fR
Set by systemd for the system unit: the control socket, the state directory
(rotated refresh tokens, history files) and the credentials
\fIACCOUNT.refresh_token\fR and \fIACCOUNT.client_secret\fR.
.TP
\fBNO_COLOR\fR
When set and not empty, log lines on a terminal are not coloured.
.SH FILES
.TP
\fI~/.config/freshd/config.toml\fR
The user's config (user unit).
.TP
\fI/etc/freshd/config.toml\fR
The system unit's config.
.TP
\fI/usr/share/doc/freshd/examples/freshd.toml\fR
The example config, every key commented.
.TP
\fI/usr/lib/systemd/user/freshd.service\fR
The user unit: \fBsystemctl \-\-user enable \-\-now freshd\fR.
.TP
\fI/lib/systemd/system/freshd.service\fR
The hardened system unit (\fBDynamicUser=yes\fR, secrets as encrypted
credentials in \fI/etc/freshd/credentials/\fR).
.TP
\fI$XDG_RUNTIME_DIR/freshd/control.sock\fR, \fI/run/freshd/control.sock\fR
The control socket (user, system), mode 0600.
.TP
\fI~/.local/state/freshd/\fR, \fI/var/lib/freshd/\fR
The state directory (user, system).
.SH EXAMPLES
.nf
freshd check
freshd login spotify
systemctl \-\-user enable \-\-now freshd
freshd status
curl \-H "Authorization: Bearer $(freshd token spotify)" https://api.spotify.com/v1/me
journalctl \-\-user \-u freshd JOB=now\-playing
.fi
.SH "SEE ALSO"
\fBfreshd.toml\fR(5), \fBsystemctl\fR(1), \fBjournalctl\fR(1),
\fBsystemd\-creds\fR(1), \fBsecret\-tool\fR(1),
\fI/usr/share/doc/freshd/README.md\fR
"#;

fn main() -> std::io::Result<()> {
    let out: PathBuf = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"),
        PathBuf::from,
    );
    for (path, text) in generated()? {
        let path = out.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
        println!("{}", path.display());
    }
    Ok(())
}
