//! Ids of files, batches and fine-tuning jobs as the gateway hands them out: the provider's id,
//! the owner (user, team) and the deployment holding the object, sealed with AES-256-GCM like
//! response ids (`file-v2:gcm:...`, `batch_v2:gcm:...`, `ftjob-v2:gcm:...`, Anthropic's
//! `msgbatch_v2:gcm:...`, `video_v2:gcm:...`, `cntr_v2:gcm:...`). Without a master
//! key (no auth) the id only encodes the deployment: `file-tj:<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::Principal;
use crate::responses::ids::{Owned, Sealer};

/// The kinds of objects a deployment holds for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Batch,
    FineTune,
    /// An Anthropic message batch (`crate::managed::message_batches`).
    MessageBatch,
    /// A generated video (`crate::managed::videos`).
    Video,
    /// A code-interpreter container (`crate::managed::containers`).
    Container,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::File => "file-",
            Kind::Batch => "batch_",
            Kind::FineTune => "ftjob-",
            Kind::MessageBatch => "msgbatch_",
            Kind::Video => "video_",
            Kind::Container => "cntr_",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Kind::File => "tianji_proxy:file_id:",
            Kind::Batch => "tianji_proxy:batch_id:",
            Kind::FineTune => "tianji_proxy:fine_tuning_job_id:",
            Kind::MessageBatch => "tianji_proxy:message_batch_id:",
            Kind::Video => "tianji_proxy:video_id:",
            Kind::Container => "tianji_proxy:container_id:",
        }
    }
    pub fn noun(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Batch => "batch",
            Kind::FineTune => "fine-tuning job",
            Kind::MessageBatch => "message batch",
            Kind::Video => "video",
            Kind::Container => "container",
        }
    }
}

const PLAIN: &str = "tj:";

/// The `model_id` of a unified file id: a file sent to several deployments at once
/// (`target_model_names`); which deployments hold it, under which of their ids, is in
/// `"TianjiLLM_ManagedFileTable"` (`crate::managed::file_table`).
pub const UNIFIED: &str = "tianji:managed_file";

/// The provider-id part of a new unified file id, laid out as LiteLLM's
/// (`litellm_proxy:{type};unified_id,{uuid};target_model_names,{names}`, renamed): the file's
/// content type, a fresh id, the model names it was sent to.
pub fn unified_raw(content_type: &str, targets: &[String]) -> String {
    let content_type: String = content_type
        .chars()
        .filter(|c| !matches!(c, ';' | ',' | '\r' | '\n'))
        .collect();
    format!(
        "tianji_proxy:{content_type};unified_id,{};target_model_names,{}",
        uuid::Uuid::now_v7(),
        targets.join(",")
    )
}

/// The model names a unified file id's provider-id part names.
pub fn unified_targets(raw: &str) -> Vec<String> {
    let Some((_, rest)) = raw.split_once(";target_model_names,") else {
        return Vec::new();
    };
    let names = rest.split(';').next().unwrap_or_default();
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The id to give `principal` for the provider's `raw` id of `kind` held by deployment `dep`.
pub fn seal(
    sealer: Option<&Sealer>,
    kind: Kind,
    raw: &str,
    principal: &Principal,
    dep: &str,
) -> String {
    seal_owned(sealer, kind, &crate::responses::owner(raw, principal, dep))
}

/// The id of the object `owned` says (its owner need not be the caller: an admin's listing).
pub fn seal_owned(sealer: Option<&Sealer>, kind: Kind, owned: &Owned) -> String {
    match sealer.and_then(|s| s.seal_as(kind.prefix(), kind.tag(), owned)) {
        Some(id) => id,
        None => format!(
            "{}{PLAIN}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(format!("{}\n{}", owned.raw, owned.model_id))
        ),
    }
}

/// What an id the gateway handed out says; `None` for ids it did not issue (or of another kind).
pub fn open(sealer: Option<&Sealer>, kind: Kind, id: &str) -> Option<Owned> {
    if let Some(s) = sealer {
        return s.open_as(kind.prefix(), kind.tag(), id);
    }
    let b64 = id.strip_prefix(kind.prefix())?.strip_prefix(PLAIN)?;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(b64).ok()?).ok()?;
    let (raw, dep) = text.rsplit_once('\n')?;
    Some(Owned {
        raw: raw.to_string(),
        user_id: String::new(),
        team_id: String::new(),
        model_id: dep.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_and_plain_round_trip_per_kind() {
        let s = Sealer::new("sk-master").unwrap();
        let admin = Principal::Master;
        for sealer in [Some(&s), None] {
            let id = seal(sealer, Kind::File, "file-abc", &admin, "dep-1");
            assert!(id.starts_with("file-"), "{id}");
            let o = open(sealer, Kind::File, &id).unwrap();
            assert_eq!((o.raw.as_str(), o.model_id.as_str()), ("file-abc", "dep-1"));
            // an id of one kind is not one of another
            assert!(open(sealer, Kind::Batch, &id).is_none());
            assert!(open(sealer, Kind::File, "file-abc").is_none());
        }
    }

    #[test]
    fn unified_raw_names_its_targets() {
        let raw = unified_raw("application/jsonl;x", &["m1".into(), "m2".into()]);
        assert!(
            raw.starts_with("tianji_proxy:application/jsonlx;unified_id,"),
            "{raw}"
        );
        assert_eq!(unified_targets(&raw), ["m1", "m2"]);
        assert!(unified_targets("file-abc").is_empty());
        let s = Sealer::new("sk-master").unwrap();
        let owner = Owned {
            raw: raw.clone(),
            user_id: "u".into(),
            team_id: String::new(),
            model_id: UNIFIED.into(),
        };
        let id = seal_owned(Some(&s), Kind::File, &owner);
        assert_eq!(open(Some(&s), Kind::File, &id), Some(owner));
    }
}
