use std::path::Path;

use super::*;
use crate::jobs::http::HttpJob;
use crate::jobs::playlist::{PlaylistJob, PlaylistMode, PlaylistRef, Position};
use crate::jobs::sources::{Lines, Source};

const ACCOUNT: &str = r#"
[accounts.spotify]
provider = "spotify"
client_id = "abc"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        text,
        Path::new("/etc/freshd/config.toml"),
        false,
        crate::jobs::TYPES,
    )
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn minimal_config_gets_presets_and_defaults() {
    let config = parse(&format!(
        "[daemon]\ntimezone = \"Europe/Berlin\"\n{ACCOUNT}"
    ))
    .unwrap();
    let acc = &config.accounts["spotify"];
    assert_eq!(
        acc.token_url.as_deref(),
        Some("https://accounts.spotify.com/api/token")
    );
    assert_eq!(
        acc.api_base_url.as_deref(),
        Some("https://api.spotify.com/v1")
    );
    assert_eq!(acc.refresh_before_expiry, Duration::from_secs(300));
    assert_eq!(acc.grant, Grant::AuthorizationCode);
    assert_eq!(config.daemon.secrets, SecretsMode::Keyring);
    assert_eq!(config.daemon.shutdown_grace, Duration::from_secs(10));
    assert_eq!(config.daemon.timezone_name, "Europe/Berlin");
}

#[test]
fn unknown_key_names_file_line_column_key_and_valid_keys() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.np]\naccount = \"spotify\"\ntype = \"now_playing\"\nevry = \"30s\"\n"
    ));
    assert!(
        err.starts_with(
            "/etc/freshd/config.toml:9:1: jobs.np.evry: unknown key `evry`; did you mean `every`? valid here: `account`, `type`, "
        ),
        "{err}"
    );
}

#[test]
fn unknown_daemon_key() {
    let err = error("[daemon]\ntimezon = \"UTC\"\n");
    assert!(
        err.starts_with("/etc/freshd/config.toml:2:1: daemon.timezon: unknown key `timezon`; did you mean `timezone`? valid here: `timezone`, "),
        "{err}"
    );
}

#[test]
fn wrong_type_is_located() {
    let err = error("[accounts.a]\ntoken_url = \"https://x.example/t\"\nclient_id = 5\n");
    assert_eq!(
        err,
        "/etc/freshd/config.toml:3:13: accounts.a.client_id: expected a string (in quotes), found the integer 5"
    );
}

#[test]
fn bad_duration() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.np]\naccount = \"spotify\"\ntype = \"now_playing\"\nevery = \"soon\"\n"
    ));
    assert_eq!(
        err,
        "/etc/freshd/config.toml:9:9: jobs.np.every: \"soon\" is not a duration; write a duration such as \"30s\", \"5m\" or \"1h 30m\""
    );
}

#[test]
fn bad_cron() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.c]\naccount = \"spotify\"\ntype = \"command\"\ncommand = [\"true\"]\nschedule = \"61 * * * *\"\n"
    ));
    assert!(
        err.starts_with(
            "/etc/freshd/config.toml:10:12: jobs.c.schedule: \"61 * * * *\" is not a cron pattern: minute 61 is out of range 0–59; "
        ),
        "{err}"
    );
    assert!(err.ends_with("write 5 fields (minute hour day-of-month month day-of-week, e.g. \"0 6 * * MON\") or 6 with seconds first"), "{err}");
}

#[test]
fn missing_account() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.c]\naccount = \"todoist\"\ntype = \"command\"\ncommand = [\"true\"]\nevery = \"1h\"\n"
    ));
    assert_eq!(
        err,
        "/etc/freshd/config.toml:7:11: jobs.c.account: no account named \"todoist\"; accounts in this file: spotify"
    );
}

