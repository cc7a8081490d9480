//! Pretty-printing a JSON body for the payload view without parsing it into a map, so that key order,
//! number spelling and string escapes stay exactly as the provider sent them.

/// Deeper bodies are shown as they came: indenting them would multiply their size.
const MAX_DEPTH: usize = 64;

/// The body indented by two spaces per level, or `None` when it is not JSON or nests deeper than
/// [`MAX_DEPTH`].
pub fn pretty(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Skip the whitespace before the next token, so that `{}` and `[]` stay on one line.
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn indents_and_keeps_order_numbers_and_escapes() {
        let body = br#"{"z":1.50,"a":{"s":"x, \"y\": {z}","e":[],"o":{ }},"l":[1,2]}"#;
        let want = "{\n  \"z\": 1.50,\n  \"a\": {\n    \"s\": \"x, \\\"y\\\": {z}\",\n    \"e\": [],\n    \"o\": {}\n  },\n  \"l\": [\n    1,\n    2\n  ]\n}";
        assert_eq!(pretty(body).as_deref(), Some(want));
    }

    #[test]
    fn refuses_what_is_not_json_or_nests_too_deep() {
        assert_eq!(pretty(b"<xml/>"), None);
        assert_eq!(pretty(br#"{"cut": "in the mid"#), None);
        let deep = format!("{}{}", "[".repeat(500_000), "]".repeat(500_000));
        assert_eq!(pretty(deep.as_bytes()), None);
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(pretty(ok.as_bytes()).is_some());
    }
}
