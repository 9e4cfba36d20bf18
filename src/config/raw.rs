//! The first stage of configuration: the TOML file as serde sees it.
//!
//! Every table denies unknown keys, and every value that validation may
//! complain about is kept `Spanned`, so that the second stage
//! ([`super::validate`]) can name the line and column of a bad value.
//!
//! A job's table is a [`RawTable`]: its keys are the common ones and every
//! job type's own (from the job type registry that validation is given, set
//! for the read by [`with_job_keys`]), each with the [`Shape`] of its
//! value. One table for all types, rather than a tagged enum, because
//! serde's tagged enums lose spans, and a table of every type's keys lets
//! validation say "key `playlist` is not valid for a job of type
//! `now_playing`" instead of a generic error. A key that no type has is
//! refused while parsing, with the nearest valid key suggested.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub accounts: BTreeMap<Spanned<String>, Spanned<RawAccount>>,
    #[serde(default)]
    pub jobs: BTreeMap<Spanned<String>, Spanned<RawJob>>,
}

/// Only `[daemon]`, for the client commands, which need no more: the rest of
/// the file is skipped, not checked (a hundred thousand jobs take seconds).
#[derive(Debug, Deserialize)]
pub struct RawDaemonOnly {
    #[serde(default)]
    pub daemon: RawDaemon,
}

/// `[daemon]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub timezone: Option<Spanned<String>>,
    pub secrets: Option<Spanned<String>>,
    pub socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
    pub notify: Option<Spanned<Vec<String>>>,
}

/// `[accounts.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub provider: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    pub client_secret: Option<Spanned<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub redirect_uri: Option<Spanned<String>>,
    pub grant: Option<Spanned<String>>,
    pub refresh_before_expiry: Option<Spanned<String>>,
    pub authorize_url: Option<Spanned<String>>,
    pub token_url: Option<Spanned<String>>,
    pub api_base_url: Option<Spanned<String>>,
    pub refresh_token_lifetime: Option<Spanned<String>>,
    pub issuer: Option<Spanned<String>>,
    pub revocation_url: Option<Spanned<String>>,
    pub token_endpoint_auth_method: Option<Spanned<String>>,
    pub authorize_params: Option<Spanned<BTreeMap<String, String>>>,
    pub token_params: Option<Spanned<BTreeMap<String, String>>>,
    pub notify: Option<Spanned<Vec<String>>>,
}

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string.
    Text,
    /// A list of strings.
    List,
    /// A whole number.
    Integer,
    /// A table of strings.
    Strings,
    /// Any TOML value (a request body).
    Any,
    /// A table with keys of its own.
    Table(&'static Keys),
}

