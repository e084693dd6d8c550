//! `.dockerignore` matching as the docker CLI applies it to a build context.
//!
//! The engine never reads `.dockerignore`: the client filters the context before sending it. A program that sends a
//! context itself has to repeat the client's rules, and this crate does: the docker CLI's line reader (moby
//! `ignorefile.ReadAll`) and moby's `patternmatcher` as the context walkers drive it (`MatchesUsingParentResults`),
//! with BuildKit's rule for when an excluded directory must still be walked. It only answers questions about
//! context-relative paths; walking the directory is the caller's job (see [`DockerIgnore`] for how).
//!
//! # Rules
//!
//! They differ from `.gitignore` in ways that matter:
//!
//! * Every pattern is anchored at the context root: `foo` matches `foo` and everything below it, never `a/foo`;
//!   `**/foo` matches at any depth.
//! * Patterns are cleaned as Go's `filepath.Clean` cleans paths, so a leading `/` or `./` and a trailing `/` mean
//!   nothing: no pattern is restricted to directories.
//! * `*` and `?` never match `/`; `**` matches any number of path elements; `\` makes the next character literal.
//! * `[^x]` is a negated class, `[!x]` is not (it holds `!` and `x`), as in Go's `filepath.Match`.
//! * `#` starts a comment only in the first column; surrounding whitespace, a UTF-8 byte-order mark and `\r\n` line
//!   ends are dropped.
//! * There is one ignore file, at the context root, rather than one per directory.
//! * The last matching line wins, and a `!` exception can re-include a path inside an excluded directory (git cannot).
//! * A line the CLI rejects (a malformed `[...]`, a trailing `\`, a `!` alone) is an error here too.
//!
//! The CLI also sends the Dockerfile and `.dockerignore` when a pattern excludes them; that rule is left to the caller,
//! which knows the Dockerfile's name.
//!
//! # Differences from the CLI
//!
//! Deliberate, and all in patterns nobody writes on purpose: moby pastes patterns into a Go regex, so there `\d`, `\w`,
//! `\b` (an escaped letter or digit) mean regex things or abort the build, and `*`, `?` or `[:alpha:]` inside `[...]`
//! get mangled; here an escaped character is always literal and a class holds exactly what `filepath.Match` says it
//! holds. Everything else, quirks included, follows moby.
//!
//! # Example
//!
//! ```
//! use dockerignore::DockerIgnore;
//!
//! let ignore = DockerIgnore::parse("*.secret\nbuild\n!build/keep.txt\n")?;
//! assert!(ignore.is_excluded("key.secret"));
//! assert!(!ignore.is_excluded("sub/key.secret")); // anchored at the root
//! assert!(ignore.is_excluded("build/out.o"));
//! assert!(!ignore.is_excluded("build/keep.txt"));
//! // `build` itself stays excluded, but a walker has to look inside it.
//! assert!(ignore.is_excluded("build") && ignore.may_reinclude_below("build"));
//! # Ok::<(), dockerignore::PatternError>(())
//! ```

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod fuzzing;

/// The compiled rules of one `.dockerignore` file.
///
/// How a context walker uses it (this is what BuildKit does):
///
/// * `is_excluded(entry)` false → send the entry (and walk into it if it is a directory).
/// * `is_excluded(dir)` true and `may_reinclude_below(dir)` false → prune.
/// * `is_excluded(dir)` true and `may_reinclude_below(dir)` true → walk into it *without* sending the directory itself;
///   any descendant that comes out not excluded is sent.
///
/// A directory that is excluded by a pattern stays excluded even when an exception re-includes something below it: with
/// `docs` and `!docs/keep.txt`, `is_excluded("docs")` is true and `is_excluded("docs/keep.txt")` is false. BuildKit
/// then sends the header of every not-yet-sent ancestor directory just before the first re-included entry beneath it
/// (so `docs/` keeps its mode and mtime); the classic builder sends only the file and lets the engine create `docs/` as
/// 0755. Either way the directory exists in the build; emitting the ancestors lazily is the walker's job.
///
/// The default value has no patterns and excludes nothing, as an absent `.dockerignore` does.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// Why a `.dockerignore` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// A line that the docker CLI would also reject.
    #[error("line {line}: bad pattern `{pattern}`: {reason}")]
    BadPattern {
        /// 1-based line number in the file.
        line: usize,
        /// The line as written, minus surrounding whitespace.
        pattern: String,
        /// What is wrong with it, e.g. "unterminated character class".
        reason: &'static str,
    },
    /// `.dockerignore` exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

