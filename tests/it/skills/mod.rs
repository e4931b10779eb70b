//! Issue 26, items 1 and 2: the Skills API. Spec US6 scenarios 1–5 through the `anthropic` SDK
//! (tests/python/skills_sdk.py) against two mock Anthropic accounts we own (skills kept in memory,
//! credentials recorded); zips with `../` entries (400) and oversize uploads (413) refused with
//! nothing stored; another key can neither read nor delete a skill it was not granted, a granted
//! one reads it; the discovery index and archives; `/v1/messages` naming a skill in
//! `container.skills` goes to the account holding it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, send};

/// A mock Anthropic account: the Skills API (skills and versions in memory) and Messages.
async fn account(name: &'static str) -> MockUpstream {
    let skills: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        let next = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let json = |v: Value| Reply::status(200, v);
        let mut skills = skills.lock();
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["v1", "skills"]) => {
                let id = format!("skill_{name}_{next}");
                let version = format!("17000000000000{next:02}");
                skills.insert(id.clone(), vec![version.clone()]);
                json(json!({"id": id, "type": "skill", "display_title": "x", "display_name": "x",
                    "latest_version": version, "latest_version_id": version, "source": "custom",
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}))
            }
            ("POST", ["v1", "skills", id, "versions"]) => match skills.get_mut(*id) {
                Some(v) => {
                    let version = format!("17000000000001{next:02}");
                    v.push(version.clone());
                    json(json!({"id": version, "version": version, "skill_id": id,
                        "type": "skill_version", "created_at": "2026-01-01T00:00:00Z"}))
                }
                None => Reply::status(404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no skill"}})),
            },
            ("DELETE", ["v1", "skills", id, "versions", v]) => {
                if let Some(list) = skills.get_mut(*id) {
                    list.retain(|x| x != v);
                }
                json(json!({"id": v, "type": "skill_version_deleted"}))
            }
            ("DELETE", ["v1", "skills", id]) => {
                if skills.get(*id).is_some_and(|v| !v.is_empty()) {
                    return Reply::status(400, json!({"type": "error", "error": {"type": "invalid_request_error", "message": "delete the versions first"}}));
                }
                skills.remove(*id);
                json(json!({"id": id, "type": "skill_deleted"}))
            }
            ("POST", ["v1", "messages"]) => json(json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": format!("from {name}")}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}})),
            _ => Reply::status(404, json!({"type": "error", "error": {"type": "not_found_error", "message": r.path}})),
        }
    }))
    .await
}

struct Setup {
    db: TestDb,
    a1: MockUpstream,
    a2: MockUpstream,
    gw: TestGateway,
}

