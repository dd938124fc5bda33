//! Layered, typed configuration.
//!
//! A service describes its config as serde structs with `#[serde(deny_unknown_fields)]` and one
//! `Default` impl (the defaults live in one place), then loads it with [`load`] or a [`Loader`].
//! Three layers, each overriding the one before:
//!
//! 1. the defaults: `T::default()`, serialized;
//! 2. an optional TOML file, named explicitly (a path that was given but does not exist is an
//!    error, never silently skipped);
//! 3. environment variables `<PREFIX>_<KEY>`, nested keys joined with `__`:
//!    `TICKFLOW_PULSAR__URL=pulsar://broker:6650` sets `pulsar.url`. The prefix is matched
//!    exactly; the keys after it are lowercased. A value is taken as the exact string (so
//!    `0123` keeps its zero), and a field that wants a number or a bool parses it (`8080`,
//!    `true`, `yes`); a value written `[a, b]` is an array and `{k = 1, j = 2}` a table, their
//!    items parsed by figment's value syntax.
//!
//! Any key no struct knows is rejected with one line naming the key and where it came from
//! (the file, or the exact environment variable), which catches typos like
//! `TICKFLOW_PULSAR__URLL` that would otherwise be ignored.
//!
//! Secrets are [`Secret`]s: never printed, never serialized, and readable from a file. See
//! [`Secret`] for the `__FILE` convention.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tickflow_runtime::config::{Loader, SecretString};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     pulsar_url: String,
//!     api_token: Option<SecretString>,
//! }
//!
//! impl Default for Config {
//!     fn default() -> Self {
//!         Self { pulsar_url: "pulsar://localhost:6650".into(), api_token: None }
//!     }
//! }
//!
//! let cfg: Config = Loader::new("tickflow-example")
//!     .env_prefix("TICKFLOW")
//!     .env_vars([("TICKFLOW_API_TOKEN", "hunter2")]) // tests inject; services read the process env
//!     .load()?;
//! assert_eq!(cfg.api_token.as_ref().map(|t| t.expose().as_str()), Some("hunter2"));
//! assert!(!format!("{cfg:?}").contains("hunter2"));
//! # Ok::<(), tickflow_runtime::config::ConfigError>(())
//! ```

mod secret;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::text::one_line;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use secret::{REDACTED, Secret, SecretFileError, SecretString};

/// Loads a service's config: defaults from `T::default()`, then the TOML `file` if one is given,
/// then the process environment variables starting with `<env_prefix>_`.
///
/// `service` names the service in error messages. This is [`Loader`] with its common settings;
/// use the builder to ignore some variables or to inject the environment in tests.
pub fn load<T>(service: &str, file: Option<&Path>, env_prefix: &str) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    Loader::new(service)
        .file(file)
        .env_prefix(env_prefix)
        .load()
}

/// Builds and runs a config load; see the [module docs](self) for the layers.
#[derive(Debug, Clone)]
pub struct Loader {
    service: String,
    file: Option<PathBuf>,
    env_prefix: String,
    ignored_env: Vec<String>,
    env_vars: Option<Vec<(String, String)>>,
}