#[test]
fn bad_timezone() {
    let err = error("[daemon]\ntimezone = \"Europe/Berlinn\"\n");
    assert_eq!(
        err,
        "/etc/freshd/config.toml:2:12: daemon.timezone: \"Europe/Berlinn\" is not a known time zone; use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
    );
}

#[test]
fn key_of_another_job_type() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.c]\naccount = \"spotify\"\ntype = \"command\"\ncommand = [\"true\"]\nevery = \"1h\"\nplaylist = \"x\"\n"
    ));
    assert_eq!(
        err,
        "/etc/freshd/config.toml:11:12: jobs.c.playlist: `playlist` is not a key of a `command` job; its keys are account, type, schedule, every, timezone, timeout, command"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = error(&format!(
        "[daemon]\nsecrets = \"vault\"\n{ACCOUNT}\n[jobs.c]\naccount = \"nobody\"\ntype = \"command\"\ncommand = []\nevery = \"0s\"\n"
    ));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].contains(
        "daemon.secrets: \"vault\" is not valid; use one of \"keyring\", \"credentials\""
    ));
    assert!(lines[1].contains("jobs.c.account: no account named \"nobody\""));
    assert!(lines[2].contains("jobs.c.every: \"0s\" is not a positive duration"));
    assert!(lines[3].contains("jobs.c.command: the command is empty"));
}

#[test]
fn literal_secret_needs_private_file() {
    let text =
        "[accounts.a]\nprovider = \"todoist\"\nclient_id = \"x\"\nclient_secret = \"s3cr3t\"\n";
    let err = error(text);
    assert!(err.starts_with("/etc/freshd/config.toml:4:17: accounts.a.client_secret: a literal client secret needs a config file readable by its owner only"), "{err}");
    assert!(!err.contains("s3cr3t"));
    let ok = Config::parse(text, Path::new("c.toml"), true, crate::jobs::TYPES).unwrap();
    assert!(ok.accounts["a"].client_secret.is_some());
}

#[test]
fn spotify_refuses_localhost_redirect() {
    let err = error(
        "[accounts.s]\nprovider = \"spotify\"\nclient_id = \"x\"\nredirect_uri = \"http://localhost:8888/callback\"\n",
    );
    assert!(
        err.contains("accounts.s.redirect_uri: Spotify refuses `localhost`"),
        "{err}"
    );
}

#[test]
fn account_without_provider_needs_token_url() {
    let err = error("[accounts.x]\nclient_id = \"x\"\n");
    assert!(
        err.contains("accounts.x.token_url: missing key `token_url`"),
        "{err}"
    );
}

#[test]
fn toml_syntax_error_is_located() {
    let err = error("[daemon\n");
    assert!(err.starts_with("/etc/freshd/config.toml:1:"), "{err}");
}

#[test]
fn playlist_job_parses_every_source() {
    let text = format!(
        r#"{ACCOUNT}
[jobs.top]
account = "spotify"
type = "playlist"
schedule = "0 6 * * MON"
playlist = "Top"
source = {{ kind = "top_tracks", time_range = "short_term", limit = 50 }}

[jobs.arch]
account = "spotify"
type = "playlist"
schedule = "0 0 1 * *"
playlist = "spotify:playlist:37i9dQZF1DX0XUsuxWHRQd"
source = {{ kind = "playlist", playlist = "Discover Weekly" }}
mode = "append"
position = "top"
max_items = 500

[jobs.s]
account = "spotify"
type = "playlist"
every = "1d"
playlist = "Radio"
source = {{ kind = "search", command = ["radio-now", "--station", "fip"] }}

[jobs.u]
account = "spotify"
type = "playlist"
every = "1d"
playlist = "Fixed"
source = {{ kind = "uris", uris = ["spotify:track:4uLU6hMCjMI75M1A2tKUQC"] }}
"#
    );
    let config = parse(&text).unwrap();
    let arch: &PlaylistJob = config.jobs["arch"].kind.settings().unwrap();
    assert_eq!(
        arch.playlist,
        PlaylistRef::Id("37i9dQZF1DX0XUsuxWHRQd".into())
    );
    assert_eq!(
        arch.mode,
        PlaylistMode::Append {
            position: Position::Top,
            max_items: Some(500)
        }
    );
    let s: &PlaylistJob = config.jobs["s"].kind.settings().unwrap();
    assert_eq!(
        s.source,
        Source::Search {
            lines: Lines::Command(vec!["radio-now".into(), "--station".into(), "fip".into()])
        }
    );
}

