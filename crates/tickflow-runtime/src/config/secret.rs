//! [`Secret`]: a value that never shows up in logs, `Debug` output or config dumps.

use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a [`Secret`] prints and serializes as, whatever it holds.
pub const REDACTED: &str = "[redacted]";

/// A secret value: a password, an API key, a token.
///
/// `Debug`, `Display` and `Serialize` all produce [`REDACTED`], so logging a config struct or
/// dumping the effective config never leaks it; [`Secret::expose`] is the one way to read it, and
/// it is easy to find in review.
///
/// # Where a secret comes from
///
/// A `Secret<String>` ([`SecretString`]) deserializes from either form:
///
/// - the value itself: `password = "hunter2"` in TOML, or `TICKFLOW_DB__PASSWORD=hunter2`;
/// - a file holding it: `password = { file = "/run/secrets/db_password" }` in TOML, or
///   `TICKFLOW_DB__PASSWORD__FILE=/run/secrets/db_password` (the `file` sub-key, written with the
///   usual `__` nesting). One trailing newline is stripped, as `echo` and most secret stores
///   write one.
///
/// The literal string `"[redacted]"` is rejected: that is what a dumped config holds in place of
/// a secret, and what the defaults layer of [`crate::config::load`] holds for a secret field, so
/// a required secret that nobody set is an error instead of a silent placeholder. Secrets
/// therefore have no defaults; make a secret that is not always needed an
/// `Option<SecretString>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

/// A secret string, the usual kind of [`Secret`].
pub type SecretString = Secret<String>;

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value. Call this only where the value is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl Secret<String> {
    /// Reads a secret from a file (a Kubernetes or Docker secret mount, say), stripping one
    /// trailing newline (`\n` or `\r\n`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretFileError> {
        let path = path.as_ref();
        let mut value = std::fs::read_to_string(path).map_err(|source| SecretFileError {
            path: path.display().to_string(),
            source,
        })?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        Ok(Self(value))
    }

    /// The secret in the variable `name` or, when that is unset, in the file named by `<name>_FILE`
    /// (how Docker and Kubernetes secrets are mounted): `Ok(None)` when neither is set. The value
    /// of `name` is used as it is; the file's is read as [`Secret::from_file`] does.
    pub fn from_env(name: &str) -> Result<Option<Self>, SecretFileError> {
        if let Ok(value) = std::env::var(name) {
            return Ok(Some(Self(value)));
        }
        match std::env::var_os(format!("{name}_FILE")) {
            Some(path) => Self::from_file(path).map(Some),
            None => Ok(None),
        }
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// A secret file named in the config could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read secret file {path}: {source}; check the path and that this process may read it"
)]
pub struct SecretFileError {
    /// The path that was given.
    pub path: String,
    /// Why reading it failed.
    #[source]
    pub source: std::io::Error,
}

impl<'de> Deserialize<'de> for Secret<String> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn checked<E: de::Error>(value: String) -> Result<Secret<String>, E> {
        if value == REDACTED {
            return Err(E::custom(format!(
                "the secret is the placeholder \"{REDACTED}\" (it was never set, or was copied \
                 from a config dump): give the real value, or `{{ file = \"/path\" }}` in TOML, \
                 or the environment variable with a `__FILE` suffix"
            )));
        }
        Ok(Secret(value))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret string, or a table `{ file = \"/path/to/secret\" }`")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Self::checked(value.to_owned())
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Self::checked(value)
    }

    // A TOML `token = 1234` is a number; as a secret it is its decimal text.
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut file: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "file" if file.is_none() => file = Some(map.next_value()?),
                "file" => return Err(de::Error::duplicate_field("file")),
                other => return Err(de::Error::unknown_field(other, &["file"])),
            }
        }
        let path = file.ok_or_else(|| de::Error::missing_field("file"))?;
        Secret::from_file(&path).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_never_show_the_value() {
        let secret = SecretString::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn deserializes_from_a_string() {
        let secret: SecretString = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn rejects_the_placeholder() {
        let err = serde_json::from_str::<SecretString>("\"[redacted]\"").unwrap_err();
        assert!(err.to_string().contains("placeholder"), "{err}");
    }

    #[test]
    fn reads_a_file_and_strips_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n\n").unwrap();
        let json = serde_json::json!({ "file": path });
        let secret: SecretString = serde_json::from_value(json).unwrap();
        assert_eq!(secret.expose(), "s3cr3t\n");

        std::fs::write(&path, "s3cr3t\r\n").unwrap();
        assert_eq!(SecretString::from_file(&path).unwrap().expose(), "s3cr3t");
    }

    #[test]
    fn a_missing_secret_file_names_the_path() {
        let json = serde_json::json!({ "file": "/nonexistent/tickflow/secret" });
        let err = serde_json::from_value::<SecretString>(json).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read secret file /nonexistent/tickflow/secret"),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_keys_in_the_file_form() {
        let json = serde_json::json!({ "path": "/x" });
        let err = serde_json::from_value::<SecretString>(json).unwrap_err();
        assert!(err.to_string().contains("unknown field `path`"), "{err}");
    }
}
