//! The reliability and security suite (docs/reliability.md): each case is a
//! row of a table, run through the whole engine; every row must pass. The
//! tables are written to `target/reliability/` and printed by
//! `cargo xtask reliability`.

mod faults;
mod fuzz;
mod isolation;
mod scripts;
mod ssrf;
mod urls;

pub(crate) use patchbay_tests::table::{Row, report};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    patchbay_tests::rss_kib("self")
}

/// A bot whose interactions each call the local upstream after running
/// `(name, preProcess)`, and answer `FOUND <name>` when the call succeeds.
pub(crate) fn item_bot(name: &str, interactions: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        r#"name: {name}
env:
  UPSTREAM: null
network:
  allow: ["127.0.0.1"]
integrations:
  - name: item
    responseDataVariable: ITEM
    type: api
    method: GET
    url: "{{$env.UPSTREAM}}/item"
    customDataFields:
      name: "{{$.api_ITEM.name}}"
dialogs:
  - name: main
    interactions:
"#
    );
    for (interaction, code) in interactions {
        let code = code.replace('\n', "\n          ");
        yaml.push_str(&format!(
            r#"      - name: {interaction}
        type: integration
        integration: item
        next: end
        preProcess: |
          {code}
        rules:
          - name: found
            match:
              apiResult: success
            messages:
              - "FOUND {{ITEM.name}}"
            next: end
"#
        ));
    }
    yaml
}
