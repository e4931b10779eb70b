//! Model routing: public model name -> deployments of its group -> the one to call.

pub mod balancer;
mod deployment;
pub mod policy;
pub mod region;
pub mod stats;
pub mod stored;
pub mod strategy;
pub mod unserved;
pub mod wildcard;
pub mod wire;

use crate::util::FastMap;
use std::sync::Arc;

pub use deployment::{
    AZURE_API_VERSION, Defaults, Deployment, DeploymentError, Endpoints, timeout_header,
};
pub use unserved::Unserved;

use crate::config::{Config, Env, ModelEntry};
use crate::providers::Catalog;

/// Why a request's model cannot be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(
        "Invalid model name passed in model={0}. Call `/v1/models` to view available models for your key."
    )]
    UnknownModel(String),
    #[error("model={model}: {source}")]
    Deployment {
        model: String,
        #[source]
        source: DeploymentError,
    },
    /// Every deployment of the group is cooling down after failures.
    #[error(
        "No deployments available for selected model, Try again in {retry_after} seconds. Passed model={model}. There are cooldown deployments: {ids:?}"
    )]
    CoolingDown {
        model: String,
        retry_after: u64,
        ids: Vec<String>,
    },
    /// `enable_tag_filtering`: no deployment has the request's tags (nor `default`).
    #[error(
        "No deployments of model={model} match the request tags {tags:?} (and none is tagged 'default')"
    )]
    NoTaggedDeployment { model: String, tags: Vec<String> },
    /// The request's `allowed_model_region` (of its end user or key) has no deployment of the
    /// group (LiteLLM's 429 with the same message).
    #[error(
        "No deployments available for selected model, Passed model={model}. pre-call-checks=True, allowed_model_region={region}"
    )]
    NoRegionDeployment { model: String, region: String },
    /// `enable_pre_call_checks`: the prompt exceeds every deployment's context window.
    #[error(
        "This model's maximum context length is exceeded: the prompt has about {tokens} tokens, more than any deployment of model={model} takes"
    )]
    ContextWindow { model: String, tokens: u64 },
    /// Every deployment's provider is over its `provider_budget_config` limit.
    #[error(
        "No deployments available - crossed budget: Exceeded budget for provider {provider}: {spend} >= {max_budget}"
    )]
    ProviderBudget {
        provider: String,
        spend: f64,
        max_budget: f64,
    },
}

/// Why the config's model list cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("model_list[{index}] {model_name} ({model}): {source}")]
pub struct TableError {
    pub index: usize,
    pub model_name: String,
    /// `tianji_params.model` as configured.
    pub model: String,
    #[source]
    pub source: DeploymentError,
}

/// The deployments of one model group.
pub type Group = Arc<[Arc<Deployment>]>;

/// Environment variables whose presence lets pass-through use a provider without a deployment.
const PASS_THROUGH_ENV: &[(&str, &[&str])] = &[
    ("anthropic", &["ANTHROPIC_API_KEY"]),
    ("openai", &["OPENAI_API_KEY"]),
    ("gemini", &["GEMINI_API_KEY"]),
    (
        "vertex_ai",
        &["VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"],
    ),
    ("bedrock", &["AWS_ACCESS_KEY_ID"]),
    ("cohere", &["COHERE_API_KEY"]),
    ("mistral", &["MISTRAL_API_KEY"]),
    ("azure", &["AZURE_API_BASE"]),
];

/// Why pass-through has no credentials for a provider.
#[derive(Debug, thiserror::Error)]
pub enum PassThroughMissing {
    #[error(
        "no deployment of it marked `use_in_pass_through: true` and no credential in the environment"
    )]
    None,
    #[error("its credentials in the environment are incomplete: {0}")]
    Env(String),
}