impl DockerIgnore {
    /// Parses the text of a .dockerignore file.
    ///
    /// # Errors
    ///
    /// [`PatternError::BadPattern`] for the first line the docker CLI would also reject: a malformed `[...]` class, a
    /// trailing `\`, or a `!` with no pattern after it.
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        // Like the CLI, drop a UTF-8 byte-order mark at the start of the file.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let Some(line) = read_line(raw) else { continue };
            match Pattern::new(&line) {
                Ok(Some(pattern)) => patterns.push(pattern),
                Ok(None) => {}
                Err(reason) => {
                    return Err(PatternError::BadPattern { line: index + 1, pattern: raw.trim().to_owned(), reason });
                }
            }
        }
        Ok(DockerIgnore { patterns })
    }

    /// Reads `<context_dir>/.dockerignore` if it exists (`Ok(Default)` if absent; I/O errors other than `NotFound` are
    /// returned as [`PatternError::Io`] with the path).
    ///
    /// # Errors
    ///
    /// [`PatternError::Io`] when the file exists but cannot be read, and [`PatternError::BadPattern`] as for
    /// [`DockerIgnore::parse`].
    pub fn load(context_dir: &Path) -> Result<DockerIgnore, PatternError> {
        let path = context_dir.join(".dockerignore");
        match std::fs::read(&path) {
            // Go reads bytes; a non-UTF-8 pattern could only ever match a non-UTF-8 name, which a `&str` path cannot
            // express anyway.
            Ok(bytes) => Self::parse(&String::from_utf8_lossy(&bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(PatternError::Io { path, source }),
        }
    }

    /// True when the file or directory at `rel` (relative to the context root, '/'-separated, no leading "./") is
    /// excluded from the context.
    ///
    /// The answer is the one a docker context walker reaches for `rel`: the patterns are evaluated for each ancestor
    /// directory in turn, top down, and a pattern that matched an ancestor counts as matching `rel` too (moby
    /// `MatchesUsingParentResults`). The last matching pattern decides. The context root (`""` or `"."`) is never
    /// excluded; a stray leading `./`, a trailing `/` and doubled slashes in `rel` are tolerated.
    #[must_use]
    pub fn is_excluded(&self, rel: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let mut path = String::with_capacity(rel.len());
        let mut parent: Vec<bool> = Vec::new();
        let mut excluded = false;
        for component in components(rel) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(component);
            let (now_excluded, matched) = self.evaluate(&path, &parent);
            excluded = now_excluded;
            parent = matched;
        }
        excluded
    }

    /// True when some `!` exception pattern could re-include a path below the directory `rel_dir`, so a walker must
    /// descend into an excluded directory instead of pruning it.
    ///
    /// This asks whether any exception pattern can match *some* path strictly below `rel_dir`, wildcards included, so
    /// `!**/keep.txt` keeps every excluded directory open. That gives the same context as BuildKit (the default `docker
    /// build`). The classic builder (`DOCKER_BUILDKIT=0`) only descends when an exception's literal text starts with
    /// `rel_dir/`, so it drops e.g. `docs/keep.txt` for `docs` + `!**/keep.txt`; that is not copied, since the default
    /// builder keeps such files. A `true` answer is only permission to look: each entry found below still has to pass
    /// `is_excluded`.
    #[must_use]
    pub fn may_reinclude_below(&self, rel_dir: &str) -> bool {
        let dir = components(rel_dir).collect::<Vec<_>>().join("/");
        self.patterns
            .iter()
            .filter(|pattern| pattern.exception)
            .any(|pattern| dir.is_empty() || pattern.kind.may_match_below(&dir))
    }

    /// True when the file has no patterns (only comments and blank lines, or nothing at all), so nothing is excluded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// One step of moby's `MatchesUsingParentResults`: decides `path` given which patterns matched its parent directory
    /// (`parent` is empty for a top-level entry) and returns which patterns match `path` for its children to inherit.
    fn evaluate(&self, path: &str, parent: &[bool]) -> (bool, Vec<bool>) {
        let mut excluded = false;
        let mut matched = vec![false; self.patterns.len()];
        for (index, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.get(index).copied().unwrap_or(false);
            if !hit {
                // moby only tries an exclude pattern while the path is not yet excluded and an exception while it is.
                // Because the skipped pattern is also not recorded for the children, this is observable (`a/*` then
                // `!a` still excludes `a/f`), so it is kept.
                if pattern.exception != excluded {
                    continue;
                }
                hit = pattern.kind.matches(path);
            }
            if let Some(slot) = matched.get_mut(index) {
                *slot = hit;
            }
            if hit {
                excluded = !pattern.exception;
            }
        }
        (excluded, matched)
    }
}

