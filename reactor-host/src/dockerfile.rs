//! Reading a Dockerfile: which image it builds from.

/// The image the final stage builds from: the last `FROM`, with `--platform=…` flags and
/// `AS name` left out; `None` when there is no `FROM` or it names an earlier stage.
pub fn base_image(dockerfile: &str) -> Option<String> {
    let mut stages = Vec::new();
    let mut last = None;
    for line in logical_lines(dockerfile) {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let image = words.next()?.to_owned();
        if let (Some(kw), Some(name)) = (words.next(), words.next()) {
            if kw.eq_ignore_ascii_case("AS") {
                stages.push(name.to_lowercase());
            }
        }
        last = Some(image);
    }
    last.filter(|image| !stages.contains(&image.to_lowercase()))
}

/// The Dockerfile's instructions, with `\` continuations joined and comments dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if current.is_empty() && trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::base_image;

    #[test]
    fn finds_the_last_from() {
        assert_eq!(base_image("FROM busybox\nRUN true\n").as_deref(), Some("busybox"));
        assert_eq!(
            base_image("# c\nfrom --platform=linux/amd64 \\\n  reg:5000/ns/img:1 AS build\n").as_deref(),
            Some("reg:5000/ns/img:1")
        );
        assert_eq!(base_image("FROM a AS one\nFROM b\n").as_deref(), Some("b"));
        assert_eq!(base_image("FROM a AS one\nFROM one\n"), None);
        assert_eq!(base_image("RUN true\n"), None);
    }
}
