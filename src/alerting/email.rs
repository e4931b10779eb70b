//! E-mail over SMTP (lettre), with LiteLLM's settings: `SMTP_HOST`, `SMTP_PORT` (default 587),
//! `SMTP_USERNAME`, `SMTP_PASSWORD`, `SMTP_SENDER_EMAIL`, `SMTP_TLS` (default `True`: STARTTLS
//! required; `False`: plain), `SMTP_SSL` (`True`, or port 465: TLS from the first byte).

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{0}: not a valid e-mail address")]
    Address(String),
    #[error("SMTP_PORT `{0}` is not a port number")]
    Port(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// One e-mail to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// HTML body.
    pub html: String,
}

/// The SMTP server and sender.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`SMTP_SSL=True`, or port 465).
    Tls,
    /// STARTTLS required (`SMTP_TLS` unset or not `False`).
    StartTls,
    /// No TLS (`SMTP_TLS=False`).
    Plain,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

impl Smtp {
    /// From the environment; `None` without `SMTP_HOST`.
    pub fn from_env(env: &crate::config::Env) -> Option<Result<Self, EmailError>> {
        let var = |n: &str| env.get(n).filter(|v| !v.trim().is_empty());
        let host = var("SMTP_HOST")?;
        Some((|| {
            let port = match var("SMTP_PORT") {
                Some(p) => p.trim().parse::<u16>().map_err(|_| EmailError::Port(p))?,
                None => 587,
            };
            let security = if var("SMTP_SSL").is_some_and(|v| truthy(&v)) || port == 465 {
                Security::Tls
            } else if var("SMTP_TLS").is_some_and(|v| !truthy(&v)) {
                Security::Plain
            } else {
                Security::StartTls
            };
            let user = var("SMTP_USERNAME");
            let sender = var("SMTP_SENDER_EMAIL")
                .or_else(|| user.clone().filter(|u| u.contains('@')))
                .unwrap_or_else(|| format!("tianji@{host}"));
            let from: Mailbox = sender
                .parse()
                .map_err(|_| EmailError::Address("SMTP_SENDER_EMAIL".into()))?;
            let builder = match security {
                Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?,
                Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?,
                Security::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            };
            let mut builder = builder.port(port).timeout(Some(Duration::from_secs(10)));
            if let Some(u) = user {
                builder = builder.credentials(Credentials::new(
                    u,
                    var("SMTP_PASSWORD").unwrap_or_default(),
                ));
            }
            Ok(Self {
                transport: builder.build(),
                from,
            })
        })())
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), EmailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| EmailError::Address(mail.to.clone()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_HTML)
            .body(mail.html.clone())?;
        self.transport.send(msg).await?;
        Ok(())
    }
}

/// Text made safe inside HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The invitation e-mail: a greeting, what was made for the user, and the link.
pub fn invitation(to: &str, user_id: &str, link: &str, what: &str) -> Mail {
    let link_html = html_escape(link);
    Mail {
        to: to.to_string(),
        subject: "Tianji: you're invited".into(),
        html: format!(
            "<html><body><p>Hi {},</p><p>{}</p>\
             <p>Accept your invitation and sign in: <a href=\"{link_html}\">{link_html}</a></p>\
             <p>Invitation link: {link_html}</p></body></html>",
            html_escape(to),
            html_escape(&format!("{what} (user id: {user_id}).")),
        ),
    }
}
