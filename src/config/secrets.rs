//! Secrets in routes.yaml: `${ENV_NAME}` (anywhere in the value) and `file:/path` (the whole
//! value). A resolved secret never prints: `Debug` and `Serialize` show a redacted form.

pub use crate::secret::{redact_url_passwords, Secret};

/// Resolves secrets while a config is read, noting every value it took from the environment
/// or a file, so that no error message about the config can carry one (`scrub`).
pub struct Resolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    noted: std::cell::RefCell<Vec<String>>,
}

impl<'a> Resolver<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Resolver { env, noted: Default::default() }
    }

    pub fn resolve(&self, raw: &str) -> Result<Secret, String> {
        let noting = |name: &str| {
            let value = (self.env)(name);
            if let Some(v) = &value {
                self.noted.borrow_mut().push(v.clone());
            }
            value
        };
        let secret = resolve(raw, &noting)?;
        if raw.starts_with("file:") {
            self.noted.borrow_mut().push(secret.expose().to_string());
        }
        Ok(secret)
    }

    /// A setting that is not a secret but may differ per deployment (`public_url`): its
    /// `${NAME}` references resolved, nothing noted for redaction.
    pub fn resolve_plain(&self, raw: &str) -> Result<String, String> {
        if raw.starts_with("file:") {
            return Err("takes ${NAME} references, not file:".into());
        }
        resolve(raw, self.env).map(|v| v.expose().to_string())
    }

    /// `text` with every noted secret and every URL password replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let mut noted = self.noted.borrow().clone();
        // Longest first, so a secret containing another is replaced whole.
        noted.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for value in noted.iter().filter(|v| v.chars().count() >= 3) {
            out = out.replace(value.as_str(), "<redacted>");
        }
        redact_url_passwords(&out)
    }
}

/// Resolves `${NAME}` references and `file:` values. `env` looks a name up (the process
/// environment in production, a map in tests).
pub fn resolve(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
    if let Some(path) = raw.strip_prefix("file:") {
        let text = std::fs::read_to_string(path.trim())
            .map_err(|e| format!("cannot read secret file {:?}: {e}", path.trim()))?;
        return Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()));
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
    Ok(Secret::new(out))
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
    fn errors_are_scrubbed_of_resolved_values_and_url_passwords() {
        let env = |name: &str| (name == "PG_PASSWORD").then(|| "hunter2-pg".to_string());
        let r = Resolver::new(&env);
        let url = r.resolve("postgress://app:${PG_PASSWORD}@db.internal/pay").unwrap();
        let message = format!("store: {:?} is neither sqlite://FILE nor postgres://...", url.expose());
        let scrubbed = r.scrub(&message);
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
        assert!(scrubbed.contains("postgress://app:<redacted>@db.internal/pay"), "{scrubbed}");
        assert_eq!(
            redact_url_passwords("see https://u:p@h:1/x and http://h/y"),
            "see https://u:<redacted>@h:1/x and http://h/y"
        );
        assert_eq!(redact_url_passwords("postgres://user@h/db"), "postgres://user@h/db");
    }

    #[test]
    fn never_prints() {
        let s = Secret::new("s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&s).unwrap().contains("s3cret"));
    }
}