#[test]
fn source_with_two_inputs_is_refused() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.s]\naccount = \"spotify\"\ntype = \"playlist\"\nevery = \"1d\"\nplaylist = \"R\"\nsource = {{ kind = \"search\", queries = [\"a - b\"], file = \"x.txt\" }}\n"
    ));
    assert!(
        err.contains("jobs.s.source.queries: give exactly one of `queries` (a list), `file`"),
        "{err}"
    );
}

#[test]
fn now_playing_refuses_schedule() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.np]\naccount = \"spotify\"\ntype = \"now_playing\"\nschedule = \"* * * * *\"\n"
    ));
    assert!(
        err.contains("jobs.np.schedule: a `now_playing` job polls: give `every`"),
        "{err}"
    );
}

#[test]
fn example_configs_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["config/freshd.toml", "config/demo.toml"] {
        let path = root.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = Config::parse(&text, &path, true, crate::jobs::TYPES) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn durations_round_trip() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("PT5M").unwrap(), Duration::from_secs(300));
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
    assert_eq!(
        parse_duration(&format_duration(Duration::from_secs(93784))).unwrap(),
        Duration::from_secs(93784)
    );
}

#[test]
fn urls_are_kept_exactly_as_written() {
    let config = parse(
        "[accounts.a]\nclient_id = \"id\"\ntoken_url = \"https://x.example/oauth/token/\"\nauthorize_url = \"https://x.example/auth/\"\napi_base_url = \"https://api.x.example/v1/\"\n",
    )
    .unwrap();
    let acc = &config.accounts["a"];
    assert_eq!(
        acc.token_url.as_deref(),
        Some("https://x.example/oauth/token/")
    );
    assert_eq!(
        acc.authorize_url.as_deref(),
        Some("https://x.example/auth/")
    );
    // A base for paths that start with '/': joined without "//".
    assert_eq!(
        acc.api_base_url.as_deref(),
        Some("https://api.x.example/v1")
    );
}

#[test]
fn client_authentication_defaults_and_presets() {
    let config = parse(&format!(
        "{ACCOUNT}\n[accounts.todo]\nprovider = \"todoist\"\nclient_id = \"t\"\n[accounts.own]\ntoken_url = \"https://x.example/t\"\nclient_id = \"o\"\n[accounts.post]\ntoken_url = \"https://x.example/t\"\nclient_id = \"p\"\ntoken_endpoint_auth_method = \"client_secret_post\"\n"
    ))
    .unwrap();
    let method = |name: &str, secret: bool| config.accounts[name].auth_method(secret);
    assert_eq!(method("spotify", true), AuthMethod::ClientSecretBasic);
    assert_eq!(method("todo", true), AuthMethod::ClientSecretPost);
    assert_eq!(method("own", true), AuthMethod::ClientSecretBasic);
    // Without a secret, a preset or default means a public client.
    assert_eq!(method("spotify", false), AuthMethod::None);
    assert_eq!(method("own", false), AuthMethod::None);
    // What is written is what is used.
    assert_eq!(method("post", false), AuthMethod::ClientSecretPost);
    let err = error(
        "[accounts.a]\ntoken_url = \"https://x.example/t\"\nclient_id = \"id\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n",
    );
    assert_eq!(
        err,
        "/etc/freshd/config.toml:4:30: accounts.a.token_endpoint_auth_method: \"private_key_jwt\" is not valid; use one of \"client_secret_basic\", \"client_secret_post\", \"none\""
    );
}

