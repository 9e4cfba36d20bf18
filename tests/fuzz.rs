//! Property-based fuzzing of everything freshd parses from outside: the
//! config file, token endpoint answers and Spotify Web API answers. Each
//! must end in a value or a clear error, never a panic or a hang.
//! `PROPTEST_CASES=20000 cargo test --test fuzz` runs longer (as `.ci/run` does).

use std::path::Path;

use freshd::config::{Config, ConfigError};
use freshd::oauth::endpoint::{RefreshError, classify};
use freshd::spotify::types::{
    Item, Page, PlayHistory, Playing, Playlist, PlaylistEntry, SearchResults, Snapshot, User,
};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../config/freshd.toml");
const DEMO: &str = include_str!("../config/demo.toml");

/// Checks that a config either loads or fails with located problems.
fn config_holds(text: &str) {
    match Config::parse(text, Path::new("fuzz.toml"), true, freshd::jobs::TYPES) {
        Ok(_) => {}
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty());
            for p in problems {
                assert!(p.line >= 1 && p.column >= 1, "{p:?}");
                assert!(!p.message.is_empty() && !p.key.is_empty(), "{p:?}");
            }
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

/// A valid config with bytes deleted, repeated or inserted.
fn mutated() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        0usize..4000,
        0usize..64,
        prop::collection::vec(any::<u8>(), 0..16),
        0u8..3,
    )
        .prop_map(|(demo, at, len, insert, kind)| {
            let base = if demo { DEMO } else { EXAMPLE }.as_bytes();
            let at = at % (base.len() + 1);
            let end = (at + len).min(base.len());
            let mut out = base[..at].to_vec();
            match kind {
                0 => {}                                     // delete [at, end)
                1 => out.extend_from_slice(&insert),        // replace by bytes
                _ => out.extend_from_slice(&base[at..end]), // repeat
            }
            if kind == 2 {
                out.extend_from_slice(&base[at..]);
            } else {
                out.extend_from_slice(&base[end..]);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
}

/// JSON-ish text: real JSON shapes with odd values, and plain noise.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("access_token".to_owned()),
        Just("expires_in".to_owned()),
        Just("refresh_token".to_owned()),
        Just("error".to_owned()),
        Just("error_description".to_owned()),
        Just("items".to_owned()),
        Just("item".to_owned()),
        Just("track".to_owned()),
        Just("uri".to_owned()),
        Just("next".to_owned()),
        Just("progress_ms".to_owned()),
        Just("is_playing".to_owned()),
        Just("tracks".to_owned()),
        Just("duration_ms".to_owned()),
        Just("artists".to_owned()),
        Just("name".to_owned()),
        "[a-z]{1,8}",
    ];
    let value = leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #[test]
    fn any_text_is_a_config_or_located_problems(text in ".{0,400}") {
        config_holds(&text);
    }

    #[test]
    fn mutated_example_configs_are_a_config_or_located_problems(text in mutated()) {
        config_holds(&text);
    }

    #[test]
    fn token_endpoint_answers_are_classified(status in 100u16..600, body in jsonish()) {
        match classify(status, None, &body, &["secret-sent"]) {
            Ok(tokens) => {
                prop_assert_eq!(status, 200);
                let _ = secrecy::ExposeSecret::expose_secret(&tokens.access_token);
            }
            Err(RefreshError::Transient { reason, .. } | RefreshError::Revoked { reason } | RefreshError::Rejected { reason } | RefreshError::Unanswered { reason }) => {
                prop_assert!(!reason.is_empty());
                prop_assert!(!reason.contains("secret-sent"));
            }
        }
    }

    #[test]
    fn web_api_answers_decode_or_fail_cleanly(body in jsonish()) {
        let _ = serde_json::from_slice::<Page<PlaylistEntry>>(&body).map(|p| p.items.into_iter().filter_map(PlaylistEntry::into_item).count());
        let _ = serde_json::from_slice::<Page<Playlist>>(&body);
        let _ = serde_json::from_slice::<Page<PlayHistory>>(&body);
        let _ = serde_json::from_slice::<Page<Item>>(&body).map(|p| p.items.iter().map(Item::artist_names).count());
        let _ = serde_json::from_slice::<Playing>(&body);
        let _ = serde_json::from_slice::<SearchResults>(&body);
        let _ = serde_json::from_slice::<Snapshot>(&body);
        let _ = serde_json::from_slice::<User>(&body);
    }
}
