//! Every providers.json entry: `provider/model` goes out with that provider's auth header,
//! prefix, static headers and renames.

use crate::common::TestGateway;
use crate::common::mock_upstream::MockUpstream;
use tianji::providers::Catalog;

#[tokio::test]
async fn every_catalogue_entry_routes_with_its_auth() {
    let up = MockUpstream::start().await;
    let catalog = Catalog::builtin().unwrap();
    let mut yaml = String::from("model_list:\n");
    for name in catalog.names() {
        yaml.push_str(&format!(
            "  - model_name: \"p-{name}\"\n    tianji_params: {{model: \"{name}/some-model\", api_base: \"{}\", api_key: sk-prov-{name}}}\n",
            up.base()
        ));
    }
    let gw = TestGateway::start(&yaml).await;
    for name in catalog.names() {
        let spec = catalog.get(name).unwrap();
        let body = format!(
            r#"{{"model":"p-{name}","messages":[{{"role":"user","content":"hi"}}],"max_completion_tokens":7}}"#
        );
        let r = gw.post("/v1/chat/completions", &body).await;
        if spec.videos_only {
            // refused before any call; its videos route with its auth
            let e = r.assert_error(400);
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("/v1/videos"),
                "{e}"
            );
            let r = gw
                .post(
                    "/v1/videos",
                    &format!(r#"{{"model":"p-{name}","prompt":"waves"}}"#),
                )
                .await;
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            let seen = up.last();
            assert_eq!(seen.path, "/v1/text_to_video", "{name}");
            let auth = &seen.headers[spec.auth_header.to_ascii_lowercase().as_str()];
            assert_eq!(
                auth.to_str().unwrap(),
                format!("{}sk-prov-{name}", spec.auth_prefix)
            );
            for (h, v) in &spec.headers {
                assert_eq!(seen.headers[h.as_str()].to_str().unwrap(), v, "{name}: {h}");
            }
            continue;
        }
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let seen = up.last();
        if spec.chat_via_completions {
            // chat sent as a text completion (tested in compat::config)
            assert_eq!(seen.path, "/v1/completions", "{name}");
            continue;
        }
        assert_eq!(seen.path, "/v1/chat/completions", "{name}");
        let sent = seen.json();
        assert_eq!(sent["model"], "some-model", "{name}");
        let key = format!("sk-prov-{name}");
        let auth = seen
            .headers
            .get(spec.auth_header.to_ascii_lowercase().as_str())
            .unwrap_or_else(|| panic!("{name}: no {}", spec.auth_header));
        assert_eq!(
            auth.to_str().unwrap(),
            format!("{}{key}", spec.auth_prefix),
            "{name}"
        );
        for (h, v) in &spec.headers {
            assert_eq!(
                seen.headers[h.as_str()].to_str().unwrap(),
                v.replace("{api_key}", &key),
                "{name}: {h}"
            );
        }
        match spec.param_mappings.get("max_completion_tokens") {
            Some(to) => {
                assert_eq!(sent[to.as_str()], 7, "{name}");
                assert!(sent.get("max_completion_tokens").is_none(), "{name}");
            }
            None => assert_eq!(sent["max_completion_tokens"], 7, "{name}"),
        }
    }
}
