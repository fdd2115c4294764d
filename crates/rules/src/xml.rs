//! XML responses seen as JSON, so fields and scripts work the same way.
//!
//! The rule: the document is an object with the root element's name as its
//! only key. An element with neither attributes nor child elements is its
//! text (a string, empty when it has none). Otherwise it is an object:
//! attributes as `"@name"`, child elements by name (an array when a name
//! repeats), and any text as `"#text"`. Namespace prefixes are dropped;
//! comments and processing instructions are skipped.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// Elements nested deeper than this make the document unreadable here.
const MAX_DEPTH: usize = 128;

struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<(String, Value)>,
    text: String,
}

impl Element {
    fn open(start: &BytesStart<'_>) -> Option<Self> {
        let name = start.local_name().as_ref().to_owned();
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute.ok()?;
            let key = attribute.key.local_name().as_ref().to_owned();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()?
                .into_owned();
            attributes.push((key, value));
        }
        Some(Self {
            name,
            attributes,
            children: Vec::new(),
            text: String::new(),
        })
    }

    fn close(self) -> (String, Value) {
        let text = self.text.trim().to_owned();
        if self.attributes.is_empty() && self.children.is_empty() {
            return (self.name, Value::String(text));
        }
        let mut object = Map::new();
        for (key, value) in self.attributes {
            object.insert(format!("@{key}"), Value::String(value));
        }
        for (key, value) in self.children {
            match object.get_mut(&key) {
                Some(Value::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    object.insert(key, value);
                }
            }
        }
        if !text.is_empty() {
            object.insert("#text".to_owned(), Value::String(text));
        }
        (self.name, Value::Object(object))
    }
}

/// Converts an XML document by the rule above; `None` when it is not
/// well-formed XML with one root element.
pub fn xml_to_json(xml: &str) -> Option<Value> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH || root.is_some() {
                    return None;
                }
                stack.push(Element::open(&start)?);
            }
            Event::Empty(start) => {
                let closed = Element::open(&start)?.close();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(closed),
                    None if root.is_none() => root = Some(closed),
                    None => return None,
                }
            }
            Event::End(_) => {
                let closed = stack.pop()?.close();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(closed),
                    None => root = Some(closed),
                }
            }
            Event::Text(text) => {
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&data.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let Some(element) = stack.last_mut() else {
                    continue;
                };
                let name: &str = &reference;
                let resolved = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => reference.resolve_char_ref().ok().flatten(),
                };
                match resolved {
                    Some(c) => element.text.push(c),
                    None => element.text.push_str(&format!("&{name};")),
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return None;
    }
    let (name, value) = root?;
    let mut document = Map::new();
    document.insert(name, value);
    Some(Value::Object(document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_by_the_documented_rule() {
        let xml = r#"<?xml version="1.0"?>
            <results count="2" xmlns:kb="urn:kb">
              <!-- two articles -->
              <kb:article id="1"><title>Reset &amp; recover</title></kb:article>
              <article id="2"><title><![CDATA[Change <email>]]></title></article>
              <empty/>
            </results>"#;
        assert_eq!(
            xml_to_json(xml),
            Some(json!({
                "results": {
                    "@count": "2",
                    "@kb": "urn:kb",
                    "article": [
                        {"@id": "1", "title": "Reset & recover"},
                        {"@id": "2", "title": "Change <email>"}
                    ],
                    "empty": ""
                }
            }))
        );
    }

    #[test]
    fn refuses_what_is_not_one_document() {
        assert_eq!(xml_to_json("<a><b></a>"), None);
        assert_eq!(xml_to_json("<a/><b/>"), None);
        assert_eq!(xml_to_json("not xml"), None);
        let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
        assert_eq!(xml_to_json(&deep), None);
    }
}
