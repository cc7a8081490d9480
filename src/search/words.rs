//! The values of a JSON body, without its keys and punctuation: what the body field indexes words from.
//!
//! Keys repeat in every delivery of a topic (`admin_graphql_api_id` alone is four words) and say nothing an
//! operator looks for; a path query (`customer.email:…`) is how a key takes part in a search. Leaving them
//! out halves the words each delivery costs to index and merge. Each value is its own text, so a phrase
//! matches within one value, as it did when keys stood between values.

use std::borrow::Cow;

/// Calls `value` with each string value (unescaped) and number (as written) of `json`, in order. `json`
/// should be valid JSON (the caller has parsed it); anything else gives some of its text, never a panic.
pub(super) fn values<'a>(json: &'a str, value: impl FnMut(Cow<'a, str>)) {
    scan(json, |_| {}, value);
}

/// `json` with every key, quotes included, replaced by spaces: the same length and offsets, so a snippet
/// cut from it shows where the values that matched are, never a key that happens to share their words.
pub(super) fn without_keys(json: &str) -> String {
    let mut out = json.as_bytes().to_vec();
    scan(json, |key| out[key].fill(b' '), |_| {});
    // Whole characters became spaces, so this is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| json.to_owned())
}

fn scan<'a>(json: &'a str, mut key: impl FnMut(std::ops::Range<usize>), mut value: impl FnMut(Cow<'a, str>)) {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                let mut escaped = false;
                while end < b.len() && b[end] != b'"' {
                    if b[end] == b'\\' {
                        escaped = true;
                        end += 1;
                    }
                    end += 1;
                }
                let end = end.min(b.len());
                i = (end + 1).min(b.len());
                let mut next = i;
                while next < b.len() && b[next].is_ascii_whitespace() {
                    next += 1;
                }
                if b.get(next) == Some(&b':') {
                    key(start - 1..i);
                } else if !escaped {
                    value(Cow::Borrowed(&json[start..end]));
                } else if let Some(s) = json.get(start - 1..i).and_then(|q| serde_json::from_str::<String>(q).ok()) {
                    value(Cow::Owned(s));
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                value(Cow::Borrowed(&json[start..i]));
            }
            // Structure, white space, and the letters of true, false and null.
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(json: &str) -> Vec<String> {
        let mut out = Vec::new();
        values(json, |v| out.push(v.into_owned()));
        out
    }

    #[test]
    fn values_come_without_keys_literals_or_punctuation() {
        let json = r#"{"id": 450789469, "email" :"Jon@Example.com", "total": -12.50e1, "tags": ["a b", "c"],
            "paid": true, "note": null, "nested": {"key": "value"}, "": "", "empty": {}}"#;
        assert_eq!(all(json), ["450789469", "Jon@Example.com", "-12.50e1", "a b", "c", "value", ""]);
    }

    #[test]
    fn keys_become_spaces_and_nothing_moves() {
        let json = r#"{"email": "a@b.c", "naïve" :{"n":1}, "t":"x\"y"}"#;
        let blank = without_keys(json);
        assert_eq!(blank.len(), json.len());
        assert_eq!(blank, r#"{       : "a@b.c",          :{   :1},    :"x\"y"}"#);
        assert!(!blank.contains("email") && !blank.contains("na"));
        assert_eq!(without_keys("{\"unclosed"), "{\"unclosed", "not JSON: left as it is");
    }

    #[test]
    fn escapes_are_read_as_json_reads_them() {
        let json = r#"{"k\"ey": "say \"hi\"", "path": "a\\b", "é": "caf\u00e9 \ud83d\ude00", "t": "\"", "u": "x"}"#;
        assert_eq!(all(json), ["say \"hi\"", "a\\b", "café 😀", "\"", "x"]);
    }

    #[test]
    fn every_value_of_an_order_is_found_as_json_reads_it() {
        let text = r##"{"id":450789469,"admin_graphql_api_id":"gid://shopify/Order/450789469","name":"#1001",
            "email":"jon@example.com","created_at":"2026-12-07T11:00:00+00:00","total_price":"199.00",
            "taxes_included":false,"total_weight":750,"tax_lines":[{"title":"Sales tax","rate":0.08}],
            "line_items":[{"id":1,"sku":"SKU-1042","quantity":3,"properties":[]}],"note":null,
            "customer":{"first_name":"Jon","last_name":"Snow","tags":"vip, \"gold\""}}"##;
        let mut found = all(text);
        fn leaves(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Number(n) => out.push(n.to_string()),
                serde_json::Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
                serde_json::Value::Object(o) => o.values().for_each(|v| leaves(v, out)),
                _ => {}
            }
        }
        let mut expected = Vec::new();
        leaves(&serde_json::from_str(text).unwrap(), &mut expected);
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
    }
}