/// A wildcard entry of the model list (`model_name: "anthropic/*"`).
pub struct WildcardEntry {
    /// The `model_name` pattern.
    pub pattern: String,
    pub entry: ModelEntry,
    /// The price map's models it serves (listings; found on first use).
    known: std::sync::OnceLock<Vec<String>>,
}

impl WildcardEntry {
    /// The price map's models this route serves, named as clients call them
    /// ([`wildcard::known_models`]).
    pub fn known_models(&self) -> &[String] {
        self.known
            .get_or_init(|| wildcard::known_models(&self.pattern, &self.entry.tianji_params.model))
    }
}

/// Every model the gateway serves.
pub struct ModelTable {
    groups: FastMap<String, Group>,
    /// Sorted most specific first.
    wildcards: Vec<WildcardEntry>,
    aliases: FastMap<String, (String, bool)>,
    /// Concrete deployments derived from wildcard entries, by requested name.
    derived: moka::sync::Cache<String, Group>,
    /// Pass-through deployments built from wildcard entries or the environment, by provider.
    pass_through: moka::sync::Cache<&'static str, Arc<Deployment>>,
    catalog: Arc<Catalog>,
    env: Env,
    defaults: Defaults,
    /// Group names in config order (for listings).
    names: Vec<String>,
    /// `model_info.access_groups`: group -> model names in it.
    access_groups: FastMap<String, Vec<String>>,
    /// Entries not served as configured.
    unserved: Vec<Unserved>,
}

/// The deployments a request may go to.
pub struct Resolved {
    pub group: Group,
}

impl Resolved {
    /// Pick one deployment (uniformly; weighted strategies come with the router settings).
    pub fn pick(&self) -> &Arc<Deployment> {
        let n = self.group.len();
        let i = if n > 1 { fastrand::usize(..n) } else { 0 };
        &self.group[i]
    }

    /// Pick among the deployments `blocked` says nothing about; else the first refusal.
    pub fn pick_allowed<E>(
        &self,
        blocked: impl Fn(&Deployment) -> Option<E>,
    ) -> Result<&Arc<Deployment>, E> {
        let first = self.pick();
        let Some(e) = blocked(first) else {
            return Ok(first);
        };
        let open: Vec<&Arc<Deployment>> =
            self.group.iter().filter(|d| blocked(d).is_none()).collect();
        if open.is_empty() {
            return Err(e);
        }
        Ok(open[fastrand::usize(..open.len())])
    }
}

/// Check a config entry: a literal `provider/model` is built (the deployment returned for
/// exact names, and names with a `*` that take nothing from it), a wildcard one has its provider
/// prefix checked (a provider Tianji does not serve is [`DeploymentError::NotServed`]).
fn check(
    entry: &ModelEntry,
    catalog: &Catalog,
    env: &Env,
    defaults: &Defaults,
) -> Result<Option<Deployment>, DeploymentError> {
    let name = &entry.model_name;
    let params_model = &entry.tianji_params.model;
    if !params_model.contains('*') {
        return Deployment::build(entry, name, params_model, catalog, env, defaults).map(Some);
    }
    if !name.contains('*') {
        return Err(DeploymentError::StarWithoutPattern);
    }
    if let Some((prefix, _)) = params_model.split_once('/')
        && !prefix.contains('*')
    {
        let pm = catalog.parse_model(&params_model.replace('*', "x"))?;
        if let Some(reason) = pm.kind.not_served() {
            return Err(DeploymentError::NotServed(
                pm.kind.name().to_string(),
                Arc::from(reason),
            ));
        }
    }
    Ok(None)
}

