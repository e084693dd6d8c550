//! Duplicate keys in a build.json's objects. serde_json keeps the last value of a key given
//! twice and says nothing, so a user who pasted a second `"image"` builds something they did not
//! mean. This is a scan of the text (already known to be valid JSON) that tracks where it is as a
//! JSON pointer and which keys each open object has seen, with the line of each.

use std::collections::HashMap;

/// A key given a second (or later) time in one object.
#[derive(Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key, unescaped.
    pub key: String,
    /// The JSON pointer of the key's value (`/source/uri`).
    pub pointer: String,
    /// The line (from 1) of this occurrence, and of the first one.
    pub line: usize,
    pub first_line: usize,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: line {}: the key \"{}\" is given again (first on line {}); the last one is used, so remove the other",
            self.pointer, self.line, self.key, self.first_line
        )
    }
}

/// One open container while scanning.
enum Open {
    /// An object: the keys seen (with their line), the key whose value comes next, and whether
    /// the next string is a key.
    Object { seen: HashMap<String, usize>, key: Option<String>, expect_key: bool },
    /// An array and the index of its current element.
    Array { index: usize },
}

/// Every duplicate key of `text`, in the order they appear. `text` should be valid JSON; on text
/// that is not, the result is whatever was found before the scan lost its way.
pub fn find(text: &str) -> Vec<Duplicate> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'{' => stack.push(Open::Object { seen: HashMap::new(), key: None, expect_key: true }),
            b'[' => stack.push(Open::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Open::Object { expect_key, .. }) => *expect_key = true,
                Some(Open::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let end = string_end(bytes, i);
                let is_key = matches!(stack.last(), Some(Open::Object { expect_key: true, .. }));
                if is_key {
                    // Decoding through serde_json unescapes exactly as the parser did.
                    let key: String = serde_json::from_str(&text[i..end]).unwrap_or_default();
                    let pointer = pointer(&stack, &key);
                    if let Some(Open::Object { seen, key: current, expect_key }) = stack.last_mut() {
                        match seen.get(&key) {
                            Some(&first_line) => found.push(Duplicate { key: key.clone(), pointer, line, first_line }),
                            None => {
                                seen.insert(key.clone(), line);
                            }
                        }
                        *current = Some(key);
                        *expect_key = false;
                    }
                }
                // A string holds no raw newline in valid JSON, so the line count stays right.
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The index just past the string that starts with the quote at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The pointer of `key` in the innermost open object, `stack` being every open container.
fn pointer(stack: &[Open], key: &str) -> String {
    let mut out = String::new();
    let last = stack.len().saturating_sub(1);
    for (depth, open) in stack.iter().enumerate() {
        let step = match open {
            _ if depth == last => super::pointer_step(key),
            Open::Object { key: Some(k), .. } => super::pointer_step(k),
            Open::Object { key: None, .. } => continue,
            Open::Array { index } => index.to_string(),
        };
        out.push('/');
        out.push_str(&step);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_duplicate_with_its_pointer_and_lines() {
        let text = "{\n \"image\": \"a\",\n \"source\": {\"uri\": \"x\",\n   \"uri\": \"y\"},\n \"image\": \"b\",\n \"exit_plugins\": [{\"name\": \"a\"}, {\"name\": \"b\", \"args\": {\"a/b\": 1, \"a\\/b\": 2}}]\n}";
        let found = find(text);
        assert_eq!(
            found,
            vec![
                Duplicate { key: "uri".into(), pointer: "/source/uri".into(), line: 4, first_line: 3 },
                Duplicate { key: "image".into(), pointer: "/image".into(), line: 5, first_line: 2 },
                Duplicate { key: "a/b".into(), pointer: "/exit_plugins/1/args/a~1b".into(), line: 6, first_line: 6 },
            ]
        );
        assert_eq!(
            found[1].to_string(),
            "/image: line 5: the key \"image\" is given again (first on line 2); the last one is used, so remove the other"
        );
    }

    #[test]
    fn the_same_key_in_different_objects_is_no_duplicate() {
        let text = r#"{"a": {"k": 1}, "b": {"k": "{\"k\": [\"k\"]}"}, "c": [{"k": 1}, {"k": 2}]}"#;
        assert_eq!(find(text), vec![]);
    }

    #[test]
    fn text_that_is_not_json_ends_the_scan_without_a_panic() {
        for text in ["", "{", "\"", "{\"a\": \"\\", "}}]]", "{\"a\":1,\"a\"", "[{\"a\":1},{\"a\":1,\"a\":2"] {
            let _ = find(text);
        }
        assert_eq!(find("{\"a\":1,\"a\"").len(), 1);
    }
}