async fn setup(extra: &str) -> Setup {
    let db = TestDb::create().await;
    let (a1, a2) = (account("one").await, account("two").await);
    let yaml = format!(
        "model_list:
  - model_name: claude-account-1
    tianji_params: {{model: anthropic/claude-x, api_base: \"{b1}\", api_key: sk-ant-one}}
  - model_name: claude-account-2
    tianji_params: {{model: anthropic/claude-x, api_base: \"{b2}\", api_key: sk-ant-two}}
  - model_name: claude
    tianji_params: {{model: anthropic/claude-x, api_base: \"{b1}\", api_key: sk-ant-one}}
  - model_name: claude
    tianji_params: {{model: anthropic/claude-x, api_base: \"{b2}\", api_key: sk-ant-two}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{u}\"
{extra}",
        b1 = a1.base().trim_end_matches("/v1"),
        b2 = a2.base().trim_end_matches("/v1"),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    Setup { db, a1, a2, gw }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn key(gw: &TestGateway, body: Value) -> String {
    let r = send(
        Method::POST,
        &gw.url("/key/generate"),
        &[("authorization", &bearer(MASTER_KEY))],
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// A multipart form of `files` (and `fields`).
fn form(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Bytes) {
    let b = "xTESTx";
    let mut out = Vec::new();
    for (k, v) in fields {
        out.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, data) in files {
        out.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"files[]\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={b}"),
        Bytes::from(out),
    )
}

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const MD: &str = "---\nname: notes\ndescription: Take notes\n---\nWrite them down.\n";

async fn upload(gw: &TestGateway, key: &str, query: &str, files: &[(&str, &[u8])]) -> Resp {
    let (ct, body) = form(&[], files);
    send(
        Method::POST,
        &gw.url(&format!("/v1/skills?beta=true{query}")),
        &[("authorization", &bearer(key)), ("content-type", &ct)],
        body,
    )
    .await
}

async fn get(gw: &TestGateway, key: &str, path: &str) -> Resp {
    send(
        Method::GET,
        &gw.url(path),
        &[("authorization", &bearer(key))],
        Bytes::new(),
    )
    .await
}

async fn stored(db: &TestDb) -> i64 {
    let c = db.client().await;
    let n: i64 = c
        .query_one(r#"SELECT count(*) FROM "TianjiLLM_SkillsTable""#, &[])
        .await
        .unwrap()
        .get(0);
    n
}

#[tokio::test]
async fn the_anthropic_sdk_manages_skills_on_the_chosen_account_and_in_the_gateway() {
    let s = setup("").await;
    let out = crate::it::sdk::run_python_script(
        "skills_sdk.py",
        &s.gw.url(""),
        MASTER_KEY,
        &["claude-account-1"],
    )
    .await;
    let made: Value = out
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the script's JSON line");
    let on_account = made["on_account"].as_str().unwrap();
    // US6 scenario 5: the skill went to account one, with its credential, never to account two
    let reqs = s.a1.requests();
    let created: Vec<&Recorded> = reqs
        .iter()
        .filter(|r| r.path.starts_with("/v1/skills") && r.method == Method::POST)
        .collect();
    assert_eq!(created.len(), 2, "create + new version");
    let version_deleted = reqs
        .iter()
        .any(|r| r.method == Method::DELETE && r.path.contains("/versions/"));
    assert!(version_deleted, "the version deleted on the account too");
    for r in reqs.iter().filter(|r| r.path.starts_with("/v1/skills")) {
        assert_eq!(r.headers["x-api-key"], "sk-ant-one");
        assert!(
            r.headers["anthropic-beta"]
                .to_str()
                .unwrap()
                .contains("skills")
        );
    }
    for r in &created {
        assert!(!r.text().contains("x-tianji-model"));
    }
    assert!(created[0].text().contains("pdf-tools/SKILL.md"));
    assert!(s.a2.requests().is_empty());
    // US6 scenario 1: stored in the database with its account
    let c = s.db.client().await;
    let row = c
        .query_one(
            r#"SELECT display_title, metadata, length(file_content) FROM "TianjiLLM_SkillsTable" WHERE skill_id = $1"#,
            &[&on_account],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "PDF tools");
    let meta: Value = row.get(1);
    assert_eq!(meta["model"], "claude-account-1");
    assert_eq!(meta["backend"], "anthropic");
    assert!(row.get::<_, i32>(2) > 0);
    // US6 scenario 4: the gateway-kept skill was deleted; the account's stays
    assert_eq!(stored(&s.db).await, 1);
    // deleting the account's skill deletes its versions there first, then the skill
    let r = send(
        Method::DELETE,
        &s.gw.url(&format!("/v1/skills/{on_account}?beta=true")),
        &[("authorization", &bearer(MASTER_KEY))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "skill_deleted");
    assert_eq!(stored(&s.db).await, 0);
}

#[tokio::test]
async fn unsafe_or_oversize_uploads_are_refused_and_nothing_is_stored() {
    let s = setup("  skill_max_upload_mb: 0.05\n").await;
    let traversal = zip_of(&[("notes/SKILL.md", MD), ("notes/../../etc/passwd", "x")]);
    let r = upload(&s.gw, MASTER_KEY, "", &[("notes.zip", &traversal)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Unsafe path"), "{}", r.text());
    let no_md = zip_of(&[("notes/README.md", "x")]);
    let r = upload(&s.gw, MASTER_KEY, "", &[("notes.zip", &no_md)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("SKILL.md"), "{}", r.text());
    let no_desc = zip_of(&[("notes/SKILL.md", "---\nname: notes\n---\nx")]);
    let r = upload(&s.gw, MASTER_KEY, "", &[("notes.zip", &no_desc)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("description"), "{}", r.text());
    // over the cap (0.05 MB): 413, with an account named too (nothing forwarded)
    let big = "y".repeat(120_000);
    let r = upload(
        &s.gw,
        MASTER_KEY,
        "&model=claude-account-1",
        &[
            ("notes/SKILL.md", MD.as_bytes()),
            ("notes/big.txt", big.as_bytes()),
        ],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string());
    let r = upload(&s.gw, MASTER_KEY, "", &[("x", b"not a form at all")]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(stored(&s.db).await, 0);
    assert!(s.a1.requests().is_empty());
}

#[tokio::test]
async fn a_key_reads_only_its_own_or_granted_skills() {
    let s = setup("").await;
    let alice = key(&s.gw, json!({"user_id": "alice"})).await;
    let bob = key(&s.gw, json!({"user_id": "bob"})).await;
    let zip = zip_of(&[("notes/SKILL.md", MD)]);
    let r = upload(&s.gw, &alice, "", &[("notes.zip", &zip)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let carol = key(
        &s.gw,
        json!({"user_id": "carol", "object_permission": {"skills": [id]}}),
    )
    .await;
    // bob: not listed, not readable, cannot delete
    let list = get(&s.gw, &bob, "/v1/skills?beta=true").await.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(
        get(&s.gw, &bob, &format!("/v1/skills/{id}")).await.status,
        404
    );
    assert_eq!(
        get(&s.gw, &bob, &format!("/v1/skills/{id}/archive"))
            .await
            .status,
        404
    );
    let r = send(
        Method::DELETE,
        &s.gw.url(&format!("/v1/skills/{id}")),
        &[("authorization", &bearer(&bob))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // carol was granted it: reads it, cannot delete it
    let list = get(&s.gw, &carol, "/v1/skills").await.json();
    assert_eq!(list["data"][0]["id"], id.as_str(), "{list}");
    let r = send(
        Method::DELETE,
        &s.gw.url(&format!("/v1/skills/{id}")),
        &[("authorization", &bearer(&carol))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // discovery: alice's index names the skill and its archive, whose digest matches
    let index = get(&s.gw, &alice, "/.well-known/agent-skills/index.json")
        .await
        .json();
    let entry = &index["skills"][0];
    assert_eq!(entry["name"], "notes");
    assert_eq!(entry["type"], "archive");
    let url = entry["url"].as_str().unwrap();
    let path = &url[url.find("/v1/").unwrap()..];
    let archive = get(&s.gw, &alice, path).await;
    assert_eq!(archive.status, 200);
    assert_eq!(archive.header("content-type"), Some("application/zip"));
    use sha2::Digest as _;
    let digest: String = sha2::Sha256::digest(&archive.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(entry["digest"], format!("sha256:{digest}"));
    assert_eq!(archive.body.as_ref(), zip.as_slice());
    assert_eq!(
        get(&s.gw, &bob, "/.well-known/agent-skills/index.json")
            .await
            .json()["skills"],
        json!([])
    );
    // alice deletes it
    let r = send(
        Method::DELETE,
        &s.gw.url(&format!("/v1/skills/{id}")),
        &[("authorization", &bearer(&alice))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stored(&s.db).await, 0);
}

#[tokio::test]
async fn a_message_naming_a_skill_goes_to_the_account_holding_it() {
    let s = setup("").await;
    let md = MD.replace("notes", "sheets");
    let zip = zip_of(&[("sheets/SKILL.md", &md)]);
    let r = upload(
        &s.gw,
        MASTER_KEY,
        "&model=claude-account-2",
        &[("sheets.zip", &zip)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("skill_two_"), "{id}");
    let body = json!({
        "model": "claude", "max_tokens": 50,
        "messages": [{"role": "user", "content": "make a sheet"}],
        "container": {"skills": [{"type": "custom", "skill_id": id, "version": "latest"}]},
        "tools": [{"type": "code_execution_20250825", "name": "code_execution"}],
    });
    for _ in 0..6 {
        let r = send(
            Method::POST,
            &s.gw.url("/v1/messages"),
            &[
                ("authorization", &bearer(MASTER_KEY)),
                ("anthropic-beta", "skills-2025-10-02"),
            ],
            Bytes::from(body.to_string()),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["content"][0]["text"], "from two");
    }
    let sent =
        s.a2.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/messages")
            .count();
    assert_eq!(sent, 6);
    // the group has no deployment on the account holding the skill: a clear 400
    let mut other = body.clone();
    other["model"] = json!("claude-account-1");
    let r = send(
        Method::POST,
        &s.gw.url("/v1/messages"),
        &[("authorization", &bearer(MASTER_KEY))],
        Bytes::from(other.to_string()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(&id), "{}", r.text());
}