/// The non-empty, non-`.` components of a context-relative path.
fn components(rel: &str) -> impl Iterator<Item = &str> {
    rel.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// One line as the CLI's `ignorefile.ReadAll` turns it into a pattern string: `None` for comments and blank lines,
/// otherwise the cleaned pattern with a leading `!` kept and a leading `/` dropped.
fn read_line(raw: &str) -> Option<String> {
    // The comment test runs before trimming, so " # x" is a pattern.
    if raw.starts_with('#') {
        return None;
    }
    let line = raw.trim();
    if line.is_empty() {
        return None;
    }
    let (exception, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut out = String::with_capacity(line.len());
    if exception {
        out.push('!');
    }
    if !body.is_empty() {
        let cleaned = clean(body);
        // Only a slash with something after it is dropped: "/" stays "/".
        match cleaned.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => out.push_str(rest),
            _ => out.push_str(&cleaned),
        }
    }
    Some(out)
}

/// Go's `filepath.Clean` for '/'-separated paths: collapses repeated slashes, drops `.` elements, resolves `..` against
/// the preceding element (or drops it right after the root) and removes any trailing slash; an empty result becomes
/// ".".
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(last) if *last != ".." => {
                    parts.pop();
                }
                // `..` above the root is the root; above a relative start it has to stay.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    /// A `!` line: a match takes the path back into the context.
    exception: bool,
    kind: Kind,
}

impl Pattern {
    /// What moby's `patternmatcher.New` does with one string from the line reader: trim and clean it again (which can
    /// still change it, e.g. "/ foo" → " foo" → "foo"), split off `!`, and check the syntax.
    fn new(line: &str) -> Result<Option<Pattern>, &'static str> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let line = clean(line);
        let (exception, text) = match line.strip_prefix('!') {
            // "!" and "!/" (which cleans to "!") are rejected by moby too.
            Some("") => return Err("an exception needs a pattern after `!`"),
            Some(rest) => (true, rest),
            None => (false, line.as_str()),
        };
        Ok(Some(Pattern { exception, kind: compile(text)? }))
    }
}

/// How a pattern is matched. moby turns patterns into a regular expression but short-cuts three shapes with plain
/// string tests; the short-cuts are kept because one of them (`Suffix`) answers differently from the regex.
#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard, class or escape: the whole path equals the text.
    Exact(String),
    /// Literal text followed by a final `**` (e.g. `a/**`): the path starts with the text before the `**`.
    Prefix(String),
    /// A leading `**` followed by literal text: the path ends with the text after the `**`, or, when that text starts
    /// with `/`, equals the rest (`**/foo` matches `foo`). `**foo` thus also matches `xfoo`.
    Suffix(String),
    /// Anything else, matched by `glob_match`.
    Glob(Vec<Token>),
}

impl Kind {
    fn matches(&self, path: &str) -> bool {
        match self {
            Kind::Exact(text) => path == text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Glob(tokens) => glob_match(tokens, path),
        }
    }

    /// Whether this pattern matches at least one path strictly below `dir` (conservatively: a `true` may be a false
    /// alarm, a `false` never is).
    fn may_match_below(&self, dir: &str) -> bool {
        let below = format!("{dir}/");
        match self {
            Kind::Exact(text) => text.starts_with(&below),
            Kind::Prefix(prefix) => below.starts_with(prefix.as_str()) || prefix.starts_with(&below),
            // `<dir>/<suffix>` (or `<dir>/foo` for `**/foo`) always matches.
            Kind::Suffix(_) => true,
            Kind::Glob(tokens) => {
                let mut nfa = Nfa::new(tokens);
                for c in below.chars() {
                    nfa.step(c);
                }
                nfa.can_continue()
            }
        }
    }
}

