//! `/v1/search/{tool}`: each provider gets its own request with its key, the answer comes back
//! in one shape; tools are listed; bad input and unknown tools are JSON 4xx.

use std::sync::Arc;

use serde_json::json;

use crate::common::TestGateway;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};

#[tokio::test]
async fn search_tools_through_tavily_brave_exa_and_searxng() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let item = |t: &str| json!({"title": t, "url": format!("https://{t}.example"), "content": "c", "description": "d", "text": "x"});
        match r.path.as_str() {
            "/res/v1/web/search" => Reply::status(200, json!({"web": {"results": [item("brave1"), item("brave2"), item("brave3")]}})),
            "/search" if r.method == http::Method::GET => Reply::status(200, json!({"results": [item("sx")]})),
            "/search" => Reply::status(200, json!({"results": [item("one"), item("two")]})),
            _ => Reply::status(404, json!({"error": "no"})),
        }
    }))
    .await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list: []
search_tools:
  - search_tool_name: web
    tianji_params: {{search_provider: tavily, api_key: tv-secret, api_base: \"http://{a}\"}}
    search_tool_info: {{description: General web search}}
  - search_tool_name: brave
    litellm_params: {{search_provider: brave, api_key: br-secret, api_base: \"http://{a}/res/v1/web\"}}
  - search_tool_name: exa
    tianji_params: {{search_provider: exa_ai, api_key: ex-secret, api_base: \"http://{a}\"}}
  - search_tool_name: sx
    tianji_params: {{search_provider: searxng, api_base: \"http://{a}\"}}
"
    ))
    .await;
    let ask = json!({"query": "rust gateway", "max_results": 2, "search_domain_filter": ["docs.rs"], "country": "US"});

    let r = gw.post("/v1/search/web", &ask.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"object": "search", "results": [
            {"title": "one", "url": "https://one.example", "snippet": "c"},
            {"title": "two", "url": "https://two.example", "snippet": "c"}]})
    );
    let sent = up.last();
    assert_eq!(sent.headers["authorization"], "Bearer tv-secret");
    assert_eq!(
        sent.json(),
        json!({"query": "rust gateway", "max_results": 2, "include_domains": ["docs.rs"], "country": "us"})
    );

    let r = gw.post("/search/brave", &ask.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["results"].as_array().unwrap().len(),
        2,
        "capped at max_results"
    );
    assert_eq!(r.json()["results"][0]["snippet"], "d");
    let sent = up.last();
    assert_eq!(sent.method, http::Method::GET);
    assert_eq!(
        sent.query,
        "q=rust%20gateway%20site%3Adocs.rs&count=2&country=US"
    );
    assert_eq!(sent.headers["x-subscription-token"], "br-secret");
    assert!(sent.headers.get("authorization").is_none());

    // the tool named in the body
    let mut b = ask.clone();
    b["search_tool_name"] = json!("exa");
    let r = gw.post("/v1/search", &b.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"][0]["snippet"], "x");
    assert_eq!(up.last().headers["x-api-key"], "ex-secret");
    assert_eq!(up.last().json()["numResults"], 2);

    let r = gw
        .post("/v1/search/sx", &json!({"query": "q"}).to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().query, "q=q&format=json");

    // the list, without secrets
    let r = gw.get("/v1/search/tools").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"][0],
        json!({"search_tool_name": "web", "search_provider": "tavily", "description": "General web search"})
    );
    assert!(!r.text().contains("secret"));

    // bad input, unknown tool, no key: nothing sent
    let n = up.requests().len();
    gw.post("/v1/search/web", &json!({"max_results": 2}).to_string())
        .await
        .assert_error(400);
    gw.post(
        "/v1/search/web",
        &json!({"query": "q", "max_results": 50}).to_string(),
    )
    .await
    .assert_error(400);
    gw.post("/v1/search/web", "not json")
        .await
        .assert_error(400);
    gw.post("/v1/search/nope", &json!({"query": "q"}).to_string())
        .await
        .assert_error(404);
    crate::common::send(
        http::Method::POST,
        &gw.url("/v1/search/web"),
        &[],
        bytes::Bytes::from(json!({"query": "q"}).to_string()),
    )
    .await
    .assert_error(401);
    assert_eq!(up.requests().len(), n);
    gw.gw.shutdown().await;
}
