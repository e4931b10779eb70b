//! `os.environ/NAME` resolution.
//!
//! LiteLLM replaces any string value of the config that starts with `os.environ/` by the value of
//! that environment variable. Tianji does the same over the whole document (depth-limited), with
//! two differences that make misconfiguration visible: the `environment_variables` section of the
//! config is consulted before the process environment (so the process environment is never
//! written to), and an unset variable is a startup error naming the config path.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ConfigError;

/// Prefix that marks a value as an environment reference.
pub const ENV_PREFIX: &str = "os.environ/";
/// Overrides `general_settings.master_key`.
pub const ENV_MASTER_KEY: &str = "TIANJI_MASTER_KEY";
/// Used when `general_settings.database_url` is not set.
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// Used when `general_settings.database_url_read` is not set.
pub const ENV_DATABASE_URL_READ: &str = "DATABASE_URL_READ";

const MAX_DEPTH: usize = 64;

/// Where environment values come from: the config's `environment_variables` first, then the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overlay: BTreeMap<String, String>,
}

impl Env {
    pub fn new(overlay: BTreeMap<String, String>) -> Self {
        Self { overlay }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overlay.get(name) {
            return Some(v.clone());
        }
        std::env::var(name).ok()
    }

    /// Resolve one value: `os.environ/NAME` becomes the variable's value, anything else is
    /// returned as is. `path` names the config location for the error.
    pub fn resolve_str(&self, value: &str, path: &str) -> Result<String, ConfigError> {
        match value.strip_prefix(ENV_PREFIX) {
            Some(name) => self.get(name).ok_or_else(|| ConfigError::UnsetEnv {
                path: path.to_string(),
                name: name.to_string(),
            }),
            None => Ok(value.to_string()),
        }
    }

    /// Replace every `os.environ/NAME` string in `doc` (except inside `environment_variables`).
    pub fn resolve_tree(&self, doc: &mut Value) -> Result<(), ConfigError> {
        match self.resolve_tree_lenient(doc)?.into_iter().next() {
            Some(u) => Err(ConfigError::UnsetEnv {
                path: u.path,
                name: u.name,
            }),
            None => Ok(()),
        }
    }

    /// [`Env::resolve_tree`], leaving references to unset variables as they are: they are
    /// returned (an error only where the config uses the key, see `Loaded::from_yaml`).
    pub fn resolve_tree_lenient(&self, doc: &mut Value) -> Result<Vec<UnsetRef>, ConfigError> {
        let mut path = String::new();
        let mut unset = Vec::new();
        self.walk(doc, &mut path, 0, &mut unset)?;
        Ok(unset)
    }

    fn walk(
        &self,
        v: &mut Value,
        path: &mut String,
        depth: usize,
        unset: &mut Vec<UnsetRef>,
    ) -> Result<(), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::TooDeep { path: path.clone() });
        }
        match v {
            Value::String(s) if s.starts_with(ENV_PREFIX) => match self.resolve_str(s, path) {
                Ok(value) => *s = value,
                Err(_) => unset.push(UnsetRef {
                    path: path.clone(),
                    name: s[ENV_PREFIX.len()..].to_string(),
                }),
            },
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item, path, depth + 1, unset)?;
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    if depth == 0 && k == "environment_variables" {
                        continue;
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.walk(item, path, depth + 1, unset)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// An `os.environ/NAME` reference to a variable that is not set, at `path` of the config.
#[derive(Debug, Clone)]
pub struct UnsetRef {
    pub path: String,
    pub name: String,
}

/// Read the `environment_variables` section (scalars are stringified).
pub fn overlay_from(doc: &Value) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let Some(section) = doc.get("environment_variables") else {
        return Ok(out);
    };
    let map = match section {
        Value::Null => return Ok(out),
        Value::Object(m) => m,
        _ => {
            return Err(ConfigError::Invalid {
                path: "environment_variables".into(),
                message: "expected a map of NAME: value".into(),
            });
        }
    };
    for (k, v) in map {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            _ => {
                return Err(ConfigError::Invalid {
                    path: format!("environment_variables.{k}"),
                    message: "expected a scalar value".into(),
                });
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_from_overlay_and_reports_path_of_unset() {
        let env = Env::new(BTreeMap::from([(
            "A_KEY".to_string(),
            "secret".to_string(),
        )]));
        let mut doc = json!({"model_list": [{"tianji_params": {"api_key": "os.environ/A_KEY"}}]});
        env.resolve_tree(&mut doc).unwrap();
        assert_eq!(doc["model_list"][0]["tianji_params"]["api_key"], "secret");

        let mut doc = json!({"model_list": [{"x": 1}, {"tianji_params": {"api_base": "os.environ/TIANJI_SURELY_UNSET_VAR"}}]});
        let err = env.resolve_tree(&mut doc).unwrap_err().to_string();
        assert!(
            err.contains("model_list[1].tianji_params.api_base"),
            "{err}"
        );
        assert!(err.contains("TIANJI_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn environment_variables_section_is_not_resolved() {
        let env = Env::default();
        let mut doc = json!({"environment_variables": {"X": "os.environ/NOPE_NOT_SET"}});
        env.resolve_tree(&mut doc).unwrap();
    }
}
