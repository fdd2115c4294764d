//! docs/embedding.md shows `examples/embed.rs` whole: the doc's `rust` block
//! must be that file, byte for byte, so the snippet readers copy is the
//! program `cargo test` compiles (examples are built with the tests) and
//! `cargo run -p patchbay-engine --example embed` runs.

use std::path::Path;

/// The body of every fenced block of `lang` in `markdown`, in order.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```{lang} block");
    blocks
}

#[test]
fn the_embedding_doc_shows_the_example_that_is_built() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc =
        std::fs::read_to_string(root.join("../../docs/embedding.md")).expect("docs/embedding.md");
    let example =
        std::fs::read_to_string(root.join("examples/embed.rs")).expect("examples/embed.rs");
    let blocks = fenced_blocks(&doc, "rust");
    assert_eq!(
        blocks.len(),
        1,
        "docs/embedding.md has one rust block, the example; others would be built by nothing"
    );
    assert!(
        blocks[0] == example,
        "docs/embedding.md's rust block differs from crates/engine/examples/embed.rs: \
         paste the file into the doc again"
    );
    assert!(
        doc.contains("crates/engine/examples/embed.rs"),
        "the doc names the file it shows"
    );
}

#[test]
fn the_embedding_doc_depends_the_way_that_works() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/embedding.md"),
    )
    .expect("docs/embedding.md");
    let toml = fenced_blocks(&doc, "toml").concat();
    // The crates are not on crates.io (publish = false): a version
    // requirement alone would not resolve, a git dependency does.
    assert!(
        toml.contains("patchbay-engine = { git = \"https://github.com/patchbay-rs/patchbay\""),
        "the dependency is taken by git: {toml}"
    );
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .expect("Cargo.toml");
    assert!(
        manifest.contains("repository = \"https://github.com/patchbay-rs/patchbay\""),
        "the doc's git URL is the workspace's repository"
    );
}