/// One element of a compiled glob, mirroring the regular expression moby builds from it.
#[derive(Debug, Clone)]
enum Token {
    /// A literal character (including one made literal by `\`).
    Char(char),
    /// `?`: one character other than `/` (`[^/]`).
    AnyChar,
    /// `*`: any run of characters other than `/` (`[^/]*`).
    Star,
    /// `[...]`, matched as Go's regexp does: may match `/`.
    Class(Class),
    /// `**` or `**/` with more pattern after it: zero or more whole leading path elements (`(.*/)?`), so `a/**/b`
    /// matches `a/b` and `a/x/y/b`.
    DirStar,
    /// `**` at the end of the pattern: anything (`.*`).
    Rest,
    /// A bare `^`, which moby copies into its regex unescaped, where it is a start-of-text anchor: it only matches at
    /// the very beginning, so e.g. `a^b*` matches nothing. Literal in the `Exact`/`Prefix`/`Suffix` shapes, as in moby.
    Caret,
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Which of moby's matching shapes a pattern has (see `Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

/// Compiles a cleaned pattern (without its `!`), rejecting what Go's `filepath.Match` rejects (an unterminated or
/// malformed `[...]`, a trailing `\`) and class ranges such as `[z-a]` that make moby's regex fail to compile (which
/// aborts a docker build).
fn compile(text: &str) -> Result<Kind, &'static str> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut shape = Shape::Exact;
    let mut i = 0;
    while let Some(&ch) = chars.get(i) {
        let first = i == 0;
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` behaves like `**`.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    tokens.push(Token::Rest);
                    shape = if shape == Shape::Exact { Shape::Prefix } else { Shape::Glob };
                } else {
                    tokens.push(Token::DirStar);
                    shape = Shape::Glob;
                }
                if first {
                    shape = Shape::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                shape = Shape::Glob;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                shape = Shape::Glob;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i) else {
                    return Err("trailing backslash");
                };
                i += 1;
                tokens.push(Token::Char(escaped));
                shape = Shape::Glob;
            }
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                i = next;
                tokens.push(Token::Class(class));
                shape = Shape::Glob;
            }
            ']' => {
                // A stray `]` is literal, but moby switches to its regex for it.
                tokens.push(Token::Char(']'));
                shape = Shape::Glob;
            }
            '^' => tokens.push(Token::Caret),
            _ => tokens.push(Token::Char(ch)),
        }
    }
    Ok(match shape {
        Shape::Exact => Kind::Exact(text.to_owned()),
        Shape::Prefix => match text.strip_suffix("**") {
            Some(prefix) => Kind::Prefix(prefix.to_owned()),
            None => Kind::Glob(tokens),
        },
        Shape::Suffix => match text.strip_prefix("**") {
            Some(suffix) => Kind::Suffix(suffix.to_owned()),
            None => Kind::Glob(tokens),
        },
        Shape::Glob => Kind::Glob(tokens),
    })
}

const UNTERMINATED: &str = "unterminated character class";

/// Parses a character class whose `[` sits just before `chars[start]`, with Go's `filepath.Match` rules: optional
/// leading `^`, then one or more `c` or `lo-hi` items where `\` escapes and an unescaped `-` or `]` cannot be an item.
/// Returns the class and the index just past its `]`.
fn parse_class(chars: &[char], start: usize) -> Result<(Class, usize), &'static str> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(chars, i, "empty character class")?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (end, next) = class_char(chars, i + 1, "character range has no upper bound")?;
            hi = end;
            i = next;
        }
        if hi < lo {
            return Err("character range is out of order");
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character inside a class, like Go's `getEsc`, which also insists that the class continues
/// after it.
fn class_char(chars: &[char], i: usize, bracket_reason: &'static str) -> Result<(char, usize), &'static str> {
    let (c, next) = match chars.get(i) {
        None => return Err(UNTERMINATED),
        Some('-') => return Err("unescaped `-` in character class"),
        Some(']') => return Err(bracket_reason),
        Some('\\') => match chars.get(i + 1) {
            Some(&escaped) => (escaped, i + 2),
            None => return Err(UNTERMINATED),
        },
        Some(&c) => (c, i + 1),
    };
    if next >= chars.len() {
        return Err(UNTERMINATED);
    }
    Ok((c, next))
}

/// Whether `tokens` match all of `path`.
fn glob_match(tokens: &[Token], path: &str) -> bool {
    let mut nfa = Nfa::new(tokens);
    for c in path.chars() {
        nfa.step(c);
        if nfa.is_dead() {
            return false;
        }
    }
    nfa.accepts()
}

/// A set-of-states simulation of a compiled glob, so `**` and `*` never backtrack exponentially. `at[t]` means "ready
/// to match token `t`"; `inside[t]` means "partway through the `.*` of a `DirStar` at `t`, still owing its `/`".
struct Nfa<'a> {
    tokens: &'a [Token],
    at: Vec<bool>,
    inside: Vec<bool>,
    /// Characters consumed so far (for `Caret`).
    consumed: usize,
}

impl<'a> Nfa<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        let mut nfa = Nfa { tokens, at: vec![false; tokens.len() + 1], inside: vec![false; tokens.len()], consumed: 0 };
        if let Some(start) = nfa.at.first_mut() {
            *start = true;
        }
        nfa.close();
        nfa
    }

    /// Follows the moves that consume nothing. They all go forward, so one pass in token order reaches the fixed point.
    fn close(&mut self) {
        for (t, token) in self.tokens.iter().enumerate() {
            if !self.at.get(t).copied().unwrap_or(false) {
                continue;
            }
            let skip = match token {
                Token::Star | Token::Rest => true,
                Token::DirStar => {
                    set(&mut self.inside, t);
                    true
                }
                Token::Caret => self.consumed == 0,
                Token::Char(_) | Token::AnyChar | Token::Class(_) => false,
            };
            if skip {
                set(&mut self.at, t + 1);
            }
        }
    }

    fn step(&mut self, c: char) {
        let mut at = vec![false; self.at.len()];
        let mut inside = vec![false; self.inside.len()];
        for (t, token) in self.tokens.iter().enumerate() {
            if self.at.get(t).copied().unwrap_or(false) {
                match token {
                    Token::Char(want) if *want == c => set(&mut at, t + 1),
                    Token::AnyChar if c != '/' => set(&mut at, t + 1),
                    Token::Class(class) if class.matches(c) => set(&mut at, t + 1),
                    Token::Star if c != '/' => set(&mut at, t),
                    // Go's `.` does not match a newline.
                    Token::Rest if c != '\n' => set(&mut at, t),
                    _ => {}
                }
            }
            if self.inside.get(t).copied().unwrap_or(false) && c != '\n' {
                set(&mut inside, t);
                if c == '/' {
                    set(&mut at, t + 1);
                }
            }
        }
        self.at = at;
        self.inside = inside;
        self.consumed += 1;
        self.close();
    }

    fn accepts(&self) -> bool {
        self.at.last().copied().unwrap_or(false)
    }

    fn is_dead(&self) -> bool {
        !self.at.iter().chain(&self.inside).any(|&live| live)
    }

    /// Whether some non-empty continuation could still be matched, i.e. a live state other than "everything matched".
    fn can_continue(&self) -> bool {
        let pending = self.at.len().saturating_sub(1);
        self.at.iter().take(pending).chain(&self.inside).any(|&live| live)
    }
}

fn set(states: &mut [bool], index: usize) {
    if let Some(state) = states.get_mut(index) {
        *state = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("patterns should parse")
    }

    /// Asserts which of `paths` the file excludes.
    fn check(text: &str, excluded: &[&str], kept: &[&str]) {
        let ignore = rules(text);
        for path in excluded {
            assert!(ignore.is_excluded(path), "{text:?} should exclude {path:?}");
        }
        for path in kept {
            assert!(!ignore.is_excluded(path), "{text:?} should keep {path:?}");
        }
    }

    fn error_of(text: &str) -> String {
        match DockerIgnore::parse(text) {
            Ok(ignore) => panic!("{text:?} should not parse, got {ignore:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// The files a walker sends for a context holding `files` (plus their parent directories), following the recipe on
    /// `DockerIgnore`.
    fn walk(text: &str, files: &[&str]) -> Vec<String> {
        use std::collections::BTreeSet;
        let ignore = rules(text);
        let mut dirs = BTreeSet::new();
        for file in files {
            let mut dir = *file;
            while let Some((parent, _)) = dir.rsplit_once('/') {
                dirs.insert(parent.to_owned());
                dir = parent;
            }
        }
        let pruned = |path: &str| {
            dirs.iter().any(|dir| {
                path.starts_with(&format!("{dir}/")) && ignore.is_excluded(dir) && !ignore.may_reinclude_below(dir)
            })
        };
        let mut sent: Vec<String> = files
            .iter()
            .filter(|file| !pruned(file) && !ignore.is_excluded(file))
            .map(|file| (*file).to_owned())
            .collect();
        sent.sort();
        sent
    }

    #[test]
    fn default_and_empty_files_ignore_nothing() {
        let ignore = DockerIgnore::default();
        assert!(ignore.is_empty());
        assert!(!ignore.is_excluded("anything/at/all"));
        assert!(!ignore.may_reinclude_below("anything"));
        let blank = rules("\n   \n# just a comment\n\t\n");
        assert!(blank.is_empty());
        assert!(!blank.is_excluded("x"));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        check("# build output\n\nbuild\n\n#node_modules\n", &["build"], &["node_modules", "#node_modules"]);
    }

    #[test]
    fn hash_is_a_comment_only_in_column_zero() {
        // The CLI tests for `#` before trimming, so an indented `#` is a pattern.
        check("  #notes", &["#notes"], &["notes"]);
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        check("  target  \r\n\t*.log\t\n!  keep.log  ", &["target/x", "a.log"], &["keep.log"]);
    }

    #[test]
    fn bom_and_crlf_are_handled() {
        check("\u{feff}secret\r\nother\r\n", &["secret", "other/file"], &["public"]);
    }

    #[test]
    fn patterns_are_anchored_at_the_root() {
        check("foo", &["foo", "foo/bar", "foo/bar/baz"], &["a/foo", "foobar", "a/foo/bar"]);
        check("a/b", &["a/b", "a/b/c"], &["a", "x/a/b", "a/bc"]);
    }

    #[test]
    fn parent_directory_match_excludes_everything_below() {
        check("build", &["build", "build/x", "build/x/y/z.o"], &["builder", "src/build"]);
        check("*/tmp", &["a/tmp/f", "b/tmp/g/h"], &["tmp/f", "a/b/tmp/f"]);
    }

    #[test]
    fn star_does_not_cross_slashes() {
        check("*.md", &["README.md", ".md"], &["docs/a.md", "README.mdx"]);
        check("*/*.md", &["docs/a.md"], &["a.md", "x/y/a.md"]);
        check("a*c", &["ac", "abbc"], &["a/c", "ab/bc"]);
    }

    #[test]
    fn question_mark_is_one_non_slash_character() {
        check("file?.txt", &["file1.txt", "fileé.txt"], &["file.txt", "file12.txt", "file/.txt"]);
    }

    #[test]
    fn character_classes() {
        check("log[0-9]", &["log0", "log7"], &["loga", "log10"]);
        check("[abc].txt", &["a.txt", "c.txt"], &["d.txt"]);
        check("[^a-y]z", &["zz", "0z"], &["az", "yz"]);
        check("x[\\]]", &["x]"], &["x\\"]);
    }

    #[test]
    fn bang_inside_a_class_is_literal_not_negation() {
        // Go's filepath.Match only negates with `^`.
        check("[!a]b", &["!b", "ab"], &["cb"]);
    }

    #[test]
    fn backslash_escapes_the_next_character() {
        check("\\*.txt", &["*.txt"], &["a.txt"]);
        check("what\\?", &["what?"], &["whatx"]);
        check("\\[x]", &["[x]"], &["x"]);
    }

    #[test]
    fn double_star_prefix_matches_at_any_depth() {
        check("**/foo", &["foo", "a/foo", "a/b/foo", "a/foo/x"], &["afoo/x", "foox"]);
        check("**/*.go", &["main.go", "cmd/x/main.go"], &["main.gox"]);
    }

    #[test]
    fn double_star_suffix_matches_everything_below() {
        // `a/**` excludes the contents of `a` but not the directory entry.
        check("a/**", &["a/x", "a/x/y"], &["a", "ab"]);
        check("**", &["x", "a/b/c"], &[]);
    }

    #[test]
    fn double_star_in_the_middle_matches_zero_or_more_directories() {
        check("a/**/b", &["a/b", "a/x/b", "a/x/y/b", "a/x/b/c"], &["a/xb", "b", "x/a/b"]);
    }

    #[test]
    fn leading_double_star_without_slash_is_a_plain_suffix() {
        // moby's suffix short-cut: `**foo` is "ends with foo".
        check("**foo", &["foo", "xfoo", "a/bfoo"], &["foox"]);
    }

    #[test]
    fn last_matching_pattern_wins() {
        check("*.md\n!README.md", &["CHANGES.md"], &["README.md"]);
        check("!README.md\n*.md", &["CHANGES.md", "README.md"], &[]);
        check("*\n!keep\nkeep/secret", &["other", "keep/secret"], &["keep", "keep/data"]);
    }

    #[test]
    fn exception_reincludes_a_file_inside_an_excluded_directory() {
        let ignore = rules("docs\n!docs/keep.txt");
        // The directory entry itself stays excluded; see the type's docs.
        assert!(ignore.is_excluded("docs"));
        assert!(ignore.may_reinclude_below("docs"));
        assert!(!ignore.is_excluded("docs/keep.txt"));
        assert!(ignore.is_excluded("docs/other.txt"));
        assert_eq!(
            walk("docs\n!docs/keep.txt", &["docs/keep.txt", "docs/other.txt", "src/main.rs"]),
            ["docs/keep.txt", "src/main.rs"]
        );
    }

    #[test]
    fn exception_for_the_directory_itself_keeps_it_whole() {
        check("docs\n!docs", &[], &["docs", "docs/a/b"]);
        check("*\n!src", &["target", "Cargo.lock"], &["src", "src/lib.rs"]);
    }

    #[test]
    fn may_reinclude_below_follows_the_exception_path() {
        let ignore = rules("docs\n!docs/a/b/c.txt");
        assert!(ignore.may_reinclude_below("docs"));
        assert!(ignore.may_reinclude_below("docs/a"));
        assert!(ignore.may_reinclude_below("docs/a/b"));
        assert!(!ignore.may_reinclude_below("docs/z"));
        assert!(!ignore.may_reinclude_below("docs/a/b/c.txt"));
        assert!(!ignore.may_reinclude_below("other"));
        assert!(!rules("docs\ntarget").may_reinclude_below("docs"));
        // An exception naming the directory itself re-includes nothing below it.
        assert!(!rules("!docs\ndocs").may_reinclude_below("docs"));
        assert!(rules("docs\n!docs/**").may_reinclude_below("docs"));
        assert!(rules("docs\n!do**").may_reinclude_below("docs/x"));
    }

    #[test]
    fn wildcard_exceptions_reach_into_excluded_directories() {
        let text = "docs\nvendor\n!**/keep.txt\n!docs/*.md";
        let ignore = rules(text);
        assert!(ignore.may_reinclude_below("docs"));
        assert!(ignore.may_reinclude_below("vendor/x"));
        assert!(!rules("docs\n!src/*.md").may_reinclude_below("docs"));
        assert!(!rules("docs\n!*.md").may_reinclude_below("docs"));
        assert_eq!(
            walk(text, &["docs/a.md", "docs/b.txt", "docs/sub/keep.txt", "vendor/x/keep.txt", "vendor/y"]),
            ["docs/a.md", "docs/sub/keep.txt", "vendor/x/keep.txt"]
        );
    }

    #[test]
    fn matches_are_inherited_the_way_the_walker_inherits_them() {
        // moby skips `!a` for the directory `a` (nothing excluded it yet) and never looks at it again for `a/f`, so
        // `a/f` stays excluded.
        check("a/*\n!a", &["a/f", "a/g/h"], &["a"]);
        // An exception that matched the parent is inherited by the children.
        check("*\n!a\na/*.tmp", &["a/x.tmp", "b"], &["a", "a/x.txt"]);
    }

    #[test]
    fn patterns_are_cleaned() {
        check("./foo", &["foo", "foo/x"], &["a/foo"]);
        check("/foo", &["foo/x"], &["a/foo"]);
        check("foo/", &["foo", "foo/x"], &["foox"]);
        check("a//b", &["a/b"], &["a"]);
        check("a/./b/../c", &["a/c"], &["a/b"]);
        check("*\n!/foo", &["bar"], &["foo"]);
        // The CLI cleans, trims and cleans again: "/ foo" ends up as "foo".
        check("/ foo", &["foo"], &[" foo"]);
        check("../outside", &[], &["outside", "a/outside"]);
    }

    #[test]
    fn dot_and_slash_patterns_exclude_nothing() {
        // "." only matches the context root, which is never excluded.
        check(".\n./\n/\n/.", &[], &["a", "a/b"]);
        assert!(!rules("*").is_excluded(""));
        assert!(!rules("**").is_excluded("."));
    }

    #[test]
    fn caret_outside_a_class_only_matches_as_a_literal_without_wildcards() {
        // Exact shape: literal, as in moby.
        check("a^b", &["a^b"], &["ab"]);
        // Glob shape: moby's regex reads `^` as an anchor, so this matches nothing.
        check("a^b*", &[], &["a^b", "a^bc"]);
    }

    #[test]
    fn query_paths_are_normalised() {
        let ignore = rules("foo/bar");
        assert!(ignore.is_excluded("./foo/bar"));
        assert!(ignore.is_excluded("foo//bar/"));
        assert!(rules("docs\n!docs/x").may_reinclude_below("./docs/"));
    }

    #[test]
    fn unterminated_class_names_line_and_pattern() {
        assert_eq!(error_of("# header\nok\n  [a-  \n"), "line 3: bad pattern `[a-`: unterminated character class");
    }

    #[test]
    fn other_syntax_errors_are_reported() {
        assert!(error_of("foo\\").contains("trailing backslash"));
        assert!(error_of("[]").contains("empty character class"));
        assert!(error_of("[^]x").contains("empty character class"));
        assert!(error_of("[a-]").contains("upper bound"));
        assert!(error_of("[-a]").contains("`-`"));
        assert!(error_of("[z-a]").contains("out of order"));
        assert!(error_of("[a").contains("unterminated"));
        assert!(error_of("x\n!").starts_with("line 2: bad pattern `!`"));
        assert!(error_of("!/").contains("after `!`"));
        // The error sits on the exception's line too.
        assert!(error_of("a\nb\n!c[").starts_with("line 3: bad pattern `!c[`"));
    }

    #[test]
    fn load_reads_the_context_file() {
        let dir = std::env::temp_dir().join(format!("dockerignore-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");

        let absent = DockerIgnore::load(&dir).expect("a missing file is fine");
        assert!(absent.is_empty());

        std::fs::write(dir.join(".dockerignore"), "target\n!target/keep\n").expect("write");
        let loaded = DockerIgnore::load(&dir).expect("load");
        assert!(loaded.is_excluded("target/x"));
        assert!(!loaded.is_excluded("target/keep"));

        // A directory where the file should be is an I/O error naming the path.
        std::fs::remove_file(dir.join(".dockerignore")).expect("remove");
        std::fs::create_dir(dir.join(".dockerignore")).expect("mkdir");
        match DockerIgnore::load(&dir) {
            Err(PatternError::Io { path, .. }) => assert_eq!(path, dir.join(".dockerignore")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn odd_input_never_panics() {
        let odd = [
            "",
            "!",
            "!!",
            "[",
            "]",
            "\\",
            "**",
            "***",
            "**/",
            "/**",
            "!**",
            "a/**/",
            "[\\",
            "[^",
            "[a-\\",
            "é[é-ü]?*",
            "\u{0}",
            "a\nb",
            "^",
            "!^*",
            "[]]",
            "[[]",
            "**a**",
            "a**b",
        ];
        for text in odd {
            if let Ok(ignore) = DockerIgnore::parse(text) {
                for path in ["", ".", "/", "a", "a/b", "é/ü", "!", "\n", "a//b/"] {
                    let _ = ignore.is_excluded(path);
                    let _ = ignore.may_reinclude_below(path);
                }
            }
        }
    }

    #[test]
    fn many_stars_do_not_backtrack() {
        let ignore = rules("*a*a*a*a*a*a*a*a*a*a*b\n**/**/**/**/**/x");
        let long = "a".repeat(5000);
        assert!(!ignore.is_excluded(&long));
        let deep = vec!["d"; 300].join("/");
        assert!(!ignore.is_excluded(&deep));
        assert!(ignore.is_excluded(&format!("{deep}/x")));
    }

    #[test]
    fn double_star_between_letters_needs_a_slash() {
        // moby turns a non-trailing `**` into `(.*/)?` even without a `/`.
        check("a**b", &["ab", "a/b", "ax/y/b"], &["axb", "ax/yb"]);
    }
}
