//! Configuration: LiteLLM's `config.yaml` layout with `litellm_` renamed `tianji_`.
//!
//! Loading is: YAML -> `serde_json::Value` -> `os.environ/` resolution -> typed structs
//! (errors carry the field path, ignored keys become warnings with their path) -> validation.

pub mod alerting;
pub mod cache;
pub mod callbacks;
mod compat;
pub mod env;
pub mod guardrails;
pub mod jwt;
pub mod limits;
pub mod mcp;
mod model_list;
pub mod passthrough;
pub mod prompts;
pub mod rag;
pub mod reload;
pub mod router;
pub mod search;
mod settings;
pub mod spend;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

pub use env::Env;
pub use model_list::{ModelEntry, TianjiParams};
pub use settings::{
    AliasTarget, GeneralSettings, KeyGenerationSettings, Period, PersonalKeyGeneration,
    RouterSettings, TEAM_MEMBER_ROLES, TeamKeyGeneration, TianjiSettings, USER_ROLES,
};

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    #[error("{path}: environment variable {name} is not set (referenced as os.environ/{name})")]
    UnsetEnv { path: String, name: String },
    #[error("{path}: nesting deeper than 64 levels")]
    TooDeep { path: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub model_list: Vec<ModelEntry>,
    #[serde(default)]
    pub general_settings: GeneralSettings,
    #[serde(default)]
    pub router_settings: RouterSettings,
    #[serde(default, alias = "litellm_settings")]
    pub tianji_settings: TianjiSettings,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, Value>,
    /// Web search tools for `/v1/search/{tool}`.
    #[serde(default)]
    pub search_tools: Vec<self::search::SearchTool>,
    /// LiteLLM's reusable credentials: applied to the model entries that name them while
    /// loading (see `compat.rs`).
    #[serde(default)]
    pub credential_list: Vec<Value>,
    /// Guardrails (`crate::guardrails` builds them).
    #[serde(default)]
    pub guardrails: Vec<self::guardrails::GuardrailEntry>,
    /// Upstream MCP tool servers served at `/mcp` (`crate::mcp`).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, self::mcp::McpServerEntry>,
    /// How MCP tools named in LLM requests are run (`crate::pipeline::mcp_tools`).
    #[serde(default)]
    pub mcp_settings: self::mcp::McpSettings,
    /// The gateway's vector stores and RAG (`crate::rag_api`).
    #[serde(default)]
    pub rag_settings: self::rag::RagSettings,
    /// Prompt templates used by `prompt_id` (`crate::prompts`).
    #[serde(default)]
    pub prompts: Vec<self::prompts::PromptEntry>,
}

/// A parsed config plus what the loader wants the operator to know.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Resolves provider key env vars (`environment_variables` first, then the process).
    pub env: Env,
    /// One line per ignored key, with its path.
    pub warnings: Vec<String>,
    /// The file it was read from (live reloads read it again).
    pub path: Option<std::path::PathBuf>,
    /// The document as read (environment references resolved, LiteLLM's spellings moved): what
    /// a live reload compares, and what `GET /config/yaml` shows once redacted.
    pub raw: Value,
}

