//! Deployment regions (LiteLLM's region routing): a deployment's `region_name`, else the region
//! its provider runs it in; a request restricted by `allowed_model_region` (of its end user or
//! key) goes only to deployments of that region.

use std::sync::Arc;

use super::{Deployment, Group};

/// A deployment's region: `region_name` as set (lowercase), else `eu` or `us` from the cloud
/// location its provider calls (Bedrock's AWS region, Vertex AI's location); `None` when
/// neither tells.
pub fn of(region_name: Option<&str>, location: Option<&str>) -> Option<String> {
    match region_name.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(r.to_ascii_lowercase()),
        None => location.and_then(of_location).map(str::to_string),
    }
}

/// `eu` or `us` for a cloud location (`eu-west-1`, `europe-west4`, `us-central1`,
/// `us-gov-west-1`).
fn of_location(location: &str) -> Option<&'static str> {
    let l = location.trim().to_ascii_lowercase();
    if l.starts_with("eu-") || l.starts_with("europe-") {
        Some("eu")
    } else if l.starts_with("us-") {
        Some("us")
    } else {
        None
    }
}

/// Whether `dep` is in every region of `allowed` (any deployment when it is empty).
pub fn admits(dep: &Deployment, allowed: &[String]) -> bool {
    allowed.iter().all(|a| {
        dep.region
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(a))
    })
}

/// The deployments of `group` in the `allowed` regions (the group itself when none is set).
pub fn within(group: &Group, allowed: &[String]) -> Group {
    if allowed.is_empty() {
        return group.clone();
    }
    let kept: Vec<Arc<Deployment>> = group
        .iter()
        .filter(|d| admits(d, allowed))
        .cloned()
        .collect();
    Group::from(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_name_wins_then_the_location() {
        assert_eq!(of(Some("EU"), Some("us-east-1")).as_deref(), Some("eu"));
        assert_eq!(of(None, Some("eu-central-1")).as_deref(), Some("eu"));
        assert_eq!(of(None, Some("europe-west4")).as_deref(), Some("eu"));
        assert_eq!(of(None, Some("us-central1")).as_deref(), Some("us"));
        assert_eq!(of(Some(" "), Some("ap-south-1")), None);
        assert_eq!(of(None, None), None);
    }
}
