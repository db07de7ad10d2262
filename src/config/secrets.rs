//! Secrets in routes.yaml: `${ENV_NAME}` (anywhere in the value) and `file:/path` (the whole
//! value). A resolved secret never prints: `Debug` and `Serialize` show a redacted form.

use serde::{Serialize, Serializer};
use std::fmt;

/// A credential or key. Only `expose()` gives the value, for signing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What admin output shows: the length only.
    pub fn redacted(&self) -> String {
        format!("<redacted, {} chars>", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// Resolves `${NAME}` references and `file:` values. `env` looks a name up (the process
/// environment in production, a map in tests).
pub fn resolve(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
    if let Some(path) = raw.strip_prefix("file:") {
        let text = std::fs::read_to_string(path.trim())
            .map_err(|e| format!("cannot read secret file {:?}: {e}", path.trim()))?;
        return Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "unterminated ${...} reference".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad environment variable name {name:?}"));
        }
        let value = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Secret(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cret".to_string())
    }

    #[test]
    fn resolves_env_and_files() {
        assert_eq!(resolve("${KEY}", &env).unwrap().expose(), "s3cret");
        assert_eq!(resolve("a-${KEY}-b", &env).unwrap().expose(), "a-s3cret-b");
        assert_eq!(resolve("plain", &env).unwrap().expose(), "plain");
        assert!(resolve("${MISSING}", &env).unwrap_err().contains("MISSING"));
        assert!(resolve("${KEY", &env).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "from-file\n").unwrap();
        let s = resolve(&format!("file:{}", path.display()), &env).unwrap();
        assert_eq!(s.expose(), "from-file");
        assert!(resolve("file:/nonexistent/x", &env).is_err());
    }

    #[test]
    fn never_prints() {
        let s = Secret::new("s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&s).unwrap().contains("s3cret"));
    }
}