impl ModelTable {
    pub fn build(config: &Config, catalog: Arc<Catalog>, env: Env) -> Result<Self, TableError> {
        let secs = |v: Option<f64>| v.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok());
        let mut defaults = Defaults::default();
        if let Some(t) =
            secs(config.router_settings.timeout).or(secs(config.tianji_settings.request_timeout))
        {
            defaults.timeout = t;
        }
        defaults.stream_timeout = secs(config.router_settings.stream_timeout);
        let mut groups: FastMap<String, Vec<Arc<Deployment>>> = FastMap::default();
        let mut wildcards = Vec::new();
        let mut names = Vec::new();
        let mut access_groups: FastMap<String, Vec<String>> = FastMap::default();
        for entry in &config.model_list {
            let groups = entry
                .model_info
                .get("access_groups")
                .and_then(serde_json::Value::as_array);
            for g in groups
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
            {
                let members = access_groups.entry(g.to_string()).or_default();
                if !members.contains(&entry.model_name) {
                    members.push(entry.model_name.clone());
                }
            }
        }
        let strictness = unserved::Strictness::of(config);
        let mut unserved = Vec::new();
        for (index, entry) in config.model_list.iter().enumerate() {
            let name = entry.model_name.clone();
            let built = match check(entry, &catalog, &env, &defaults) {
                Ok(built) => built,
                // a provider Tianji does not serve never loads, whatever the settings
                Err(e @ DeploymentError::NotServed(..)) => {
                    return Err(TableError {
                        index,
                        model_name: name,
                        model: entry.tianji_params.model.clone(),
                        source: e,
                    });
                }
                Err(e) => {
                    unserved.push(strictness.refuses(Unserved {
                        index,
                        model_name: name,
                        model: entry.tianji_params.model.clone(),
                        error: e,
                    })?);
                    continue;
                }
            };
            let d = match built {
                Some(d) if !name.contains('*') => d,
                _ => {
                    wildcards.push(WildcardEntry {
                        pattern: name,
                        entry: entry.clone(),
                        known: std::sync::OnceLock::new(),
                    });
                    continue;
                }
            };
            if !groups.contains_key(&name) {
                names.push(name.clone());
            }
            groups.entry(name).or_default().push(Arc::new(d));
        }
        wildcards.sort_by(|a, b| {
            wildcard::specificity(&b.pattern).cmp(&wildcard::specificity(&a.pattern))
        });
        let aliases = config
            .router_settings
            .model_group_alias
            .iter()
            .map(|(k, v)| (k.clone(), (v.model().to_string(), v.hidden())))
            .collect();
        Ok(Self {
            groups: groups
                .into_iter()
                .map(|(k, v)| (k, Group::from(v)))
                .collect(),
            wildcards,
            aliases,
            derived: moka::sync::Cache::new(10_000),
            pass_through: moka::sync::Cache::new(64),
            catalog,
            env,
            defaults,
            names,
            access_groups,
            unserved,
        })
    }

    /// Entries not served as configured (see [`unserved`]).
    pub fn unserved(&self) -> &[Unserved] {
        &self.unserved
    }

    /// The one startup line about the entries not served, if any.
    pub fn unserved_line(&self) -> Option<String> {
        unserved::line(&self.unserved)
    }

    /// Resolve a requested model name: alias, then exact group, then the most specific wildcard.
    pub fn resolve(&self, requested: &str) -> Result<Resolved, RouteError> {
        let name = match self.aliases.get(requested) {
            Some((target, _)) => target.as_str(),
            None => requested,
        };
        if let Some(g) = self.groups.get(name) {
            return Ok(Resolved { group: g.clone() });
        }
        if self.wildcards.is_empty() {
            return Err(RouteError::UnknownModel(requested.to_string()));
        }
        if let Some(g) = self.derived.get(name) {
            return Ok(Resolved { group: g });
        }
        let g = self.derive(name)?;
        self.derived.insert(name.to_string(), g.clone());
        Ok(Resolved { group: g })
    }

    fn derive(&self, name: &str) -> Result<Group, RouteError> {
        let mut best: Option<&str> = None;
        let mut out = Vec::new();
        for w in &self.wildcards {
            if best.is_some_and(|b| b != w.pattern) {
                break;
            }
            let Some(caps) = wildcard::captures(&w.pattern, name) else {
                continue;
            };
            best = Some(&w.pattern);
            let model = wildcard::substitute(&w.entry.tianji_params.model, &caps);
            let d = Deployment::build(
                &w.entry,
                name,
                &model,
                &self.catalog,
                &self.env,
                &self.defaults,
            )
            .map_err(|source| RouteError::Deployment {
                model: name.to_string(),
                source,
            })?;
            out.push(Arc::new(d));
        }
        if out.is_empty() {
            return Err(RouteError::UnknownModel(name.to_string()));
        }
        Ok(Group::from(out))
    }

    /// The model groups in config order.
    pub fn groups_in_order(&self) -> impl Iterator<Item = (&str, &Group)> {
        (self.names.iter()).filter_map(|n| self.groups.get(n).map(|g| (n.as_str(), g)))
    }

    /// The aliases `/v1/models` shows (not `hidden`), sorted.
    pub fn visible_aliases(&self) -> Vec<&str> {
        let mut v: Vec<&str> = (self.aliases.iter())
            .filter(|(_, (_, hidden))| !hidden)
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// The wildcard entries, most specific first.
    pub fn wildcards(&self) -> &[WildcardEntry] {
        &self.wildcards
    }

    /// The names of the model access groups (`model_info.access_groups`), sorted.
    pub fn access_group_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.access_groups.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether access group `group` (from `model_info.access_groups`) contains `model`.
    pub fn access_group_has(&self, group: &str, model: &str) -> bool {
        self.access_groups
            .get(group)
            .is_some_and(|ms| ms.iter().any(|m| m == model))
    }

    /// The deployment whose credentials provider pass-through uses for `provider` (its first
    /// price-map provider name in `names`), as LiteLLM chooses it: a deployment of one of
    /// `names` marked `use_in_pass_through: true` (a concrete one, else a wildcard entry), else
    /// one built from the provider's credentials in the environment or `environment_variables`
    /// (`ANTHROPIC_API_KEY`, and `ANTHROPIC_API_BASE` for its base). Unmarked deployments are
    /// never used: their account is not one the operator chose for pass-through.
    pub fn pass_through(
        &self,
        provider: &'static str,
        names: &[&str],
    ) -> Result<Arc<Deployment>, PassThroughMissing> {
        if let Some(d) = self.deployments().find(|d| {
            d.pass_through && names.contains(&d.provider.name()) && d.mock_response.is_none()
        }) {
            return Ok(d.clone());
        }
        if let Some(d) = self.pass_through.get(provider) {
            return Ok(d);
        }
        let of = |model: &str| {
            model
                .split_once('/')
                .is_some_and(|(p, _)| names.contains(&p))
        };
        let wildcard = self.wildcards.iter().find(|w| {
            let p = &w.entry.tianji_params;
            p.use_in_pass_through && of(&p.model) && p.mock_response.is_none()
        });
        let from_env;
        let (entry, name) = match wildcard {
            Some(w) => (&w.entry, w.pattern.as_str()),
            None => {
                let credential = PASS_THROUGH_ENV
                    .iter()
                    .find(|(p, _)| names.contains(p))
                    .map(|(_, vars)| *vars)
                    .unwrap_or_default();
                if !credential
                    .iter()
                    .any(|v| self.env.get(v).is_some_and(|s| !s.is_empty()))
                {
                    return Err(PassThroughMissing::None);
                }
                from_env = serde_json::from_value::<ModelEntry>(serde_json::json!({
                    "model_name": format!("{provider}-pass-through"),
                    "tianji_params": {"model": format!("{}/pass-through", names.first().copied().unwrap_or(provider))},
                }))
                .map_err(|e| PassThroughMissing::Env(e.to_string()))?;
                (&from_env, from_env.model_name.as_str())
            }
        };
        let model = entry.tianji_params.model.replace('*', "pass-through");
        let d = Deployment::build(
            entry,
            name,
            &model,
            &self.catalog,
            &self.env,
            &self.defaults,
        )
        .map_err(|e| PassThroughMissing::Env(e.to_string()))?;
        let d = Arc::new(d);
        self.pass_through.insert(provider, d.clone());
        Ok(d)
    }

    /// Carry the live traffic counters (cooldowns, latency, usage) of deployments that are
    /// still there over from the table this one replaces.
    pub fn keep_stats(&mut self, old: &ModelTable) {
        let before: FastMap<&str, &Arc<stats::Stats>> = old
            .deployments()
            .map(|d| (d.id.as_str(), &d.stats))
            .collect();
        for group in self.groups.values_mut() {
            let Some(deps) = Arc::get_mut(group) else {
                continue;
            };
            for d in deps.iter_mut() {
                let Some(s) = before.get(d.id.as_str()).map(|s| Arc::clone(s)) else {
                    continue;
                };
                if let Some(d) = Arc::get_mut(d) {
                    d.stats = s;
                }
            }
        }
    }

    /// Every concrete deployment (wildcards excluded).
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.groups.values().flat_map(|g| g.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loaded;

    fn table(yaml: &str) -> ModelTable {
        let l = Loaded::from_yaml(yaml).unwrap();
        ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env).unwrap()
    }

    #[test]
    fn most_specific_wildcard_wins() {
        let t = table(
            r#"
model_list:
  - model_name: "*"
    tianji_params: {model: "openai/*", api_base: "http://any.example"}
  - model_name: "groq/*"
    tianji_params: {model: "groq/*", api_key: k}
  - model_name: "groq/llama-*"
    tianji_params: {model: "groq/llama-*", api_base: "http://llama.example/v1"}
  - model_name: exact
    tianji_params: {model: "openai/gpt-4o", api_base: "http://exact.example"}
"#,
        );
        let r = t.resolve("groq/llama-3").unwrap();
        assert_eq!(r.pick().upstream_model, "llama-3");
        assert_eq!(r.pick().api_base, "http://llama.example/v1");
        let r = t.resolve("groq/mixtral").unwrap();
        assert_eq!(r.pick().api_base, "https://api.groq.com/openai/v1");
        let r = t.resolve("gpt-5").unwrap();
        assert_eq!(r.pick().provider.name(), "openai");
        assert_eq!(r.pick().upstream_model, "gpt-5");
        assert_eq!(
            t.resolve("exact").unwrap().pick().api_base,
            "http://exact.example"
        );
    }

    #[test]
    fn aliases_and_unknown_models() {
        let t = table(
            r#"
model_list:
  - model_name: gpt-4o
    tianji_params: {model: openai/gpt-4o}
router_settings:
  model_group_alias: {gpt4: gpt-4o, secret: {model: gpt-4o, hidden: true}}
"#,
        );
        assert_eq!(t.resolve("gpt4").unwrap().pick().model_name, "gpt-4o");
        assert!(matches!(
            t.resolve("nope"),
            Err(RouteError::UnknownModel(_))
        ));
        let groups: Vec<&str> = t.groups_in_order().map(|(n, _)| n).collect();
        assert_eq!(
            (groups, t.visible_aliases()),
            (vec!["gpt-4o"], vec!["gpt4"])
        );
    }

    #[test]
    fn unknown_provider_in_config_is_left_out_or_an_error() {
        let yaml = "model_list:\n  - model_name: a\n    tianji_params: {model: nosuch/a}\n  - model_name: b\n    tianji_params: {model: sagemaker/endpoint-1, aws_access_key_id: k, aws_secret_access_key: s}\n  - model_name: c\n    tianji_params: {model: openai/c}\n";
        let t = table(yaml);
        assert!(matches!(t.resolve("a"), Err(RouteError::UnknownModel(_))));
        assert_eq!(t.resolve("b").unwrap().pick().provider.name(), "sagemaker");
        assert!(t.resolve("c").is_ok());
        let line = t.unserved_line().unwrap();
        assert!(
            line.contains("model_list[0] a (nosuch/a)") && line.contains("Unknown provider"),
            "{line}"
        );
        assert!(!line.contains("model_list[1]"), "{line}");
        assert!(!line.contains("model_list[2]"), "{line}");
        for (setting, index) in [
            ("router_settings: {ignore_invalid_deployments: false}", 0),
            ("general_settings: {strict_config: true}", 0),
        ] {
            let l = Loaded::from_yaml(&format!("{yaml}{setting}\n")).unwrap();
            let e = ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env)
                .err()
                .unwrap();
            assert_eq!(e.index, index, "{setting}");
            assert!(e.to_string().contains("nosuch"), "{e}");
        }
    }

    #[test]
    fn a_provider_not_served_stops_the_table() {
        for (model, name) in [("replicate/meta/llama", "r"), ("\"bytez/*\"", "\"b/*\"")] {
            let l = Loaded::from_yaml(&format!(
                "model_list:\n  - model_name: ok\n    tianji_params: {{model: openai/c}}\n  - model_name: {name}\n    tianji_params: {{model: {model}}}\n"
            ))
            .unwrap();
            let e = ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env)
                .err()
                .unwrap();
            assert_eq!(e.index, 1);
            let e = e.to_string();
            assert!(e.starts_with("model_list[1] "), "{e}");
            assert!(e.contains("is not served by Tianji: "), "{e}");
        }
        let l = Loaded::from_yaml(
            "model_list:\n  - model_name: r\n    tianji_params: {model: replicate/x}\n",
        )
        .unwrap();
        let e = ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with(
                "model_list[0] r (replicate/x): provider replicate is not served by Tianji: "
            ),
            "{e}"
        );
    }

    #[test]
    fn every_catalogue_entry_has_a_usable_default_url() {
        let catalog = Arc::new(Catalog::builtin().unwrap());
        let mut yaml = String::from("model_list:\n");
        for name in catalog.names() {
            yaml.push_str(&format!("  - model_name: \"p-{name}\"\n    tianji_params: {{model: \"{name}/m\", api_key: k}}\n"));
        }
        let l = Loaded::from_yaml(&yaml).unwrap();
        for (i, name) in catalog.names().iter().enumerate() {
            let spec = catalog.get(name).unwrap();
            let d = Deployment::build(
                &l.config.model_list[i],
                "x",
                &format!("{name}/m"),
                &catalog,
                &Env::default(),
                &Defaults::default(),
            );
            if spec.api_base_required {
                assert!(matches!(d, Err(DeploymentError::NeedsApiBase(_))), "{name}");
                continue;
            }
            let d = d.unwrap_or_else(|e| panic!("{name}: {e}"));
            let ep = d.endpoints.as_ref().unwrap();
            assert_eq!(
                ep.chat.to_string(),
                format!("{}/chat/completions", spec.base_url),
                "{name}"
            );
            assert_eq!(
                ep.embeddings.to_string(),
                format!("{}/embeddings", spec.base_url),
                "{name}"
            );
        }
    }

    #[test]
    fn star_in_params_needs_a_pattern_name() {
        let t = table("model_list:\n  - model_name: a\n    tianji_params: {model: \"openai/*\"}\n");
        let line = t.unserved_line().unwrap();
        assert!(line.contains("model_name has no `*`"), "{line}");
    }

    #[test]
    fn wildcard_to_unknown_provider_is_a_route_error() {
        let t = table("model_list:\n  - model_name: \"*\"\n    tianji_params: {model: \"*\"}\n");
        assert!(matches!(
            t.resolve("nosuch/x"),
            Err(RouteError::Deployment { .. })
        ));
        assert!(t.resolve("gpt-4o").is_ok());
    }
}
