use std::os::unix::fs::PermissionsExt;

use super::*;

const ACCOUNT: &str = "spotify";

/// A credentials directory, a state directory and a store over both.
struct Dirs {
    creds: tempfile::TempDir,
    state: tempfile::TempDir,
    store: CredentialsStore,
}

impl Dirs {
    fn new() -> Dirs {
        let creds = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let store = CredentialsStore::new(Some(creds.path().to_owned()), state.path().to_owned());
        Dirs {
            creds,
            state,
            store,
        }
    }

    /// What `LoadCredentialEncrypted=` would put in place at a start.
    fn credential(&self, token: &str) {
        std::fs::write(
            self.creds.path().join("spotify.refresh_token"),
            format!("{token}\n"),
        )
        .unwrap();
    }

    fn rotate(&self, token: &str) {
        self.store
            .set(
                ACCOUNT,
                SecretKind::RefreshToken,
                &SecretString::from(token),
            )
            .unwrap();
    }

    fn read(&self) -> Option<String> {
        self.store
            .get(ACCOUNT, SecretKind::RefreshToken)
            .unwrap()
            .map(|t| t.expose_secret().to_owned())
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.state.path().join(name)
    }
}

#[test]
fn rotated_token_is_preferred_and_private() {
    let dirs = Dirs::new();
    dirs.credential("from-credential");
    assert_eq!(dirs.read().as_deref(), Some("from-credential"));
    dirs.rotate("rotated");
    assert_eq!(dirs.read().as_deref(), Some("rotated"));
    for name in ["spotify.refresh_token", "spotify.refresh_token.origin.json"] {
        let mode = std::fs::metadata(dirs.state_file(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    assert!(
        dirs.store
            .get("other", SecretKind::RefreshToken)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        dirs.store
            .set(ACCOUNT, SecretKind::ClientSecret, &SecretString::from("x")),
        Err(SecretError::ReadOnly { .. })
    ));
}

#[test]
fn origin_records_the_credential_fingerprint_not_the_token() {
    let dirs = Dirs::new();
    dirs.credential("from-credential");
    dirs.rotate("rotated");
    let origin =
        std::fs::read_to_string(dirs.state_file("spotify.refresh_token.origin.json")).unwrap();
    let want = fingerprint(&SecretString::from("from-credential"));
    assert!(origin.contains(&want), "{origin}");
    assert!(!origin.contains("from-credential") && !origin.contains("rotated"));
}

#[test]
fn credential_imported_after_a_rotation_wins_over_the_old_copy() {
    let dirs = Dirs::new();
    dirs.credential("first");
    dirs.rotate("first-rotated");
    assert_eq!(dirs.read().as_deref(), Some("first-rotated"));

    // A person imports a new token through a new credential; the unit restarts.
    dirs.credential("imported");
    assert_eq!(dirs.read().as_deref(), Some("imported"));
    let superseded =
        std::fs::read_to_string(dirs.state_file("spotify.refresh_token.superseded")).unwrap();
    assert_eq!(superseded, "first-rotated", "kept aside, not lost");
    assert!(!dirs.state_file("spotify.refresh_token").exists());
    assert_eq!(dirs.read().as_deref(), Some("imported"), "stable");

    // The new chain's rotation descends from the new credential and wins.
    dirs.rotate("imported-rotated");
    assert_eq!(dirs.read().as_deref(), Some("imported-rotated"));
}

#[test]
fn copy_from_before_origins_wins_once_and_a_later_credential_wins_after() {
    let dirs = Dirs::new();
    dirs.credential("first");
    std::fs::write(dirs.state_file("spotify.refresh_token"), "old-rotated").unwrap();
    assert_eq!(dirs.read().as_deref(), Some("old-rotated"));
    assert!(
        dirs.state_file("spotify.refresh_token.origin.json")
            .exists()
    );
    dirs.credential("imported");
    assert_eq!(dirs.read().as_deref(), Some("imported"));
}

#[test]
fn credential_added_after_rotations_without_one_wins() {
    let dirs = Dirs::new();
    dirs.rotate("rotated-without-credential");
    assert_eq!(dirs.read().as_deref(), Some("rotated-without-credential"));
    dirs.credential("imported");
    assert_eq!(dirs.read().as_deref(), Some("imported"));
}

#[test]
fn rotated_copy_is_used_when_the_credential_is_gone() {
    let dirs = Dirs::new();
    dirs.credential("first");
    dirs.rotate("rotated");
    std::fs::remove_file(dirs.creds.path().join("spotify.refresh_token")).unwrap();
    assert_eq!(dirs.read().as_deref(), Some("rotated"));
}

#[test]
fn same_credential_re_encrypted_does_not_shadow_the_rotation() {
    let dirs = Dirs::new();
    dirs.credential("first");
    dirs.rotate("rotated");
    // The same token again, with other surrounding whitespace.
    std::fs::write(
        dirs.creds.path().join("spotify.refresh_token"),
        "  first\r\n",
    )
    .unwrap();
    assert_eq!(dirs.read().as_deref(), Some("rotated"));
}

/// A stand-in for systemd-creds: `encrypt --name=N - PATH` writes
/// "N:" and its standard input to PATH; `FAIL` in the name fails, and so
/// does every call once a file `NOKEY` is beside it.
fn fake_systemd_creds(dir: &Path) -> PathBuf {
    let program = dir.join("systemd-creds");
    std::fs::write(
        &program,
        "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\n[ -e \"$(dirname \"$0\")/NOKEY\" ] && { echo 'Failed to access host key' >&2; exit 1; }\ncase \"$2\" in *FAIL*) echo 'no host key' >&2; exit 1;; esac\n{ printf '%s:' \"${2#--name=}\"; cat; } > \"$4\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test's fork may hold the script open for writing a moment
    // (ETXTBSY); wait until it runs.
    for _ in 0..100 {
        if Command::new(&program).arg("--version").status().is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    program
}

#[test]
fn import_encrypts_the_token_into_the_credential_the_unit_loads() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_systemd_creds(dir.path());
    let path = dir.path().join("credentials/spotify.refresh_token.cred");
    let import = CredentialImport::at(ACCOUNT, path.clone(), program);
    import.check().unwrap();
    import
        .encrypt(&SecretString::from("imported-token"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "spotify.refresh_token:imported-token"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("credentials"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary or probe file left: {left:?}");
    let done = import.done();
    assert!(done.contains(&path.display().to_string()), "{done}");
    assert!(
        done.contains("LoadCredentialEncrypted=spotify.refresh_token:"),
        "{done}"
    );
    assert!(done.contains("systemctl restart freshd"), "{done}");
}

#[test]
fn import_without_systemd_creds_says_the_exact_command_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let import = CredentialImport::at(
        ACCOUNT,
        dir.path().join("spotify.refresh_token.cred"),
        dir.path().join("no-such-program"),
    );
    let err = import.check().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "systemd-creds encrypt --name=spotify.refresh_token - {}",
            dir.path().join("spotify.refresh_token.cred").display()
        )),
        "{err}"
    );
    assert!(err.contains("nothing was stored"), "{err}");
}

#[test]
fn import_into_an_unwritable_place_is_refused_before_the_token_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_systemd_creds(dir.path());
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let import = CredentialImport::at(ACCOUNT, not_a_dir.join("x.cred"), program);
    let err = import.check().unwrap_err();
    assert!(matches!(err, ImportError::Cannot { .. }), "{err}");
}

#[test]
fn failed_encryption_leaves_the_old_credential_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_systemd_creds(dir.path());
    let path = dir.path().join("FAIL.refresh_token.cred");
    std::fs::write(&path, "old").unwrap();
    let import = CredentialImport::at("FAIL", path.clone(), program);
    let err = import
        .encrypt(&SecretString::from("secret-token"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no host key"), "{err}");
    assert!(!err.contains("secret-token"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn default_import_targets_the_readme_path() {
    let import = CredentialImport::new(ACCOUNT);
    assert_eq!(
        import.path(),
        Path::new("/etc/freshd/credentials/spotify.refresh_token.cred")
    );
    assert_eq!(
        import.command(),
        "systemd-creds encrypt --name=spotify.refresh_token - /etc/freshd/credentials/spotify.refresh_token.cred"
    );
}

#[test]
fn import_without_the_host_key_is_refused_before_the_token_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_systemd_creds(dir.path());
    std::fs::write(dir.path().join("NOKEY"), "").unwrap();
    let path = dir.path().join("credentials/spotify.refresh_token.cred");
    let import = CredentialImport::at(ACCOUNT, path.clone(), program);
    let err = import.check().unwrap_err().to_string();
    assert!(err.contains("Failed to access host key"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("credentials"))
            .unwrap()
            .count(),
        0,
        "no probe left"
    );
}

#[test]
fn delete_removes_the_rotated_copy_and_names_a_credential_it_cannot() {
    let creds = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let store = CredentialsStore::new(Some(creds.path().to_owned()), state.path().to_owned());
    let token = SecretString::from("rotated");
    store.set("a", SecretKind::RefreshToken, &token).unwrap();
    store.delete("a", SecretKind::RefreshToken).unwrap();
    assert!(store.get("a", SecretKind::RefreshToken).unwrap().is_none());
    assert!(!state.path().join("a.refresh_token.origin.json").exists());
    // Deleting what is not there is no error.
    store.delete("a", SecretKind::RefreshToken).unwrap();
    std::fs::write(creds.path().join("b.refresh_token"), "loaded\n").unwrap();
    assert!(matches!(
        store.delete("b", SecretKind::RefreshToken),
        Err(SecretError::CredentialRemains { .. })
    ));
}