impl Loader {
    /// A loader for `service` (used in error messages) with no file, the env prefix `TICKFLOW`,
    /// and the process environment.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            file: None,
            env_prefix: "TICKFLOW".to_owned(),
            ignored_env: Vec::new(),
            env_vars: None,
        }
    }

    /// The TOML file layer; `None` means no file. A path that is given must exist.
    pub fn file(mut self, path: Option<&Path>) -> Self {
        self.file = path.map(Path::to_path_buf);
        self
    }

    /// The environment prefix, without or with its trailing `_`: `TICKFLOW` reads
    /// `TICKFLOW_*`. Must not be empty.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        self.env_prefix = prefix.trim_end_matches('_').to_owned();
        self
    }

    /// Skips an environment variable that starts with the prefix but is not a config key, such
    /// as `TICKFLOW_CONFIG` holding the config file's path for the command line parser.
    pub fn ignore_env(mut self, name: impl Into<String>) -> Self {
        self.ignored_env.push(name.into());
        self
    }

    /// Reads these variables instead of the process environment (for tests, which must not
    /// mutate the environment of a multi-threaded process).
    pub fn env_vars<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env_vars = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Merges the layers and deserializes `T`.
    pub fn load<T>(&self) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Serialize + Default,
    {
        let env = self.env_layer()?;
        let mut figment = Figment::from(Serialized::defaults(T::default()));
        if let Some(path) = &self.file {
            self.check_file(path)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env.clone());
        figment
            .extract_lossy::<T>()
            .map_err(|error| self.describe(error, &env))
    }

    fn check_file(&self, path: &Path) -> Result<(), ConfigError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(ConfigError::FileUnreadable {
                service: self.service.clone(),
                path: path.to_path_buf(),
                reason: "it is not a regular file".to_owned(),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(ConfigError::FileNotFound {
                    service: self.service.clone(),
                    path: path.to_path_buf(),
                })
            }
            Err(error) => Err(ConfigError::FileUnreadable {
                service: self.service.clone(),
                path: path.to_path_buf(),
                reason: error.to_string(),
            }),
        }
    }

    /// Collects the prefixed variables into one nested table.
    fn env_layer(&self) -> Result<EnvLayer, ConfigError> {
        if self.env_prefix.is_empty() {
            return Err(ConfigError::EmptyEnvPrefix {
                service: self.service.clone(),
            });
        }
        let prefix = format!("{}_", self.env_prefix);
        let mut vars: Vec<(String, String)> = match &self.env_vars {
            Some(vars) => vars.clone(),
            None => self.process_env(&prefix)?,
        };
        vars.retain(|(name, _)| name.starts_with(&prefix) && !self.ignored_env.contains(name));
        vars.sort();

        let mut dict = Dict::new();
        for (name, raw) in vars {
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if keys.iter().any(String::is_empty) {
                return Err(ConfigError::BadEnvName {
                    service: self.service.clone(),
                    name,
                });
            }
            insert(&mut dict, &keys, env_value(&raw));
        }
        Ok(EnvLayer {
            prefix: self.env_prefix.clone(),
            dict,
        })
    }

    fn process_env(&self, prefix: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(prefix) || self.ignored_env.iter().any(|i| i == name) {
                continue;
            }
            let value = value
                .into_string()
                .map_err(|_| ConfigError::NonUnicodeEnv {
                    service: self.service.clone(),
                    name: name.to_owned(),
                })?;
            vars.push((name.to_owned(), value));
        }
        Ok(vars)
    }

    /// Turns figment's error into one line naming the key and the layer it came from.
    fn describe(&self, error: figment::Error, env: &EnvLayer) -> ConfigError {
        let more = error.clone().into_iter().count().saturating_sub(1);
        let mut path = error.path.clone();
        let unknown = match &error.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                Some(*expected)
            }
            _ => None,
        };
        let key = path.join(".");
        let origin = if key.is_empty() {
            None
        } else {
            self.origin_of(&key, env)
        }
        .or_else(|| error.metadata.as_ref().and_then(origin_from_metadata));

        match unknown {
            Some(expected) => ConfigError::UnknownKey {
                service: self.service.clone(),
                key,
                origin: origin.unwrap_or(Origin::Unknown),
                expected: expected.join(", "),
                more,
            },
            None => ConfigError::Invalid {
                service: self.service.clone(),
                key: (!key.is_empty()).then_some(key),
                origin,
                message: one_line(&error.kind.to_string()),
                more,
            },
        }
    }

    /// Which layer set `key` last: the environment, else the file; `None` for the defaults.
    ///
    /// A key inside an array (`topics.1`) is found through its array (`topics`).
    fn origin_of(&self, key: &str, env: &EnvLayer) -> Option<Origin> {
        let env_figment = Figment::from(env.clone());
        let file_figment = self
            .file
            .as_ref()
            .map(|path| (path, Figment::from(Toml::file_exact(path))));
        let segments: Vec<&str> = key.split('.').collect();
        for len in (1..=segments.len()).rev() {
            let prefix = segments[..len].join(".");
            // The full key in any form, or a shorter prefix that is not a table.
            let holds = |value: &Value| len == segments.len() || !matches!(value, Value::Dict(..));
            if let Ok(value) = env_figment.find_value(&prefix)
                && holds(&value)
            {
                let mut names: Vec<String> =
                    segments[..len].iter().map(|s| (*s).to_owned()).collect();
                first_leaf(&value, &mut names);
                return Some(Origin::Env(env.var_name(&names)));
            }
            if let Some((path, figment)) = &file_figment
                && let Ok(value) = figment.find_value(&prefix)
                && holds(&value)
            {
                return Some(Origin::File((*path).clone()));
            }
        }
        None
    }
}