#[test]
fn extra_parameters_are_read_and_reserved_names_refused() {
    let config = parse(
        "[accounts.g]\nissuer = \"https://accounts.example.com\"\nclient_id = \"id\"\nauthorize_params = { access_type = \"offline\" }\ntoken_params = { audience = \"https://api.example.com\" }\n",
    )
    .unwrap();
    let acc = &config.accounts["g"];
    assert_eq!(acc.token_url, None);
    assert_eq!(acc.issuer.as_deref(), Some("https://accounts.example.com"));
    assert_eq!(acc.authorize_params["access_type"], "offline");
    assert_eq!(acc.token_params["audience"], "https://api.example.com");
    let err = error(
        "[accounts.g]\ntoken_url = \"https://x.example/t\"\nclient_id = \"id\"\nauthorize_params = { scope = \"all\" }\ntoken_params = { grant_type = \"password\" }\n",
    );
    assert_eq!(
        err,
        "/etc/freshd/config.toml:4:20: accounts.g.authorize_params: `scope` cannot be set here: list the scopes in `scopes`\n/etc/freshd/config.toml:5:16: accounts.g.token_params: `grant_type` cannot be set here: freshd sets it itself"
    );
}

#[test]
fn issuer_is_a_plain_url_and_token_url_or_issuer_is_needed() {
    let err = error("[accounts.g]\nissuer = \"https://x.example/?tenant=1\"\nclient_id = \"id\"\n");
    assert_eq!(
        err,
        "/etc/freshd/config.toml:2:10: accounts.g.issuer: \"https://x.example/?tenant=1\" has a query or fragment; an issuer is a plain URL such as \"https://login.example.com\" (RFC 8414 §2)"
    );
    let err = error("[accounts.g]\nclient_id = \"id\"\n");
    assert!(err.contains("`issuer` to discover them"), "{err}");
}

#[test]
fn reload_notices_changes_of_the_standard_keys() {
    let base = "[accounts.a]\nissuer = \"https://i.example\"\nclient_id = \"id\"\n";
    let a = parse(base).unwrap().accounts["a"].clone();
    for extra in [
        "token_endpoint_auth_method = \"client_secret_post\"\n",
        "authorize_params = { prompt = \"login\" }\n",
        "token_params = { resource = \"https://r.example\" }\n",
        "revocation_url = \"https://i.example/revoke\"\n",
    ] {
        let b = parse(&format!("{base}{extra}")).unwrap().accounts["a"].clone();
        assert!(!a.same_as(&b), "{extra}");
        assert!(b.same_as(&b.clone()), "{extra}");
    }
    let b = parse(&base.replace("i.example", "j.example"))
        .unwrap()
        .accounts["a"]
        .clone();
    assert!(!a.same_as(&b));
}

#[test]
fn the_readme_provider_examples_are_valid() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Providers")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Providers section");
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(
        blocks.len(),
        5,
        "Spotify, Todoist, Google-style, OIDC, long-lived tokens"
    );
    let mut methods = Vec::new();
    for block in blocks {
        let config = Config::parse(block, Path::new("/README.md"), true, crate::jobs::TYPES)
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        let acc = config.accounts.values().next().unwrap();
        methods.push((acc.name.clone(), acc.auth_method(true)));
    }
    assert_eq!(
        methods,
        [
            ("spotify".to_owned(), AuthMethod::ClientSecretBasic),
            ("todoist".to_owned(), AuthMethod::ClientSecretPost),
            ("google".to_owned(), AuthMethod::ClientSecretBasic),
            ("work".to_owned(), AuthMethod::ClientSecretBasic),
            ("github".to_owned(), AuthMethod::ClientSecretBasic),
        ]
    );
}

