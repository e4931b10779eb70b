//! The gateway's routes but the management API's (those are in `crate::admin::routes`): each
//! declared once, on one line, with all its paths, its methods, a one-line description and the
//! [`Route`] that `crate::dispatch` serves it with. LLM routes answer with and without `/v1`;
//! the Azure aliases take the model from the path.

use super::{Methods, Route};
use crate::managed::{At, Kind};
use crate::pipeline::parse::Expect::{self, *};
use crate::rag_api::At as RagAt;
use crate::skills_api::At as SkillAt;

/// One route.
#[derive(Debug)]
pub struct Endpoint {
    /// Every path it answers. `{provider}` stands for each prefix of
    /// `crate::passthrough::PROVIDERS`.
    pub paths: &'static [&'static str],
    pub methods: Methods,
    /// What it does, in one line.
    pub about: &'static str,
    pub route: Route,
}

/// An LLM call with the model in the body.
const fn llm(expect: Expect) -> Route {
    Route::Llm {
        expect,
        path_model: false,
    }
}

/// An LLM call with the model in the path (Azure's paths).
const fn azure(expect: Expect) -> Route {
    Route::Llm {
        expect,
        path_model: true,
    }
}

/// `[paths] METHOD|METHOD "about" => route;`, one route a line.
macro_rules! table {
    ($( [$($path:literal),+ $(,)?] $($m:ident)|+ $about:literal => $route:expr; )*) => {
        &[$(
            Endpoint {
                paths: &[$($path),+],
                methods: Methods::NONE$(.or(Methods::$m))+,
                about: $about,
                route: $route,
            },
        )*]
    };
}

