//! Invitation e-mails over a real SMTP server (spec US4 scenario 4): `/user/new` and
//! `/key/generate` with `send_invite_email: true` send the user a link to their invitation
//! (`{PROXY_BASE_URL}/ui?invitation_id=<id>`), never the raw key nor the SMTP password; the
//! `/invitation/*` routes, admin only.

use http::Method;
use serde_json::{Value, json};

use super::{SmtpSink, WAIT, admin, gateway};
use crate::common::db::TestDb;
use crate::common::eventually;
use crate::common::mock_upstream::MockUpstream;
use crate::it::admin_keys::call;

const SMTP_PASSWORD: &str = "smtp-pass-secret-77";

/// The invitation id in a mail's link.
fn invitation_id(mail: &Value) -> String {
    let data = mail["body"].as_str().unwrap();
    let start = data
        .find("http://gw.example/ui?invitation_id=")
        .unwrap_or_else(|| panic!("no invitation link in {data}"))
        + "http://gw.example/ui?invitation_id=".len();
    data[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect()
}

#[tokio::test]
async fn user_created_with_send_invite_email_gets_an_invitation_link() {
    let smtp = SmtpSink::start();
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = gateway(&db, &up, "  alerting: [email]", &smtp.env(SMTP_PASSWORD)).await;
    let r = admin(
        &gw,
        Method::POST,
        "/user/new",
        json!({"user_id": "u-invited", "user_email": "new.user@example.com",
               "send_invite_email": true, "password": "user-pw-secret"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = r.json()["key"].as_str().unwrap().to_string();
    assert!(eventually(WAIT, || smtp.messages().len() == 1).await);
    let m = &smtp.messages()[0];
    assert_eq!(m["rcpt_tos"], json!(["new.user@example.com"]), "{m}");
    assert_eq!(m["mail_from"], "alerts@tianji.test", "{m}");
    assert_eq!(m["authenticated"], true, "{m}");
    assert_eq!(m["subject"], "Tianji: you're invited", "{m}");
    assert_eq!(m["to"], "new.user@example.com", "{m}");
    for part in ["body", "data"] {
        let text = m[part].as_str().unwrap();
        for secret in [raw.as_str(), SMTP_PASSWORD, "user-pw-secret"] {
            assert!(!text.contains(secret), "the mail holds {secret}: {text}");
        }
    }
    // the link names a stored invitation of that user
    let id = invitation_id(m);
    let r = admin(
        &gw,
        Method::GET,
        &format!("/invitation/info?invitation_id={id}"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_id"], "u-invited");
    assert_eq!(r.json()["is_accepted"], false);

    // a user created without asking gets no mail; a key generated with it does
    let r = admin(
        &gw,
        Method::POST,
        "/user/new",
        json!({"user_id": "u-quiet", "user_email": "quiet@example.com", "auto_create_key": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin(
        &gw,
        Method::POST,
        "/key/generate",
        json!({"user_id": "u-quiet", "send_invite_email": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert!(eventually(WAIT, || smtp.messages().len() == 2).await);
    let m = &smtp.messages()[1];
    assert_eq!(m["rcpt_tos"], json!(["quiet@example.com"]), "{m}");
    let data = m["data"].as_str().unwrap();
    assert!(
        !data.contains(&key) && !data.contains(SMTP_PASSWORD),
        "{data}"
    );
    assert!(!invitation_id(m).is_empty());
}

#[tokio::test]
async fn invitation_routes_are_admin_only_and_answer_litellm_shapes() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = gateway(&db, &up, "", "").await;
    let r = admin(&gw, Method::POST, "/user/new", json!({"user_id": "u-inv"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let user_key = r.json()["key"].as_str().unwrap().to_string();

    let r = admin(
        &gw,
        Method::POST,
        "/invitation/new",
        json!({"user_id": "u-inv"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let inv = r.json();
    for field in [
        "id",
        "user_id",
        "is_accepted",
        "accepted_at",
        "expires_at",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    ] {
        assert!(inv.get(field).is_some(), "{field}: {inv}");
    }
    assert_eq!(inv["user_id"], "u-inv");
    assert_eq!(inv["created_by"], "alice@example.com");
    assert!(inv["accepted_at"].is_null());
    let id = inv["id"].as_str().unwrap().to_string();

    // non-admins are refused on every route
    for (method, path, body) in [
        (
            Method::POST,
            "/invitation/new".to_string(),
            json!({"user_id": "u-inv"}),
        ),
        (
            Method::GET,
            format!("/invitation/info?invitation_id={id}"),
            Value::Null,
        ),
        (
            Method::POST,
            "/invitation/update".to_string(),
            json!({"invitation_id": id, "is_accepted": true}),
        ),
        (
            Method::POST,
            "/invitation/delete".to_string(),
            json!({"invitation_id": id}),
        ),
    ] {
        let r = call(&gw, method, &path, &user_key, body).await;
        assert!(
            matches!(r.status.as_u16(), 401 | 403),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }

    let r = admin(
        &gw,
        Method::POST,
        "/invitation/update",
        json!({"invitation_id": id, "is_accepted": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["is_accepted"], true);
    assert!(r.json()["accepted_at"].is_string(), "{}", r.text());

    // bad input: clear 4xx errors
    let r = admin(
        &gw,
        Method::POST,
        "/invitation/new",
        json!({"user_id": "nobody"}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = admin(&gw, Method::POST, "/invitation/new", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = admin(&gw, Method::GET, "/invitation/info", Value::Null).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = admin(
        &gw,
        Method::GET,
        "/invitation/info?invitation_id=missing",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    let r = admin(
        &gw,
        Method::POST,
        "/invitation/delete",
        json!({"invitation_id": id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], json!(id));
    let r = admin(
        &gw,
        Method::POST,
        "/invitation/delete",
        json!({"invitation_id": id}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
}