/// The environment layer: prefixed variables as one nested table, in the default profile.
#[derive(Debug, Clone)]
struct EnvLayer {
    prefix: String,
    dict: Dict,
}

impl EnvLayer {
    fn var_name(&self, keys: &[String]) -> String {
        let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
        format!("{}_{}", self.prefix, keys.join("__"))
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let prefix = self.prefix.clone();
        Metadata::named(format!("environment variables {}_*", self.prefix)).interpolater(
            move |_: &Profile, keys: &[&str]| {
                let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{prefix}_{}", keys.join("__"))
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// An environment value: arrays and tables are parsed, everything else stays the exact string
/// (so `0123` keeps its zero; numeric and bool fields parse it when extracted).
fn env_value(raw: &str) -> Value {
    let parsed: Value = match raw.parse() {
        Ok(value) => value,
        Err(never) => match never {},
    };
    match parsed {
        Value::Dict(..) | Value::Array(..) => parsed,
        _ => Value::from(raw.to_owned()),
    }
}

fn insert(dict: &mut Dict, keys: &[String], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Extends `segments` down to the first leaf under `value` (a table given through
/// `X__FILE`-style variables names its first variable).
fn first_leaf(value: &Value, segments: &mut Vec<String>) {
    if let Value::Dict(_, dict) = value
        && let Some((key, inner)) = dict.iter().next()
    {
        segments.push(key.clone());
        first_leaf(inner, segments);
    }
}

fn origin_from_metadata(metadata: &Metadata) -> Option<Origin> {
    match &metadata.source {
        Some(figment::Source::File(path)) => Some(Origin::File(path.clone())),
        _ => None,
    }
}

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// Not known (the key is in no layer, e.g. a required key nobody set).
    Unknown,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env var {name}"),
            Self::Unknown => f.write_str("an unknown source"),
        }
    }
}

/// Why a config could not be loaded. Every message is one line that says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file was named but does not exist.
    #[error(
        "{service}: config file {} does not exist; fix the path, or give no file to run on \
         defaults and environment variables",
        path.display()
    )]
    FileNotFound {
        /// The service being configured.
        service: String,
        /// The path that was given.
        path: PathBuf,
    },
    /// A config file was named but cannot be read.
    #[error("{service}: cannot read config file {}: {reason}", path.display())]
    FileUnreadable {
        /// The service being configured.
        service: String,
        /// The path that was given.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// The environment prefix is empty, which would read every variable of the process.
    #[error("{service}: the config environment prefix is empty; use one such as TICKFLOW")]
    EmptyEnvPrefix {
        /// The service being configured.
        service: String,
    },
    /// A prefixed variable's name has an empty key segment (`TICKFLOW_A____B`, `TICKFLOW_`).
    #[error(
        "{service}: environment variable {name} is not a config key: segments between `__` \
         must not be empty (e.g. TICKFLOW_PULSAR__URL)"
    )]
    BadEnvName {
        /// The service being configured.
        service: String,
        /// The variable's name.
        name: String,
    },
    /// A prefixed variable's value is not valid UTF-8.
    #[error("{service}: environment variable {name} is not valid UTF-8")]
    NonUnicodeEnv {
        /// The service being configured.
        service: String,
        /// The variable's name.
        name: String,
    },
    /// A key that no config struct has: usually a typo.
    #[error(
        "{service}: unknown config key `{key}` from {origin}; expected one of: {expected}{}",
        and_more(*more)
    )]
    UnknownKey {
        /// The service being configured.
        service: String,
        /// The full dotted key, e.g. `pulsar.urll`.
        key: String,
        /// Where it was set.
        origin: Origin,
        /// The keys valid at that level, comma-separated.
        expected: String,
        /// How many further problems the config has.
        more: usize,
    },
    /// A value of the wrong type or out of range, a missing required key, an invalid TOML file.
    #[error(
        "{service}: invalid config{}: {message}{}",
        location(key.as_deref(), origin.as_ref()),
        and_more(*more)
    )]
    Invalid {
        /// The service being configured.
        service: String,
        /// The dotted key, if the problem has one.
        key: Option<String>,
        /// Where the value came from, if known.
        origin: Option<Origin>,
        /// What is wrong.
        message: String,
        /// How many further problems the config has.
        more: usize,
    },
}

