//! JWT authentication against a local JWKS server of the test's own (a mock we own) and a
//! real PostgreSQL: tokens map onto teams, users, end users and admins with the same budgets,
//! limits and spend rows as keys; key rotation; every bad-token case is a 401 that says why.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::admin_keys::{call, setup_with};
use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async};

const AUDIENCE: &str = "tianji-test";
const ISSUER: &str = "https://idp.test";
const RSA_PRIVATE: &str = include_str!("../fixtures/jwt/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/jwt/rsa_public.pem");
const RSA_JWK: &str = include_str!("../fixtures/jwt/rsa_jwk.json");

/// A signing key with its public half as a JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    /// The RSA fixture key (`kid` rsa-1).
    fn rsa() -> Self {
        Signer {
            kid: "rsa-1".into(),
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
            jwk: serde_json::from_str(RSA_JWK).unwrap(),
        }
    }

    /// A fresh P-256 key.
    fn ec(kid: &str) -> Self {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = kp.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Signer {
            kid: kid.into(),
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_der(&kp.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims valid for an hour, with `extra` merged in.
fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// The JWKS server: answers `/jwks` with whatever the test put in the set.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>) -> MockUpstream {
    MockUpstream::with(Arc::new(move |_| {
        Reply::status(200, json!({"keys": keys.lock().unwrap().clone()}))
    }))
    .await
}

fn jwt_config(jwks: &MockUpstream, ttl: f64) -> String {
    format!(
        "  proxy_batch_write_at: 0.05\n  enable_jwt_auth: true\n  tianji_jwtauth:\n    public_key_url: \"{}/jwks\"\n    public_key_ttl: {ttl}\n    audience: {AUDIENCE}\n    issuer: \"{ISSUER}\"\n    team_id_jwt_field: tianji.team\n    user_id_jwt_field: sub\n    user_email_jwt_field: email\n    user_id_upsert: true\n    end_user_id_jwt_field: customer\n    org_id_jwt_field: org\n    roles_jwt_field: realm_access.roles\n    role_mappings:\n      - {{role: viewer, internal_role: proxy_admin_viewer}}\n",
        jwks.base()
    )
}

async fn chat(gw: &TestGateway, token: &str, model: &str) -> Resp {
    call(
        gw,
        Method::POST,
        "/v1/chat/completions",
        token,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn refused(r: Resp, status: u16, says: &str) {
    let e = r.assert_error(status);
    let m = e["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(m.contains(says), "expected '{says}' in: {e}");
}

async fn rows(db: &TestDb, sql: &str) -> Vec<tokio_postgres::Row> {
    db.client().await.query(sql, &[]).await.unwrap()
}

#[tokio::test]
async fn tokens_map_to_teams_users_end_users_and_admins_with_their_budgets_and_spend() {
    let rsa = Signer::rsa();
    let keys = Arc::new(Mutex::new(vec![rsa.jwk.clone()]));
    let jwks = jwks_server(keys.clone()).await;
    let (db, _up, gw) = setup_with(false, &jwt_config(&jwks, 600.0)).await;

    // a team limited to model m, one over its budget, one with an organisation
    ok(call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t-eng", "models": ["m"], "rpm_limit": 3}),
    )
    .await);
    ok(call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t-broke", "max_budget": 1.0}),
    )
    .await);
    db.client()
        .await
        .execute(
            "UPDATE \"TianjiLLM_TeamTable\" SET spend = 2 WHERE team_id = 't-broke'",
            &[],
        )
        .await
        .unwrap();

    // a team member: chat on its team's model, refused the other; the user is created
    let alice = rsa.sign(&claims(json!({"sub": "alice", "email": "alice@corp.test",
        "tianji": {"team": "t-eng"}, "customer": "cust-1"})));
    let r = ok(chat(&gw, &alice, "m").await);
    assert_eq!(r["object"], "chat.completion");
    let e = chat(&gw, &alice, "m2").await.assert_error(403);
    assert_eq!(e["error"]["type"], "team_model_access_denied", "{e}");
    let u = rows(
        &db,
        "SELECT user_email, user_role FROM \"TianjiLLM_UserTable\" WHERE user_id = 'alice'",
    )
    .await;
    assert_eq!(u.len(), 1, "alice was not created");
    assert_eq!(
        u[0].get::<_, Option<String>>(0).as_deref(),
        Some("alice@corp.test")
    );
    assert_eq!(
        u[0].get::<_, Option<String>>(1).as_deref(),
        Some("internal_user")
    );

    // the spend row names the team, the user and the end user; never the token
    let written = eventually_async(Duration::from_secs(10), || async {
        !rows(
            &db,
            "SELECT 1 FROM \"TianjiLLM_SpendLogs\" WHERE team_id = 't-eng'",
        )
        .await
        .is_empty()
    })
    .await;
    assert!(written, "no spend row for the JWT caller");
    let s = rows(&db, "SELECT api_key, \"user\", end_user, status FROM \"TianjiLLM_SpendLogs\" WHERE team_id = 't-eng'").await;
    let api_key: String = s[0].get(0);
    assert_eq!(api_key.len(), 64, "a digest, not the token: {api_key}");
    assert!(!api_key.contains(&alice[..20]));
    assert_eq!(s[0].get::<_, Option<String>>(1).as_deref(), Some("alice"));
    assert_eq!(s[0].get::<_, Option<String>>(2).as_deref(), Some("cust-1"));
    let spent = eventually_async(Duration::from_secs(10), || async {
        rows(&db, "SELECT 1 FROM \"TianjiLLM_DailyTeamSpend\" WHERE team_id = 't-eng' AND api_requests >= 1").await.len() == 1
    })
    .await;
    assert!(spent, "the team's daily spend row was not written");

    // the team's rpm limit holds for its JWT callers (3 a minute: one used above)
    let bob = rsa.sign(&claims(json!({"sub": "bob", "tianji": {"team": "t-eng"}})));
    assert_eq!(chat(&gw, &bob, "m").await.status, 200);
    assert_eq!(chat(&gw, &alice, "m").await.status, 200);
    let e = chat(&gw, &bob, "m").await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit exceeded for team: t-eng"),
        "{e}"
    );

    // a team over its budget refuses its JWT callers as it refuses its keys
    let carol = rsa.sign(&claims(
        json!({"sub": "carol", "tianji": {"team": "t-broke"}}),
    ));
    let e = chat(&gw, &carol, "m").await.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");

    // a team that does not exist is refused (no team_id_upsert)
    let dave = rsa.sign(&claims(
        json!({"sub": "dave", "tianji": {"team": "t-nope"}}),
    ));
    refused(
        chat(&gw, &dave, "m").await,
        401,
        "Team doesn't exist in db. Team=t-nope",
    );
    // an organisation that does not exist is refused
    let erin = rsa.sign(&claims(
        json!({"sub": "erin", "tianji": {"team": "t-eng"}, "org": "o-nope"}),
    ));
    refused(
        chat(&gw, &erin, "m").await,
        401,
        "Organization doesn't exist",
    );

    // team callers may not call management routes
    let e = call(&gw, Method::POST, "/key/generate", &alice, json!({}))
        .await
        .assert_error(403);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/key/generate"),
        "{e}"
    );

    // the admin scope: management routes yes, LLM routes no (admin_allowed_routes)
    let admin = rsa.sign(&claims(
        json!({"sub": "root", "scope": "openid tianji_proxy_admin"}),
    ));
    let k = ok(call(
        &gw,
        Method::POST,
        "/key/generate",
        &admin,
        json!({"team_id": "t-eng"}),
    )
    .await);
    assert!(k["key"].as_str().unwrap().starts_with("sk-"));
    assert_eq!(
        ok(call(
            &gw,
            Method::GET,
            "/team/info?team_id=t-eng",
            &admin,
            Value::Null
        )
        .await)["team_id"],
        "t-eng"
    );
    refused(chat(&gw, &admin, "m").await, 403, "not allowed");

    // a mapped role: proxy_admin_viewer reads everything, changes nothing
    let viewer = rsa.sign(&claims(json!({"sub": "vic", "tianji": {"team": "t-eng"},
        "realm_access": {"roles": ["viewer"]}})));
    assert_eq!(
        call(
            &gw,
            Method::GET,
            "/team/info?team_id=t-broke",
            &viewer,
            Value::Null
        )
        .await
        .status,
        200
    );
    let r = call(
        &gw,
        Method::GET,
        "/team/info?team_id=t-broke",
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason() {
    let rsa = Signer::rsa();
    let ec = Signer::ec("ec-1");
    let keys = Arc::new(Mutex::new(vec![rsa.jwk.clone(), ec.jwk.clone()]));
    let jwks = jwks_server(keys.clone()).await;
    let (_db, _up, gw) = setup_with(false, &jwt_config(&jwks, 600.0)).await;
    ok(call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t1"}),
    )
    .await);
    let good = json!({"sub": "u1", "tianji": {"team": "t1"}});

    // both key types verify
    assert_eq!(
        chat(&gw, &rsa.sign(&claims(good.clone())), "m")
            .await
            .status,
        200
    );
    assert_eq!(
        chat(&gw, &ec.sign(&claims(good.clone())), "m").await.status,
        200
    );

    // claims that are wrong, one at a time
    for (change, says) in [
        (json!({"exp": now() - 120}), "the token has expired"),
        (json!({"nbf": now() + 600}), "not valid yet"),
        (
            json!({"aud": "someone-else"}),
            "audience is not 'tianji-test'",
        ),
        (
            json!({"iss": "https://evil.test"}),
            "issuer is not 'https://idp.test'",
        ),
        (json!({"exp": null}), "no `exp` claim"),
    ] {
        let mut c = claims(good.clone());
        for (k, v) in change.as_object().unwrap() {
            match v {
                Value::Null => drop(c.as_object_mut().unwrap().remove(k)),
                v => c[k] = v.clone(),
            }
        }
        refused(chat(&gw, &rsa.sign(&c), "m").await, 401, says);
    }

    // a key the set does not hold
    let stranger = Signer::ec("ec-unknown");
    refused(
        chat(&gw, &stranger.sign(&claims(good.clone())), "m").await,
        401,
        "no signing key with kid 'ec-unknown'",
    );
    // a key the set does not hold, claiming a kid it does: the signature fails
    let impostor = Signer::ec("ec-1");
    refused(
        chat(&gw, &impostor.sign(&claims(good.clone())), "m").await,
        401,
        "signature does not verify",
    );

    // alg none: unsigned
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        b64(&claims(good.clone()))
    );
    refused(
        chat(&gw, &none, "m").await,
        401,
        "algorithm 'none' is not accepted",
    );

    // HS256 signed with the RSA public key as the secret (algorithm confusion)
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa-1".into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims(good.clone()),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    refused(
        chat(&gw, &hs, "m").await,
        401,
        "algorithm 'HS256' is not accepted",
    );

    // the EC key's alg is ES256: a token claiming RS256 under its kid is refused
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("ec-1".into());
    let mixed = jsonwebtoken::encode(&h, &claims(good.clone()), &rsa.key).unwrap();
    refused(chat(&gw, &mixed, "m").await, 401, "is not its key's");

    // tampered claims under a real signature
    let t = rsa.sign(&claims(good.clone()));
    let parts: Vec<&str> = t.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(
            json!({"sub": "u1", "tianji": {"team": "t1"}, "scope": "tianji_proxy_admin"})
        )),
        parts[2]
    );
    refused(
        call(&gw, Method::POST, "/key/generate", &forged, json!({})).await,
        401,
        "signature does not verify",
    );

    // garbage with two dots
    refused(chat(&gw, "abc.def.ghi", "m").await, 401, "malformed");

    // no team and no user named
    let mut nobody = claims(json!({}));
    nobody.as_object_mut().unwrap().remove("sub");
    refused(
        chat(&gw, &rsa.sign(&nobody), "m").await,
        401,
        "names no team and no user",
    );

    // keys still work beside JWTs
    let k = ok(call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({})).await);
    assert_eq!(chat(&gw, k["key"].as_str().unwrap(), "m").await.status, 200);
}