#[test]
fn http_max_size_has_a_default_and_takes_units() {
    use validate::parse_size;
    assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
    assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
    assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
    assert!(
        parse_size("0B")
            .unwrap_err()
            .contains("not a positive size")
    );
    assert!(parse_size("lots").unwrap_err().contains("e.g. \"16MiB\""));
    assert!(parse_size("16").is_err(), "a unit is required");
    let job = |extra: &str| {
        format!(
            "{ACCOUNT}\n[jobs.h]\naccount = \"spotify\"\ntype = \"http\"\npath = \"/me\"\nevery = \"1h\"\n{extra}"
        )
    };
    let config = parse(&job("")).unwrap();
    let h: &HttpJob = config.jobs["h"].kind.settings().expect("an http job");
    assert_eq!(h.max_size, 16 << 20);
    let err = error(&job("max_size = \"big\""));
    assert!(
        err.contains("jobs.h.max_size: \"big\" is not a size"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_names_the_key_and_what_is_expected() {
    let err = error(&format!(
        "{ACCOUNT}\n[jobs.now-playing]\naccount = \"spotify\"\ntype = \"now_playing\"\nevery = 30\n"
    ));
    assert_eq!(
        err,
        "/etc/freshd/config.toml:9:9: jobs.now-playing.every: expected a duration such as \"30s\", \"5m\" or \"1h 30m\" (in quotes), found the integer 30"
    );
    let err = error(
        "[accounts.a]\ntoken_url = \"https://x.example/t\"\nclient_id = \"x\"\nscopes = \"x\"\n",
    );
    assert_eq!(
        err,
        "/etc/freshd/config.toml:4:10: accounts.a.scopes: expected a list such as [\"a\", \"b\"], found the string \"x\""
    );
}

#[test]
fn an_unknown_top_level_key_suggests_the_nearest() {
    let err = error("[job.x]\naccount = \"a\"\n");
    assert!(
        err.starts_with(
            "/etc/freshd/config.toml:1:2: job: unknown key `job`; did you mean `jobs`?"
        ),
        "{err}"
    );
}

#[test]
fn check_warns_about_placeholders_and_an_empty_config() {
    let example = parse(&std::fs::read_to_string("config/freshd.toml").unwrap()).unwrap();
    let warnings = example.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("accounts.spotify.client_id is the example's placeholder")),
        "{warnings:?}"
    );
    assert_eq!(
        parse("").unwrap().warnings(),
        vec!["the config has no accounts and no jobs, so freshd has nothing to do; add an [accounts.NAME] table (`man freshd.toml` lists every key)".to_owned()]
    );
    assert!(parse(ACCOUNT).unwrap().warnings().is_empty());
}

/// Each field of an account, changed on its own, makes it another account
/// for a reload (all but `notify`, which keeps the tokens). The destructuring
/// lists every field, so a new field does not compile until it is added
/// here: a field can no longer escape the comparison unnoticed.
#[test]
fn reload_notices_a_change_of_any_account_field() {
    let text = "[accounts.a]\nprovider = \"spotify\"\nclient_id = \"id\"\nclient_secret = \"s\"\n";
    let a = (*Config::parse(text, Path::new("/c.toml"), true, crate::jobs::TYPES)
        .unwrap()
        .accounts["a"])
        .clone();
    let Account {
        name: _,
        provider: _,
        client_id: _,
        client_secret: _,
        scopes: _,
        redirect_uri: _,
        grant: _,
        refresh_before_expiry: _,
        authorize_url: _,
        token_url: _,
        revocation_url: _,
        issuer: _,
        api_base_url: _,
        refresh_token_lifetime: _,
        token_endpoint_auth_method: _,
        authorize_params: _,
        token_params: _,
        notify: _,
    } = &a;
    fn other() -> Option<String> {
        Some("https://other.example".to_owned())
    }
    type Change = fn(&mut Account);
    let changes: Vec<(&str, Change)> = vec![
        ("name", (|a| a.name.push('2'))),
        ("provider", (|a| a.provider = Some(Provider::Todoist))),
        ("client_id", (|a| a.client_id.push('2'))),
        (
            "client_secret",
            (|a| a.client_secret = Some(secrecy::SecretString::from("t").into())),
        ),
        ("scopes", (|a| a.scopes.push("x".into()))),
        ("redirect_uri", (|a| a.redirect_uri = other())),
        ("grant", (|a| a.grant = Grant::ClientCredentials)),
        ("refresh_before_expiry", (|a| a.refresh_before_expiry *= 2)),
        ("authorize_url", (|a| a.authorize_url = other())),
        ("token_url", (|a| a.token_url = other())),
        ("revocation_url", (|a| a.revocation_url = other())),
        ("issuer", (|a| a.issuer = other())),
        ("api_base_url", (|a| a.api_base_url = other())),
        (
            "refresh_token_lifetime",
            (|a| a.refresh_token_lifetime = None),
        ),
        (
            "token_endpoint_auth_method",
            (|a| a.token_endpoint_auth_method = Some(AuthMethod::None)),
        ),
        (
            "authorize_params",
            (|a| {
                a.authorize_params.insert("prompt".into(), "login".into());
            }),
        ),
        (
            "token_params",
            (|a| {
                a.token_params.insert("resource".into(), "r".into());
            }),
        ),
    ];
    assert_eq!(changes.len(), 17, "every field but notify");
    for (field, change) in &changes {
        let mut b = a.clone();
        change(&mut b);
        assert!(!a.same_as(&b), "a change of {field} went unnoticed");
        assert_ne!(a, b, "{field}");
    }
    let told = Account {
        notify: Some(vec!["/bin/true".into()]),
        ..a.clone()
    };
    assert!(a.same_as(&told), "changing notify keeps the tokens");
    assert!(a.same_as(&a.clone()));
}

#[test]
fn a_client_secret_never_shows_in_debug() {
    let text =
        "[accounts.a]\nprovider = \"spotify\"\nclient_id = \"id\"\nclient_secret = \"hunter2\"\n";
    let config = Config::parse(text, Path::new("/c.toml"), true, crate::jobs::TYPES).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("ClientSecret([REDACTED])"), "{shown}");
}

