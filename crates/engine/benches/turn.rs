//! A turn through an integration, in process, against a local upstream
//! that answers at once: what the engine itself costs a turn (rendering,
//! the call's plumbing, decoding, fields, rules, messages).
//!
//! `cargo bench -p patchbay-engine`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use patchbay_engine::script::{RuntimeOptions, ScriptRuntime};
use patchbay_engine::{ConversationState, Engine, EngineOptions, Start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOT: &str = r#"name: bench
network:
  allow: [127.0.0.1]
env:
  BASE_URL: null
integrations:
  - name: search
    responseDataVariable: FAQS
    type: api
    method: GET
    url: "{$env.BASE_URL}/search"
    params:
      q: "{$userMessage}"
      locale: "{$botContext.locale}"
    headers:
      X-Conversation: "{$conversationId}"
    customDataFields:
      title: "{$.api_FAQS.items[i].title}"
      id: "{$.api_FAQS.items[i].id}"
TRANSFORM
dialogs:
  - name: faq
    starters: ["*"]
    interactions:
      - name: ask
        type: integration
        integration: search
        rules:
          - name: found
            match:
              apiResult: success
              conditions:
                - field: FAQS.title.count
                  op: greater-than
                  value: "0"
            messages:
              - "Top: {FAQS.title[0]} ({FAQS.title.count} results)"
              - "Also: {FAQS.title[1]}, for {$botContext.locale}"
            next: done
          - name: empty
            match:
              apiResult: success
            next: done
      - name: done
        type: text
        text: Anything else, {$firstname}?
        next: end
"#;

const TRANSFORM: &str = r#"    transformScript: |
      var data = JSON.parse(api_FAQS.jsonData);
      api_FAQS.jsonData = JSON.stringify(data);"#;

/// The upstream's answer: 20 articles, about 2 KiB of JSON.
fn body() -> String {
    let items: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"id":{i},"title":"Article {i}","summary":"How to do thing number {i}, step by step."}}"#))
        .collect();
    format!(r#"{{"items":[{}],"total":20}}"#, items.join(","))
}

/// An HTTP/1.1 upstream on 127.0.0.1 that answers every request on a
/// connection with `body`, keeping it alive.
async fn upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let body = body();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(read) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

async fn engine(base: &str, transform: bool) -> Engine {
    let transform = if transform {
        format!("{TRANSFORM}\n")
    } else {
        String::new()
    };
    let text = BOT.replace("TRANSFORM\n", &transform);
    let bot = patchbay_engine::config::load("bench.yaml", &text)
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|report| {
            panic!(
                "{}",
                report.render(patchbay_engine::config::RenderStyle::Plain)
            )
        });
    let base = base.to_owned();
    let env = Arc::new(move |name: &str| (name == "BASE_URL").then(|| base.clone()));
    let scripts = ScriptRuntime::new(RuntimeOptions::default());
    Engine::new(bot, EngineOptions::new(env, scripts))
        .await
        .expect("engine")
}

fn state() -> ConversationState {
    let mut state = ConversationState {
        conversation_id: "c-1".to_owned(),
        first_name: "Ada".to_owned(),
        ..ConversationState::default()
    };
    state.set(
        "locale",
        "en-GB",
        patchbay_engine::script::Persistence::Session,
    );
    state
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = runtime.block_on(upstream());
    for (name, transform) in [
        ("turn_integration", false),
        ("turn_integration_transform", true),
    ] {
        let engine = runtime.block_on(engine(&base, transform));
        let turn = runtime
            .block_on(engine.run_turn(state(), Start::Message, "reset password"))
            .expect("turn");
        assert_eq!(
            turn.texts(),
            [
                "Top: Article 0 (20 results)",
                "Also: Article 1, for en-GB",
                "Anything else, Ada?"
            ],
            "{name}"
        );
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                engine
                    .run_turn(state(), Start::Message, "reset password")
                    .await
                    .expect("turn")
            });
        });
    }
}

criterion_group!(turn, benches);
criterion_main!(turn);