#[tokio::test]
async fn a_rotated_in_key_is_accepted_and_a_removed_key_refused_after_the_next_fetch() {
    let old = Signer::ec("k-old");
    let new = Signer::ec("k-new");
    let keys = Arc::new(Mutex::new(vec![old.jwk.clone()]));
    let jwks = jwks_server(keys.clone()).await;
    let (_db, _up, gw) = setup_with(false, &jwt_config(&jwks, 1.0)).await;
    ok(call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t1"}),
    )
    .await);
    let c = claims(json!({"sub": "u1", "tianji": {"team": "t1"}}));
    let old_token = old.sign(&c);
    let new_token = new.sign(&c);
    assert_eq!(chat(&gw, &old_token, "m").await.status, 200);
    refused(
        chat(&gw, &new_token, "m").await,
        401,
        "no signing key with kid 'k-new'",
    );

    // the provider adds the new key: accepted once the set is fetched again
    keys.lock().unwrap().push(new.jwk.clone());
    let accepted = eventually_async(Duration::from_secs(10), || async {
        chat(&gw, &new_token, "m").await.status == 200
    })
    .await;
    assert!(accepted, "the rotated-in key was never accepted");
    assert_eq!(chat(&gw, &old_token, "m").await.status, 200);

    // the provider drops the old key: its tokens (verified before) are refused after the fetch
    keys.lock().unwrap().retain(|k| k["kid"] != "k-old");
    let gone = eventually_async(Duration::from_secs(10), || async {
        chat(&gw, &old_token, "m").await.status == 401
    })
    .await;
    assert!(gone, "a token of a removed key was still accepted");
    refused(
        chat(&gw, &old_token, "m").await,
        401,
        "no signing key with kid 'k-old'",
    );
    assert_eq!(chat(&gw, &new_token, "m").await.status, 200);
}