#[test]
fn the_registry_gives_each_key_one_shape_and_each_type_one_name() {
    use crate::jobs::TYPES;
    let names: std::collections::BTreeSet<&str> = TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names.len(), TYPES.len(), "two job types share a name");
    let keys = validate::job_keys(TYPES);
    for t in TYPES {
        for (key, shape) in t.keys {
            let (_, known) = keys.iter().find(|(k, _)| k == key).unwrap();
            assert_eq!(known, shape, "{key} of {} has two shapes", t.name);
        }
    }
    assert_eq!(
        error(&format!(
            "{ACCOUNT}[jobs.x]\naccount = \"spotify\"\nevery = \"1h\"\n"
        )),
        format!(
            "/etc/freshd/config.toml:5:1: jobs.x.type: missing key `type`; use one of {}",
            quoted_list(&TYPES.iter().map(|t| t.name).collect::<Vec<_>>())
        )
    );
}

#[test]
fn jobs_compare_by_type_and_settings() {
    let job = |extra: &str| {
        let text = format!("{ACCOUNT}[jobs.x]\naccount = \"spotify\"\nevery = \"1h\"\n{extra}");
        parse(&text).unwrap().jobs["x"].kind.clone()
    };
    let command = job("type = \"command\"\ncommand = [\"a\"]\n");
    assert_eq!(command, job("type = \"command\"\ncommand = [\"a\"]\n"));
    assert_ne!(command, job("type = \"command\"\ncommand = [\"b\"]\n"));
    assert_ne!(command, job("type = \"http\"\npath = \"/a\"\n"));
    assert_eq!(command.type_name(), "command");
}