fn location(key: Option<&str>, origin: Option<&Origin>) -> String {
    match (key, origin) {
        (Some(key), Some(origin)) => format!(" at `{key}` from {origin}"),
        (Some(key), None) => format!(" at `{key}`"),
        (None, Some(origin)) => format!(" in {origin}"),
        (None, None) => String::new(),
    }
}

fn and_more(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {n} more problems)"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct TestConfig {
        name: String,
        port: u16,
        verbose: bool,
        pulsar: PulsarSection,
        token: Option<SecretString>,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct PulsarSection {
        url: String,
        topics: Vec<String>,
    }

    impl Default for TestConfig {
        fn default() -> Self {
            Self {
                name: "tickflow".to_owned(),
                port: 9090,
                verbose: false,
                pulsar: PulsarSection {
                    url: "pulsar://localhost:6650".to_owned(),
                    topics: vec!["ticks".to_owned()],
                },
                token: None,
            }
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithRequiredSecret {
        password: SecretString,
    }

    fn loader() -> Loader {
        Loader::new("tickflow-test")
            .env_prefix("TICKFLOW")
            .env_vars(Vec::<(String, String)>::new())
    }

    fn toml_file(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_only() {
        let cfg: TestConfig = loader().load().unwrap();
        assert_eq!(cfg, TestConfig::default());
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let file = toml_file(
            "name = \"from-file\"\nport = 1000\n[pulsar]\nurl = \"pulsar://file:6650\"\n",
        );
        let cfg: TestConfig = loader()
            .file(Some(file.path()))
            .env_vars([
                ("TICKFLOW_PORT", "2000"),
                ("TICKFLOW_VERBOSE", "true"),
                ("TICKFLOW_PULSAR__TOPICS", "[a, b]"),
                ("OTHER_PORT", "1"),
            ])
            .load()
            .unwrap();
        assert_eq!(cfg.name, "from-file");
        assert_eq!(cfg.port, 2000);
        assert!(cfg.verbose);
        assert_eq!(cfg.pulsar.url, "pulsar://file:6650");
        assert_eq!(cfg.pulsar.topics, ["a", "b"]);
    }

    #[test]
    fn nested_env_keys_use_double_underscore_and_keep_exact_strings() {
        let cfg: TestConfig = loader()
            .env_vars([
                ("TICKFLOW_PULSAR__URL", "pulsar://env:6650"),
                ("TICKFLOW_NAME", "0123"),
            ])
            .load()
            .unwrap();
        assert_eq!(cfg.pulsar.url, "pulsar://env:6650");
        assert_eq!(cfg.name, "0123");
    }

    #[test]
    fn env_tables_are_parsed() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Limits {
            limits: std::collections::BTreeMap<String, u32>,
        }
        let cfg: Limits = loader()
            .env_vars([("TICKFLOW_LIMITS", "{kraken = 5, oanda = 7}")])
            .load()
            .unwrap();
        assert_eq!(cfg.limits.get("kraken"), Some(&5));
        assert_eq!(cfg.limits.get("oanda"), Some(&7));
    }

    #[test]
    fn the_free_function_reads_the_process_environment() {
        // No test sets variables with this prefix, so this is the defaults.
        let cfg: TestConfig = load("tickflow-test", None, "TICKFLOW_RUNTIME_TEST_UNSET").unwrap();
        assert_eq!(cfg, TestConfig::default());
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let err = loader()
            .env_vars([("TICKFLOW_PULSAR__URLL", "pulsar://typo:6650")])
            .load::<TestConfig>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tickflow-test: unknown config key `pulsar.urll` from env var TICKFLOW_PULSAR__URLL; \
             expected one of: url, topics"
        );
        assert!(matches!(err, ConfigError::UnknownKey { .. }));
    }

    #[test]
    fn unknown_file_key_names_the_file() {
        let file = toml_file("port = 1\nprot = 2\n");
        let err = loader()
            .file(Some(file.path()))
            .load::<TestConfig>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "tickflow-test: unknown config key `prot` from file {}; expected one of: name, \
                 port, verbose, pulsar, token",
                file.path().display()
            )
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn ignored_env_vars_are_skipped() {
        let cfg: TestConfig = loader()
            .env_vars([("TICKFLOW_CONFIG", "/etc/tickflow.toml")])
            .ignore_env("TICKFLOW_CONFIG")
            .load()
            .unwrap();
        assert_eq!(cfg, TestConfig::default());
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let err = loader()
            .file(Some(Path::new("/nonexistent/tickflow/ingest.toml")))
            .load::<TestConfig>()
            .unwrap_err();
        assert!(matches!(err, ConfigError::FileNotFound { .. }));
        assert!(
            err.to_string()
                .contains("config file /nonexistent/tickflow/ingest.toml does not exist"),
            "{err}"
        );
    }

    #[test]
    fn invalid_value_names_key_and_variable() {
        let err = loader()
            .env_vars([("TICKFLOW_PORT", "eighty")])
            .load::<TestConfig>()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("tickflow-test: invalid config at `port` from env var TICKFLOW_PORT: "),
            "{msg}"
        );
        assert!(msg.contains("eighty"), "{msg}");
    }

    #[test]
    fn a_bad_array_item_names_the_variable_of_its_array() {
        let err = loader()
            .env_vars([("TICKFLOW_PULSAR__TOPICS", "[a, [b]]")])
            .load::<TestConfig>()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "tickflow-test: invalid config at `pulsar.topics.1` from env var \
                 TICKFLOW_PULSAR__TOPICS: "
            ),
            "{msg}"
        );
    }

    #[test]
    fn a_default_next_to_an_env_value_is_not_blamed_on_the_env() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Section {
            a: String,
            b: SecretString,
        }
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            section: Section,
        }
        let err = loader()
            .env_vars([("TICKFLOW_SECTION__A", "set")])
            .load::<Outer>()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("tickflow-test: invalid config at `section.b`: "),
            "{msg}"
        );
    }

    #[test]
    fn broken_toml_is_one_line_naming_the_file() {
        let file = toml_file("port = = 3\n");
        let err = loader()
            .file(Some(file.path()))
            .load::<TestConfig>()
            .unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains(&file.path().display().to_string()), "{msg}");
    }

    #[test]
    fn empty_env_segments_are_rejected() {
        let err = loader()
            .env_vars([("TICKFLOW_PULSAR____URL", "x")])
            .load::<TestConfig>()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("environment variable TICKFLOW_PULSAR____URL is not a config key"),
            "{err}"
        );
    }

    #[test]
    fn empty_prefix_is_rejected() {
        let err = Loader::new("tickflow-test")
            .env_prefix("_")
            .load::<TestConfig>()
            .unwrap_err();
        assert!(matches!(err, ConfigError::EmptyEnvPrefix { .. }));
    }

    #[test]
    fn secret_from_env_is_not_in_debug_output() {
        let cfg: TestConfig = loader()
            .env_vars([("TICKFLOW_TOKEN", "hunter2-sekrit")])
            .load()
            .unwrap();
        assert_eq!(
            cfg.token.as_ref().map(|t| t.expose().as_str()),
            Some("hunter2-sekrit")
        );
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(REDACTED), "{debug}");
        let dumped = serde_json::to_string(&cfg).unwrap();
        assert!(!dumped.contains("hunter2"), "{dumped}");
    }

    #[test]
    fn secret_from_a_file_named_by_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-file\n").unwrap();
        let cfg: WithRequiredSecret = loader()
            .env_vars([(
                "TICKFLOW_PASSWORD__FILE".to_owned(),
                path.display().to_string(),
            )])
            .load()
            .unwrap();
        assert_eq!(cfg.password.expose(), "from-file");
    }

    #[test]
    fn secret_from_a_file_named_in_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "toml-file-secret").unwrap();
        let file = toml_file(&format!("password = {{ file = {:?} }}\n", path.display()));
        let cfg: WithRequiredSecret = loader().file(Some(file.path())).load().unwrap();
        assert_eq!(cfg.password.expose(), "toml-file-secret");
    }

    #[test]
    fn missing_secret_file_names_the_variable_and_the_path() {
        let err = loader()
            .env_vars([("TICKFLOW_PASSWORD__FILE", "/nonexistent/tickflow/pw")])
            .load::<WithRequiredSecret>()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("env var TICKFLOW_PASSWORD__FILE"), "{msg}");
        assert!(
            msg.contains("cannot read secret file /nonexistent/tickflow/pw"),
            "{msg}"
        );
    }

    #[test]
    fn a_required_secret_nobody_set_is_an_error() {
        let err = loader().load::<WithRequiredSecret>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`password`"), "{msg}");
        assert!(msg.contains("placeholder"), "{msg}");
    }
}