impl Loaded {
    /// Read and parse a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut loaded = Self::from_yaml(&text)?;
        loaded.path = Some(path.to_path_buf());
        Ok(loaded)
    }

    /// Parse config text (YAML, or JSON which is YAML).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let mut doc: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?
        };
        if doc.is_null() {
            doc = Value::Object(Default::default());
        }
        if !doc.is_object() {
            return Err(ConfigError::Invalid {
                path: "(top level)".into(),
                message: "expected a map with model_list, general_settings, ...".into(),
            });
        }
        let env = Env::new(env::overlay_from(&doc)?);
        let unset = env.resolve_tree_lenient(&mut doc)?;
        compat::apply(&mut doc)?;

        let mut ignored = Vec::new();
        let mut on_ignored = |p: serde_ignored::Path<'_>| ignored.push(fmt_path(&p));
        let de = serde_ignored::Deserializer::new(&doc, &mut on_ignored);
        let config: Result<Config, _> = serde_path_to_error::deserialize(de);
        let raw = doc.clone();
        let mut config = config.map_err(|e| {
            let path = e.path().to_string().replace(".[", "[");
            match unset.iter().find(|u| u.path == path) {
                Some(u) => ConfigError::UnsetEnv {
                    path,
                    name: u.name.clone(),
                },
                None => ConfigError::Invalid {
                    path,
                    message: e.into_inner().to_string(),
                },
            }
        })?;
        // a guardrail of a kind not implemented: refused, or left out when asked to
        for (i, g) in config.guardrails.iter().enumerate() {
            let kind = &g.tianji_params.guardrail;
            if guardrails::implemented(kind) {
                continue;
            }
            if !config.tianji_settings.ignore_unknown_guardrails {
                return Err(ConfigError::Invalid {
                    path: format!("guardrails[{i}].tianji_params.guardrail"),
                    message: format!(
                        "guardrail kind '{kind}' is not implemented (implemented: {}; set tianji_settings.ignore_unknown_guardrails: true to start without it)",
                        guardrails::KINDS.join(", ")
                    ),
                });
            }
            ignored.push(format!("guardrails[{i}]"));
        }
        let mut warnings: Vec<String> = ignored
            .iter()
            .map(|p| format!("unknown or unsupported config key `{p}` is ignored"))
            .collect();
        // an unset variable only matters where the config uses the key
        for u in unset {
            if !ignored.iter().any(|p| within(&u.path, p)) {
                return Err(ConfigError::UnsetEnv {
                    path: u.path,
                    name: u.name,
                });
            }
            warnings.push(format!(
                "`{}`: environment variable {} is not set (the key is ignored)",
                u.path, u.name
            ));
        }
        if let Some(k) = env.get(env::ENV_MASTER_KEY).filter(|k| !k.is_empty()) {
            config.general_settings.master_key = Some(k);
        }
        if config.general_settings.database_url.is_none() {
            config.general_settings.database_url =
                env.get(env::ENV_DATABASE_URL).filter(|u| !u.is_empty());
        }
        let g = &mut config.general_settings;
        if env
            .get("IAM_TOKEN_DB_AUTH")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
        {
            g.iam_token_db_auth = true;
        }
        if g.iam_token_db_auth && g.database_url.is_none() {
            g.database_url = rds_url(&env);
        }
        g.tianji_jwtauth.resolve_env(&env);
        if g.database_url_read.is_none() {
            g.database_url_read = env
                .get(env::ENV_DATABASE_URL_READ)
                .filter(|u| !u.is_empty());
        }
        validate(&config)?;
        Ok(Loaded {
            config,
            env,
            warnings,
            path: None,
            raw,
        })
    }
}

