//! Alerting settings value types (`general_settings.alerting`, `alert_types`,
//! `alert_to_webhook_url`, `alerting_args`): LiteLLM's names.

use serde::Deserialize;

/// Where alerts go (`general_settings.alerting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Slack incoming webhooks (`SLACK_WEBHOOK_URL`, or `alert_to_webhook_url`).
    Slack,
    /// LiteLLM's `WebhookEvent` JSON POSTed to `WEBHOOK_URL`.
    Webhook,
    /// E-mail over SMTP (`SMTP_HOST`, ...): invitations and budget e-mails.
    Email,
}

/// LiteLLM's alert types (`general_settings.alert_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    LlmExceptions,
    LlmTooSlow,
    LlmRequestsHanging,
    BudgetAlerts,
    SpendReports,
    FailedTrackingSpend,
    DbExceptions,
    DailyReports,
    CooldownDeployment,
    NewModelAdded,
    ModelDeprecationWarnings,
    OutageAlerts,
    RegionOutageAlerts,
    FallbackReports,
    NewVirtualKeyCreated,
    VirtualKeyUpdated,
    VirtualKeyDeleted,
    NewTeamCreated,
    TeamUpdated,
    TeamDeleted,
    NewInternalUserCreated,
    InternalUserUpdated,
    InternalUserDeleted,
}

impl AlertType {
    /// LiteLLM's name.
    pub fn name(self) -> &'static str {
        use AlertType::*;
        match self {
            LlmExceptions => "llm_exceptions",
            LlmTooSlow => "llm_too_slow",
            LlmRequestsHanging => "llm_requests_hanging",
            BudgetAlerts => "budget_alerts",
            SpendReports => "spend_reports",
            FailedTrackingSpend => "failed_tracking_spend",
            DbExceptions => "db_exceptions",
            DailyReports => "daily_reports",
            CooldownDeployment => "cooldown_deployment",
            NewModelAdded => "new_model_added",
            ModelDeprecationWarnings => "model_deprecation_warnings",
            OutageAlerts => "outage_alerts",
            RegionOutageAlerts => "region_outage_alerts",
            FallbackReports => "fallback_reports",
            NewVirtualKeyCreated => "new_virtual_key_created",
            VirtualKeyUpdated => "virtual_key_updated",
            VirtualKeyDeleted => "virtual_key_deleted",
            NewTeamCreated => "new_team_created",
            TeamUpdated => "team_updated",
            TeamDeleted => "team_deleted",
            NewInternalUserCreated => "new_internal_user_created",
            InternalUserUpdated => "internal_user_updated",
            InternalUserDeleted => "internal_user_deleted",
        }
    }

    /// LiteLLM's default `alert_types` (every type but the management events).
    pub const DEFAULTS: &'static [AlertType] = &[
        AlertType::LlmExceptions,
        AlertType::LlmTooSlow,
        AlertType::LlmRequestsHanging,
        AlertType::BudgetAlerts,
        AlertType::SpendReports,
        AlertType::FailedTrackingSpend,
        AlertType::DbExceptions,
        AlertType::DailyReports,
        AlertType::CooldownDeployment,
        AlertType::NewModelAdded,
        AlertType::ModelDeprecationWarnings,
        AlertType::OutageAlerts,
        AlertType::RegionOutageAlerts,
        AlertType::FallbackReports,
    ];
}

/// `alert_to_webhook_url` values: one URL or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Loaded;

    #[test]
    fn alerting_settings_parse_and_unknown_types_are_refused() {
        let y = "general_settings:\n  alerting: [slack, email]\n  alerting_threshold: 10\n  alert_types: [budget_alerts, new_virtual_key_created]\n  alert_to_webhook_url: {budget_alerts: \"https://h.example/a\", llm_exceptions: [\"https://h.example/b\", \"https://h.example/c\"]}\n  alerting_args: {budget_alert_ttl: 5}\n";
        let l = Loaded::from_yaml(y).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let g = &l.config.general_settings;
        assert_eq!(g.alerting.len(), 2);
        assert_eq!(g.alert_to_webhook_url.len(), 2);
        let urls = &g.alert_to_webhook_url[&super::AlertType::LlmExceptions];
        assert_eq!(urls.list().len(), 2);
        let e = Loaded::from_yaml("general_settings:\n  alert_types: [nope]\n").unwrap_err();
        assert!(e.to_string().contains("alert_types"), "{e}");
        let e = Loaded::from_yaml("general_settings:\n  alerting: [pagerduty]\n").unwrap_err();
        assert!(e.to_string().contains("alerting"), "{e}");
    }
}
