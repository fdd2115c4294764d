//! SIGHUP reloads as strictly as startup: two files naming one bot are
//! refused (startup refuses them too), and both keep their old versions
//! instead of one bot silently replacing the other.

use std::path::Path;
use std::time::{Duration, Instant};

use patchbay_tests::client::{post_json, request};
use serde_json::json;

use crate::serve::Process;

fn bot(name: &str, greeting: &str) -> String {
    format!(
        r#"name: {name}
dialogs:
  - name: main
    interactions:
      - name: hello
        type: question
        text: "{greeting}"
"#
    )
}

async fn greeting(process: &Process, bot: &str) -> serde_json::Value {
    let (status, answer) = post_json(
        process.addr,
        &format!("/v1/bots/{bot}/turns"),
        &json!({"interaction": "hello"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["messages"].clone()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_naming_one_bot_twice_is_refused_and_both_keep_serving() {
    let dir = std::env::temp_dir().join(format!("patchbay-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (first, second) = (dir.join("first.yaml"), dir.join("second.yaml"));
    std::fs::write(&first, bot("one", "I am one")).expect("first");
    std::fs::write(&second, bot("two", "I am two")).expect("second");
    let server = Process::start(&[
        "serve",
        "--bot",
        path(&first),
        "--bot",
        path(&second),
        "--listen",
        "127.0.0.1:0",
    ]);

    // The second file now names the first file's bot.
    std::fs::write(&second, bot("one", "I am an impostor")).expect("impostor");
    server.signal("HUP");
    let started = Instant::now();
    while !server.stderr().contains("second.yaml") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no reload logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, bots) = request(server.addr, "GET", "/v1/bots", "").await;
    assert_eq!(status, 200, "{bots}");
    let bots: serde_json::Value = serde_json::from_str(&bots).expect("json");
    let names: Vec<&str> = bots["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .filter_map(|bot| bot["name"].as_str())
        .collect();
    assert_eq!(names, ["one", "two"], "{bots}");
    assert_eq!(greeting(&server, "one").await, json!(["I am one"]));
    assert_eq!(greeting(&server, "two").await, json!(["I am two"]));
    let log = server.stderr();
    assert!(
        log.contains("reload rejected") && log.contains("`one`"),
        "{log}"
    );

    // Fixed: the next reload takes both files.
    std::fs::write(&second, bot("two", "I am two again")).expect("fixed");
    server.signal("HUP");
    let started = Instant::now();
    while greeting(&server, "two").await != json!(["I am two again"]) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the fixed file was not reloaded:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(greeting(&server, "one").await, json!(["I am one"]));
    let _ = std::fs::remove_dir_all(&dir);
}