/// The database URL of `iam_token_db_auth` without `database_url`, as LiteLLM makes it:
/// `DATABASE_HOST`, `DATABASE_PORT` (5432), `DATABASE_USER`, `DATABASE_NAME` (the password is
/// the token, added per connection).
fn rds_url(env: &env::Env) -> Option<String> {
    let var = |n: &str| env.get(n).filter(|v| !v.is_empty());
    let enc = |v: String| {
        percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let host = var("DATABASE_HOST")?;
    let user = enc(var("DATABASE_USER")?);
    let port = var("DATABASE_PORT").unwrap_or_else(|| "5432".into());
    let name = var("DATABASE_NAME").map(enc).unwrap_or_default();
    Some(format!("postgres://{user}@{host}:{port}/{name}"))
}

/// Whether config path `path` is `key` or inside it.
fn within(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

fn fmt_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", fmt_path(parent)),
        P::Map { parent, key } => {
            let head = fmt_path(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            fmt_path(parent)
        }
    }
}

fn positive(v: Option<f64>, path: &str) -> Result<(), ConfigError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(ConfigError::Invalid {
            path: path.into(),
            message: format!("must be a positive number of seconds, got {x}"),
        }),
        _ => Ok(()),
    }
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    mcp::validate(&c.mcp_servers, c.general_settings.mcp_allow_stdio_servers)?;
    c.mcp_settings.validate()?;
    c.rag_settings.validate()?;
    for (i, m) in c.model_list.iter().enumerate() {
        let p = format!("model_list[{i}]");
        if m.model_name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                path: format!("{p}.model_name"),
                message: "must not be empty".into(),
            });
        }
        if m.tianji_params.model.trim().is_empty() {
            return Err(ConfigError::Invalid {
                path: format!("{p}.tianji_params.model"),
                message: "must not be empty (expected provider/model)".into(),
            });
        }
        positive(
            m.tianji_params.timeout,
            &format!("{p}.tianji_params.timeout"),
        )?;
        positive(
            m.tianji_params.stream_timeout,
            &format!("{p}.tianji_params.stream_timeout"),
        )?;
    }
    let g = &c.general_settings;
    if g.enable_jwt_auth {
        g.tianji_jwtauth.validate(g.master_key.is_some())?;
    }
    if g.database_url_read.is_some() && g.database_url.is_none() {
        return Err(ConfigError::Invalid {
            path: "general_settings.database_url_read".into(),
            message: "a read replica needs the primary: set database_url (or DATABASE_URL) too"
                .into(),
        });
    }
    positive(
        g.header_read_timeout,
        "general_settings.header_read_timeout",
    )?;
    positive(
        g.graceful_shutdown_timeout,
        "general_settings.graceful_shutdown_timeout",
    )?;
    for (v, path) in [
        (
            g.request_body_timeout,
            "general_settings.request_body_timeout",
        ),
        (
            g.database_connect_retry_seconds,
            "general_settings.database_connect_retry_seconds",
        ),
        (
            g.redis_connect_retry_seconds,
            "general_settings.redis_connect_retry_seconds",
        ),
    ] {
        if let Some(s) = v
            && !(s.is_finite() && s >= 0.0)
        {
            return Err(ConfigError::Invalid {
                path: path.into(),
                message: format!("must be a number of seconds, 0 or more, got {s}"),
            });
        }
    }
    if let Some(mb) = g.max_request_size_mb
        && !(mb.is_finite() && mb > 0.0)
    {
        return Err(ConfigError::Invalid {
            path: "general_settings.max_request_size_mb".into(),
            message: format!("must be a positive number, got {mb}"),
        });
    }
    if g.ssl_certfile.is_some() != g.ssl_keyfile.is_some() {
        return Err(ConfigError::Invalid {
            path: "general_settings.ssl_certfile".into(),
            message: "ssl_certfile and ssl_keyfile must be set together".into(),
        });
    }
    positive(c.router_settings.timeout, "router_settings.timeout")?;
    positive(
        c.router_settings.stream_timeout,
        "router_settings.stream_timeout",
    )?;
    positive(
        c.tianji_settings.request_timeout,
        "tianji_settings.request_timeout",
    )?;
    check_callbacks(&c.tianji_settings)?;
    let keygen = c.tianji_settings.key_generation_settings.as_ref();
    if let Some((path, role)) = keygen.and_then(KeyGenerationSettings::unknown_role) {
        return Err(ConfigError::Invalid {
            path: format!("tianji_settings.key_generation_settings.{path}"),
            message: format!("unknown role '{role}'"),
        });
    }
    Ok(())
}