/// Every route but the management API's.
pub static ENDPOINTS: &[Endpoint] = table! {
    ["/v1/chat/completions", "/chat/completions"] POST "Chat completions (OpenAI's format)" => llm(Chat);
    ["/v1/engines/{model}/chat/completions", "/engines/{model}/chat/completions", "/openai/deployments/{model}/chat/completions"] POST "Chat completions, the model in the path (Azure)" => azure(Chat);
    ["/v1/completions", "/completions"] POST "Text completions" => llm(Completion);
    ["/v1/engines/{model}/completions", "/engines/{model}/completions", "/openai/deployments/{model}/completions"] POST "Text completions, the model in the path (Azure)" => azure(Completion);
    ["/v1/embeddings", "/embeddings"] POST "Embeddings" => llm(Embedding);
    ["/v1/engines/{model}/embeddings", "/engines/{model}/embeddings", "/openai/deployments/{model}/embeddings"] POST "Embeddings, the model in the path (Azure)" => azure(Embedding);
    ["/v1/responses", "/responses"] POST "Create a response (OpenAI Responses API)" => llm(Responses);
    ["/v1/responses/{id}", "/responses/{id}"] GET|DELETE "Get or delete a stored response" => Route::ResponseItem;
    ["/v1/responses/{id}/cancel", "/responses/{id}/cancel"] POST "Cancel a background response" => Route::ResponseCancel;
    ["/v1/responses/{id}/input_items", "/responses/{id}/input_items"] GET "A response's input items" => Route::ResponseInputItems;
    ["/v1/messages", "/messages"] POST "Anthropic Messages" => llm(Messages);
    ["/v1/messages/count_tokens", "/messages/count_tokens"] POST "Count the tokens of an Anthropic Messages request" => Route::CountTokens;
    ["/v1/messages/batches", "/messages/batches"] GET|POST "Create an Anthropic message batch (routed by its requests' model; batch rate limits), list the caller's" => Route::Managed(Kind::MessageBatch, At::Collection);
    ["/v1/messages/batches/{id}", "/messages/batches/{id}"] GET|DELETE "Get or delete an Anthropic message batch" => Route::Managed(Kind::MessageBatch, At::Item);
    ["/v1/messages/batches/{id}/results", "/messages/batches/{id}/results"] GET "A message batch's results (JSONL, streamed; spend booked from their usage)" => Route::Managed(Kind::MessageBatch, At::Results);
    ["/v1/messages/batches/{id}/cancel", "/messages/batches/{id}/cancel"] POST "Cancel a message batch" => Route::Managed(Kind::MessageBatch, At::Cancel);
    ["/v1beta/models/{*model}"] POST "Gemini's API: {model}:generateContent, :streamGenerateContent, :countTokens" => Route::Gemini;
    ["/v1/images/generations", "/images/generations"] POST "Image generation" => llm(ImageGeneration);
    ["/openai/deployments/{model}/images/generations"] POST "Image generation, the model in the path (Azure)" => azure(ImageGeneration);
    ["/v1/images/edits", "/images/edits"] POST "Image edits (multipart upload)" => llm(ImageEdit);
    ["/openai/deployments/{model}/images/edits"] POST "Image edits, the model in the path (Azure)" => azure(ImageEdit);
    ["/v1/images/variations", "/images/variations"] POST "Image variations (multipart upload)" => llm(ImageVariation);
    ["/v1/audio/speech", "/audio/speech"] POST "Text to speech" => llm(Speech);
    ["/openai/deployments/{model}/audio/speech"] POST "Text to speech, the model in the path (Azure)" => azure(Speech);
    ["/v1/audio/transcriptions", "/audio/transcriptions"] POST "Speech to text (multipart upload)" => llm(Transcription);
    ["/openai/deployments/{model}/audio/transcriptions"] POST "Speech to text, the model in the path (Azure)" => azure(Transcription);
    ["/v1/audio/translations", "/audio/translations"] POST "Speech to English text (multipart upload)" => llm(Translation);
    ["/openai/deployments/{model}/audio/translations"] POST "Speech to English text, the model in the path (Azure)" => azure(Translation);
    ["/v1/moderations", "/moderations"] POST "Moderation" => llm(Moderation);
    ["/v1/rerank", "/rerank", "/v2/rerank"] POST "Rerank documents" => llm(Rerank);
    ["/v1/ocr", "/ocr"] POST "OCR of a document or image (Mistral's shape: JSON, or a multipart upload of `file`)" => llm(Ocr);
    ["/v1/search", "/search", "/v1/search/{model}", "/search/{model}"] POST "Web search through a configured search tool" => Route::Search;
    ["/v1/search/tools", "/search/tools"] GET "List the search tools" => Route::SearchTools;
    ["/guardrails/list"] GET "List the guardrails (params' secrets hidden)" => Route::GuardrailsList;
    ["/v2/guardrails/list"] GET "List the guardrails with their ids (params' secrets hidden)" => Route::GuardrailsListV2;
    ["/guardrails/apply_guardrail", "/apply_guardrail"] POST "Run one guardrail on a text" => Route::ApplyGuardrail;
    ["/v1/files", "/files"] GET|POST "Upload a file to a deployment, or to several at once (target_model_names: one unified id); list the caller's files" => Route::Managed(Kind::File, At::Collection);
    ["/v1/files/{id}", "/files/{id}"] GET|DELETE "Get or delete a file (a unified file: every copy)" => Route::Managed(Kind::File, At::Item);
    ["/v1/files/{id}/content", "/files/{id}/content"] GET "A file's content" => Route::Managed(Kind::File, At::Content);
    ["/v1/batches", "/batches"] GET|POST "Create a batch (batch rate limits), list the caller's batches" => Route::Managed(Kind::Batch, At::Collection);
    ["/v1/batches/{id}", "/batches/{id}"] GET "Get a batch" => Route::Managed(Kind::Batch, At::Item);
    ["/v1/batches/{id}/cancel", "/batches/{id}/cancel"] POST "Cancel a batch" => Route::Managed(Kind::Batch, At::Cancel);
    ["/v1/fine_tuning/jobs", "/fine_tuning/jobs"] GET|POST "Create a fine-tuning job, list the caller's jobs" => Route::Managed(Kind::FineTune, At::Collection);
    ["/v1/fine_tuning/jobs/{id}", "/fine_tuning/jobs/{id}"] GET "Get a fine-tuning job" => Route::Managed(Kind::FineTune, At::Item);
    ["/v1/fine_tuning/jobs/{id}/cancel", "/fine_tuning/jobs/{id}/cancel"] POST "Cancel a fine-tuning job" => Route::Managed(Kind::FineTune, At::Cancel);
    ["/v1/fine_tuning/jobs/{id}/events", "/fine_tuning/jobs/{id}/events"] GET "A fine-tuning job's events" => Route::Managed(Kind::FineTune, At::Events);
    ["/v1/fine_tuning/jobs/{id}/checkpoints", "/fine_tuning/jobs/{id}/checkpoints"] GET "A fine-tuning job's checkpoints" => Route::Managed(Kind::FineTune, At::Checkpoints);
    ["/v1/videos", "/videos"] GET|POST "Generate a video (JSON or multipart with an input_reference image; OpenAI/Azure Sora, Gemini/Vertex Veo, RunwayML; priced per second), list the caller's" => Route::Managed(Kind::Video, At::Collection);
    ["/v1/videos/{id}", "/videos/{id}"] GET|DELETE "A video job's status (Veo and RunwayML jobs polled into OpenAI's video object), delete it" => Route::Managed(Kind::Video, At::Item);
    ["/v1/videos/{id}/content", "/videos/{id}/content"] GET "A finished video's bytes, streamed" => Route::Managed(Kind::Video, At::Content);
    ["/v1/videos/{id}/remix", "/videos/{id}/remix"] POST "Remix a video with a new prompt (OpenAI's API)" => Route::Managed(Kind::Video, At::Remix);
    ["/v1/containers", "/containers"] GET|POST "Create a code-interpreter container (OpenAI/Azure), list the caller's" => Route::Managed(Kind::Container, At::Collection);
    ["/v1/containers/{id}", "/containers/{id}"] GET|DELETE "A container: get, delete" => Route::Managed(Kind::Container, At::Item);
    ["/v1/containers/{id}/files", "/containers/{id}/files"] GET|POST "A container's files: upload (multipart or a /v1/files file_id), list" => Route::Managed(Kind::Container, At::Files);
    ["/v1/containers/{id}/files/{file_id}", "/containers/{id}/files/{file_id}"] GET|DELETE "One file of a container: get, delete" => Route::Managed(Kind::Container, At::File);
    ["/v1/containers/{id}/files/{file_id}/content", "/containers/{id}/files/{file_id}/content"] GET "A container file's bytes, streamed" => Route::Managed(Kind::Container, At::FileContent);
    ["/v1/models", "/models"] GET "List the model groups the caller may use" => Route::Models;
    ["/v1/models/{*model}", "/models/{*model}"] GET "One model group (POST {model}:generateContent is Gemini's v1 API)" => Route::ModelInfo;
    ["/mcp", "/mcp/", "/mcp/{key}"] POST|DELETE "MCP gateway (Streamable HTTP): the tools of the MCP servers the key may use; /mcp/{server}: one server" => Route::Mcp;
    ["/mcp/sse", "/mcp/{key}/sse"] GET "MCP gateway over the older SSE transport (2024-11-05): an event stream whose `endpoint` event names where to POST; /mcp/{server}/sse: one server" => Route::McpSse;
    ["/mcp/sse/messages"] POST "A message of an MCP SSE session (?session_id=), answered on its event stream" => Route::McpSseMessages;
    ["/{provider}/{*path}"] ANY "Provider pass-through: the provider's own API, with the gateway's keys and spend" => Route::PassThrough;
    ["/v1/skills", "/skills"] GET|POST "Skills: upload one (multipart zip or files; kept on the Anthropic account of ?model= / x-tianji-model, else in the gateway), list the caller's" => Route::Skills(SkillAt::Collection);
    ["/v1/skills/{id}", "/skills/{id}"] GET|DELETE "One skill (DELETE: its creator or an admin)" => Route::Skills(SkillAt::Item);
    ["/v1/skills/{id}/archive"] GET "A skill's latest version as a zip" => Route::Skills(SkillAt::Archive);
    ["/v1/skills/{id}/versions"] GET|POST "A skill's versions (POST: upload a new one)" => Route::Skills(SkillAt::Versions);
    ["/v1/skills/{id}/versions/{version}"] GET|DELETE "One version of a skill" => Route::Skills(SkillAt::Version);
    ["/v1/skills/{id}/versions/{version}/content"] GET "One version of a skill as a zip" => Route::Skills(SkillAt::VersionContent);
    ["/.well-known/agent-skills/index.json", "/.well-known/skills/index.json"] GET "Skills discovery: the caller's skills with their archives' URLs and digests" => Route::Skills(SkillAt::Index);
    ["/v1/vector_stores", "/vector_stores"] GET|POST "Vector stores: create one (the gateway's own, or custom_llm_provider openai/azure: hosted by that deployment), list the caller's" => Route::Rag(RagAt::Stores);
    ["/v1/vector_stores/{id}", "/vector_stores/{id}"] GET|POST|DELETE "One vector store: get, update (POST), delete" => Route::Rag(RagAt::Store);
    ["/v1/vector_stores/{id}/search", "/vector_stores/{id}/search"] POST "Search a vector store (query, max_num_results, filters, score threshold)" => Route::Rag(RagAt::Search);
    ["/v1/vector_stores/{id}/files", "/vector_stores/{id}/files"] GET|POST "A vector store's files: attach a /v1/files id (ingested in the background), list" => Route::Rag(RagAt::Files);
    ["/v1/vector_stores/{id}/files/{file_id}", "/vector_stores/{id}/files/{file_id}"] GET|POST|DELETE "One file of a vector store: get, update attributes (POST), delete" => Route::Rag(RagAt::File);
    ["/v1/vector_stores/{id}/files/{file_id}/content", "/vector_stores/{id}/files/{file_id}/content"] GET "A vector store file's text, chunk by chunk" => Route::Rag(RagAt::FileContent);
    ["/v1/vector_stores/{id}/file_batches", "/vector_stores/{id}/file_batches"] POST "Attach several files to a vector store at once" => Route::Rag(RagAt::Batches);
    ["/v1/vector_stores/{id}/file_batches/{batch_id}", "/vector_stores/{id}/file_batches/{batch_id}"] GET "A file batch of a vector store" => Route::Rag(RagAt::Batch);
    ["/v1/vector_stores/{id}/file_batches/{batch_id}/cancel", "/vector_stores/{id}/file_batches/{batch_id}/cancel"] POST "Cancel a file batch (its files not yet ingested)" => Route::Rag(RagAt::BatchCancel);
    ["/v1/vector_stores/{id}/file_batches/{batch_id}/files", "/vector_stores/{id}/file_batches/{batch_id}/files"] GET "The files of a file batch" => Route::Rag(RagAt::BatchFiles);
    ["/v1/rag/ingest", "/rag/ingest"] POST "RAG ingest: a document (upload, file_url or file_id) chunked, embedded and stored in a vector store" => Route::Rag(RagAt::Ingest);
    ["/v1/rag/query", "/rag/query"] POST "RAG query: vector store search, optional rerank, then a chat completion with the sources as context" => Route::Rag(RagAt::Query);
    ["/claude-code/marketplace.json"] GET "The Claude Code plugin marketplace catalogue (public unless claude_code_marketplace_auth_required; ?key= accepted)" => Route::Marketplace;
    ["/routes"] GET "Every route: its paths, methods, who may call it and what it does (any valid key)" => Route::Routes;
    ["/health/liveliness", "/health/liveness"] GET "Liveness probe" => Route::Liveliness;
    ["/metrics"] GET "Prometheus metrics, with callbacks: [prometheus] (viewers unless require_auth_for_metrics_endpoint: false)" => Route::Metrics;
    ["/health/readiness"] GET "Readiness probe (database, cache)" => Route::Readiness;
    ["/health"] GET "Check every deployment now (viewers)" => Route::Health;
    ["/health/history"] GET "Stored deployment health checks (viewers)" => Route::HealthHistory;
};