/// A table's keys, each with the shape of its value, in the order that
/// messages list them.
pub type Keys = [(&'static str, Shape)];

/// One value of a [`RawTable`], as its [`Shape`] says.
#[derive(Debug)]
pub enum RawValue {
    Text(Spanned<String>),
    List(Spanned<Vec<String>>),
    Integer(Spanned<i64>),
    Strings(Spanned<BTreeMap<String, String>>),
    Any(Spanned<toml::Value>),
    Table(Spanned<RawTable>),
}

/// A table whose keys are known only at run time: a job's, or a table in
/// one (a playlist job's `source`).
#[derive(Debug, Default)]
pub struct RawTable {
    values: BTreeMap<&'static str, RawValue>,
}

/// `RawTable::NAME(key)`: the value at `key` if given (and of that shape).
macro_rules! accessors {
    ($($(#[$doc:meta])* $name:ident: $variant:ident($ty:ty);)+) => {
        $(
            $(#[$doc])*
            pub fn $name(&self, key: &str) -> Option<&Spanned<$ty>> {
                match self.values.get(key)? {
                    RawValue::$variant(v) => Some(v),
                    _ => None,
                }
            }
        )+
    };
}

impl RawTable {
    accessors! {
        /// The string at `key`, if given.
        text: Text(String);
        /// The list of strings at `key`, if given.
        list: List(Vec<String>);
        /// The whole number at `key`, if given.
        integer: Integer(i64);
        /// The table of strings at `key`, if given.
        strings: Strings(BTreeMap<String, String>);
        /// Any value at `key`, if given.
        any: Any(toml::Value);
        /// The table at `key`, if given.
        table: Table(RawTable);
    }

    /// Whether `key` is given.
    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Where the value of `key` is, if given.
    pub fn span(&self, key: &str) -> Option<std::ops::Range<usize>> {
        Some(match self.values.get(key)? {
            RawValue::Text(v) => v.span(),
            RawValue::List(v) => v.span(),
            RawValue::Integer(v) => v.span(),
            RawValue::Strings(v) => v.span(),
            RawValue::Any(v) => v.span(),
            RawValue::Table(v) => v.span(),
        })
    }
}

/// `[jobs.NAME]`: a table of the keys set by [`with_job_keys`].
#[derive(Debug)]
pub struct RawJob(pub RawTable);

impl<'de> Deserialize<'de> for RawJob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        JOB_KEYS.with_borrow(|keys| {
            TableSeed {
                name: "RawJob",
                keys,
            }
            .deserialize(deserializer)
            .map(RawJob)
        })
    }
}

/// Runs `read` (the serde read of a file) with `keys` as the keys of a
/// [`RawJob`].
pub fn with_job_keys<R>(keys: &Keys, read: impl FnOnce() -> R) -> R {
    /// Puts back the keys that were there before, even if `read` panics.
    struct Restore(Vec<(&'static str, Shape)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            JOB_KEYS.set(std::mem::take(&mut self.0));
        }
    }
    let _restore = Restore(JOB_KEYS.replace(keys.to_vec()));
    read()
}

thread_local! {
    /// The keys of a [`RawJob`]: serde's `Deserialize` takes no seed, and
    /// the job types are a parameter of validation, so they reach
    /// [`RawJob`] this way, set by [`with_job_keys`].
    static JOB_KEYS: RefCell<Vec<(&'static str, Shape)>> = const { RefCell::new(Vec::new()) };

    /// The keys of the next nested table: `Spanned` takes no seed, so the
    /// keys reach [`Nested`] this way, set just before it is read.
    static NESTED_KEYS: Cell<&'static Keys> = const { Cell::new(&[]) };
}

/// A table inside a [`RawTable`], read with the keys in [`NESTED_KEYS`].
struct Nested(RawTable);

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keys = NESTED_KEYS.with(Cell::get);
        TableSeed {
            name: "RawTable",
            keys,
        }
        .deserialize(deserializer)
        .map(Nested)
    }
}

/// Reads a table of `keys`, refusing any other key as serde's
/// `deny_unknown_fields` does (the same words, at the key).
struct TableSeed<'k> {
    /// What the messages call a value that is not a table: `struct NAME`.
    name: &'static str,
    keys: &'k Keys,
}

impl<'de> DeserializeSeed<'de> for TableSeed<'_> {
    type Value = RawTable;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawTable, D::Error> {
        deserializer.deserialize_struct(self.name, &[], self)
    }
}

impl<'de> Visitor<'de> for TableSeed<'_> {
    type Value = RawTable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {}", self.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTable, A::Error> {
        let mut table = RawTable::default();
        while let Some((key, shape)) = map.next_key_seed(KeySeed(self.keys))? {
            let value = match shape {
                Shape::Text => RawValue::Text(map.next_value()?),
                Shape::List => RawValue::List(map.next_value()?),
                Shape::Integer => RawValue::Integer(map.next_value()?),
                Shape::Strings => RawValue::Strings(map.next_value()?),
                Shape::Any => RawValue::Any(map.next_value()?),
                Shape::Table(keys) => {
                    NESTED_KEYS.with(|k| k.set(keys));
                    let nested: Spanned<Nested> = map.next_value()?;
                    let span = nested.span();
                    RawValue::Table(Spanned::new(span, nested.into_inner().0))
                }
            };
            table.values.insert(key, value);
        }
        Ok(table)
    }
}

/// Reads one key of a table and finds its shape.
struct KeySeed<'k>(&'k Keys);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = (&'static str, Shape);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = (&'static str, Shape);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        if let Some(&(name, shape)) = self.0.iter().find(|(name, _)| *name == key) {
            return Ok((name, shape));
        }
        let names: Vec<String> = self.0.iter().map(|(n, _)| format!("`{n}`")).collect();
        // serde's own words for an unknown field, which messages.rs reads.
        Err(E::custom(match names.as_slice() {
            [] => format!("unknown field `{key}`, there are no fields"),
            [one] => format!("unknown field `{key}`, expected {one}"),
            [a, b] => format!("unknown field `{key}`, expected {a} or {b}"),
            all => format!("unknown field `{key}`, expected one of {}", all.join(", ")),
        }))
    }
}