/// Every callback name must be implemented unless `ignore_unknown_callbacks`.
fn check_callbacks(t: &TianjiSettings) -> Result<(), ConfigError> {
    if t.ignore_unknown_callbacks {
        return Ok(());
    }
    for (field, names) in [
        ("callbacks", &t.callbacks),
        ("success_callback", &t.success_callback),
        ("failure_callback", &t.failure_callback),
    ] {
        for (i, n) in names.iter().enumerate() {
            if let Some(message) = callbacks::refuse(n) {
                return Err(ConfigError::Invalid {
                    path: format!("tianji_settings.{field}[{i}]"),
                    message,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `y` loaded, with no warning.
    fn quiet(y: &str) -> Loaded {
        let l = Loaded::from_yaml(y).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        l
    }

    #[test]
    fn parses_litellm_layout_and_warns_on_unknown_keys() {
        let y = r#"
model_list:
  - model_name: gpt-4o
    tianji_params:
      model: openai/gpt-4o
      api_key: sk-x
      bogus_param: 1
    model_info: {id: dep-1, anything: goes}
general_settings:
  master_key: sk-1234
  nonsense: true
router_settings:
  model_group_alias: {gpt4: gpt-4o, hidden-one: {model: gpt-4o, hidden: true}}
whatever_section: {}
"#;
        let l = Loaded::from_yaml(y).unwrap();
        assert_eq!(l.config.model_list.len(), 1);
        assert_eq!(l.config.model_list[0].model_info["id"], "dep-1");
        let w = l.warnings.join("\n");
        assert!(
            w.contains("`model_list[0].tianji_params.bogus_param`"),
            "{w}"
        );
        assert!(w.contains("`general_settings.nonsense`"), "{w}");
        assert!(w.contains("`whatever_section`"), "{w}");
        assert_eq!(l.warnings.len(), 3, "{w}");
        assert!(l.config.router_settings.model_group_alias["hidden-one"].hidden());
    }

    #[test]
    fn type_errors_name_the_path() {
        let y = "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, rpm: lots}\n";
        let e = Loaded::from_yaml(y).unwrap_err().to_string();
        assert!(e.contains("model_list[0].tianji_params.rpm"), "{e}");
    }

    #[test]
    fn missing_required_field_and_bad_timeout() {
        let e = Loaded::from_yaml("model_list:\n  - tianji_params: {model: openai/a}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model_name"), "{e}");
        let e = Loaded::from_yaml(
            "model_list:\n  - model_name: a\n    tianji_params: {model: openai/a, timeout: -1}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("model_list[0].tianji_params.timeout"), "{e}");
    }

    #[test]
    fn litellm_names_are_accepted() {
        let y = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\nlitellm_settings: {request_timeout: 5}\n";
        let l = quiet(y);
        assert_eq!(l.config.tianji_settings.request_timeout, Some(5.0));
    }

    #[test]
    fn key_generation_settings_and_unique_aliases() {
        let y = "general_settings: {enforce_unique_team_alias: true}\nlitellm_settings:\n  key_generation_settings:\n    personal_key_generation: {allowed_user_roles: [proxy_admin], required_params: [tags]}\n    team_key_generation: {allowed_team_member_roles: [admin]}\n";
        let l = quiet(y);
        assert!(l.config.general_settings.enforce_unique_team_alias);
        assert!(!l.config.general_settings.enforce_unique_organization_alias);
        let k = l.config.tianji_settings.key_generation_settings.unwrap();
        assert_eq!(k.personal_key_generation.unwrap().required_params, ["tags"]);
        let bad = "tianji_settings:\n  key_generation_settings:\n    team_key_generation: {allowed_team_member_roles: [owner]}\n";
        let e = Loaded::from_yaml(bad).unwrap_err().to_string();
        assert!(
            e.contains("team_key_generation.allowed_team_member_roles") && e.contains("owner"),
            "{e}"
        );
    }

    #[test]
    fn unset_env_matters_only_where_the_key_is_used() {
        let y = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, bogus: os.environ/TIANJI_SURELY_UNSET_G}\n";
        let l = Loaded::from_yaml(y).unwrap();
        let w = l.warnings.join("\n");
        assert!(w.contains("bogus`"), "{w}");
        assert!(w.contains("TIANJI_SURELY_UNSET_G is not set"), "{w}");
        let e = Loaded::from_yaml(
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, rpm: os.environ/TIANJI_SURELY_UNSET_R}\n",
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnsetEnv { path, .. } if path == "model_list[0].litellm_params.rpm"),
            "{e}"
        );
    }

    #[test]
    fn litellm_settings_keys_in_their_documented_places() {
        let y = "litellm_settings: {store_audit_logs: true, allowed_fails: 2, num_retries: 3}\ngeneral_settings: {store_model_in_db: true, strict_config: false}\n";
        let l = quiet(y);
        assert!(l.config.tianji_settings.store_audit_logs);
        assert_eq!(l.config.router_settings.allowed_fails, Some(2));
        assert_eq!(l.config.router_settings.num_retries, Some(3));
    }

    #[test]
    fn invalid_yaml_is_an_error() {
        assert!(matches!(
            Loaded::from_yaml("model_list: [").unwrap_err(),
            ConfigError::Yaml(_)
        ));
        assert!(Loaded::from_yaml("- a\n- b\n").is_err());
    }
}
