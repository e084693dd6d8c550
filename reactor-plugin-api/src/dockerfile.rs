//! Read and edit Dockerfiles the way docker reads them, keeping every byte that is not edited.
//!
//! [`Dockerfile::parse`] splits a Dockerfile into [`Instruction`]s, each with its keyword, its exact
//! byte span in the source and its logical text (continuation lines joined), and into [`Stage`]s,
//! one per `FROM`. It also works out what docker would: `ARG` values, `FROM` images after `${VAR}`
//! substitution, and each stage's `ENV` and `LABEL` values. [`Dockerfile::edit`] returns an
//! [`Editor`] that collects edits and renders the new text. Everything that was not edited stays
//! byte-for-byte the same, including comments, blank lines, continuations and indentation.
//!
//! It follows docker's parser (BuildKit's `frontend/dockerfile/parser` and `shell` packages):
//! `#` comments (also the ones inside a continued instruction, which docker skips), blank lines,
//! line continuations, the `# escape=` parser directive, case-insensitive keywords, and docker's
//! quoting and `$VAR` rules. Heredocs (`RUN <<EOF`) are not supported: their body lines are read as
//! instructions.
//!
//! ```
//! use reactor_plugin_api::dockerfile::Dockerfile;
//!
//! let df = Dockerfile::parse("FROM golang:1.22 AS build\nRUN make\n\nFROM scratch\nCOPY --from=build /app /\n")?;
//! assert_eq!(df.parent_images().len(), 2);
//! let text = df
//!     .edit()
//!     .set_from_image(0, "registry.example.com/golang@sha256:0123")?
//!     .add_labels(&[("release", "1 beta")])?
//!     .render();
//! assert_eq!(
//!     text,
//!     "FROM registry.example.com/golang@sha256:0123 AS build\nRUN make\n\n\
//!      FROM scratch\nCOPY --from=build /app /\nLABEL release=\"1 beta\"\n"
//! );
//! # Ok::<(), reactor_plugin_api::dockerfile::Error>(())
//! ```

use std::fmt;
use std::ops::Range;

/// What went wrong when parsing or editing a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The Dockerfile is malformed in a way docker would also reject.
    Parse {
        /// The 1-based line where the problem is.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// There is no stage with this index (or no stage at all).
    NoSuchStage(usize),
    /// There is no instruction with this index.
    NoSuchInstruction(usize),
    /// An edit was given text or a value it cannot use.
    InvalidArgument(String),
    /// This edit touches text that an earlier edit of the same [`Editor`] already changed.
    Conflict(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse { line, message } => write!(f, "Dockerfile line {line}: {message}"),
            Error::NoSuchStage(index) => write!(f, "the Dockerfile has no stage {index}"),
            Error::NoSuchInstruction(index) => write!(f, "the Dockerfile has no instruction {index}"),
            Error::InvalidArgument(message) => write!(f, "invalid Dockerfile edit: {message}"),
            Error::Conflict(message) => write!(f, "conflicting Dockerfile edits: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// One instruction of a Dockerfile, such as `RUN make \` plus its continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    keyword: String,
    span: Range<usize>,
    line: usize,
    text: String,
    flags: Vec<String>,
    args: Range<usize>,
    stage: Option<usize>,
    continues_at_eof: bool,
}

impl Instruction {
    /// The keyword in upper case (`FROM`, `RUN`, …), however it is written in the file.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The instruction's bytes in [`Dockerfile::text`]: from the keyword to the end of its last
    /// line (without the line break), including continuation lines and the comment and blank
    /// lines that docker skips inside a continued instruction.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The 1-based line number where the instruction starts.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The logical line as docker reads it: continuations joined (the escape character and the
    /// line break removed), comment lines inside the instruction skipped.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The flags after the keyword, such as `--from=build` or `--platform=linux/amd64`, as docker
    /// reads them (quotes removed).
    pub fn flags(&self) -> &[String] {
        &self.flags
    }

    /// What follows the keyword and flags in [`Instruction::text`], trimmed.
    pub fn args(&self) -> &str {
        self.text.get(self.args.clone()).unwrap_or("")
    }

    /// The index of the stage this instruction belongs to (its `FROM` included), or `None` for an
    /// `ARG` before the first `FROM`.
    pub fn stage(&self) -> Option<usize> {
        self.stage
    }
}

/// What a stage's `FROM` builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// An image to pull, named by [`Stage::image`].
    Image,
    /// `FROM scratch`: no image at all.
    Scratch,
    /// An earlier stage of the same Dockerfile, named by its alias; this is its index.
    Stage(usize),
}

/// A build argument declared by `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The argument's name.
    pub name: String,
    /// The default from `ARG NAME=default`, unquoted and with known variables substituted.
    pub default: Option<String>,
    /// The value docker would use: the caller's build arg if given, else the default, else (in a
    /// stage) the value of the global `ARG` of the same name; `None` if it has no value.
    pub value: Option<String>,
}

/// One build stage: a `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    index: usize,
    image: String,
    raw_image: String,
    alias: Option<String>,
    platform: Option<String>,
    base: Base,
    instructions: Range<usize>,
    args: Vec<Arg>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    image_span: Range<usize>,
}

impl Stage {
    /// The stage's index, counting from 0 in file order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The `FROM` image after substituting global `ARG`s and build args, as docker resolves it.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The `FROM` image as written in the file.
    pub fn raw_image(&self) -> &str {
        &self.raw_image
    }

    /// The stage's name from `AS name`, in lower case as docker uses it.
    pub fn alias(&self) -> Option<&str> {
        self.alias.as_deref()
    }

    /// The value of `--platform=…` on the `FROM`, as written (variables not substituted).
    pub fn platform(&self) -> Option<&str> {
        self.platform.as_deref()
    }

    /// What the stage builds on: an image, `scratch`, or an earlier stage.
    pub fn base(&self) -> Base {
        self.base
    }

    /// The indexes in [`Dockerfile::instructions`] of the stage's instructions, its `FROM` first.
    pub fn instructions(&self) -> Range<usize> {
        self.instructions.clone()
    }

    /// The stage's `ARG` declarations, in order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The environment set by `ENV` at the end of the stage, in first-set order with the last
    /// value of each name. It includes the `ENV`s of the stage it builds on if that is a stage of
    /// this Dockerfile, but not a base image's environment.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The labels set by `LABEL` at the end of the stage, in first-set order with the last value
    /// of each key. It includes the labels of the stage it builds on if that is a stage of this
    /// Dockerfile, but not a base image's labels.
    ///
    /// Values are unquoted as docker does. Variables set by the Dockerfile (`ARG`, `ENV`) are
    /// substituted, and references to any other variable are kept as written (`$NAME`, `${NAME}`)
    /// because the base image may set them.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }
}

/// The image a `FROM` pulls (see [`Dockerfile::parent_images`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentImage<'a> {
    /// The index of the stage whose `FROM` names it.
    pub stage: usize,
    /// The image, with variables substituted.
    pub image: &'a str,
    /// Whether it is `scratch`, which is not an image to pull.
    pub scratch: bool,
}

/// A parsed Dockerfile. It keeps its source text, which every span refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    text: String,
    escape: char,
    newline: &'static str,
    body_start: usize,
    instructions: Vec<Instruction>,
    stages: Vec<Stage>,
    global_args: Vec<Arg>,
}

impl Dockerfile {
    /// Parses a Dockerfile, with no build args given.
    pub fn parse(text: &str) -> Result<Dockerfile, Error> {
        Dockerfile::parse_with_build_args::<&str, &str>(text, &[])
    }

    /// Parses a Dockerfile as `docker build --build-arg NAME=VALUE …` would see it. A build arg
    /// overrides the default of the `ARG` of that name and is ignored where no `ARG` declares it.
    pub fn parse_with_build_args<K: AsRef<str>, V: AsRef<str>>(
        text: &str,
        build_args: &[(K, V)],
    ) -> Result<Dockerfile, Error> {
        let lexed = lex(text, '\\', true)?;
        let escape = lexed.escape;
        let build_arg =
            |name: &str| build_args.iter().rev().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref().to_string());
        let mut instructions = Vec::with_capacity(lexed.instructions.len());
        let mut stages: Vec<Stage> = Vec::new();
        let mut global_args: Vec<Arg> = Vec::new();
        let mut meta: Vec<(String, Option<String>)> = Vec::new();

        for raw in lexed.instructions {
            let line = raw.line;
            let fail = |message: String| Error::Parse { line, message };
            let cmd = split_command(&raw.logical);
            let keyword = raw.logical[cmd.keyword.clone()].to_ascii_uppercase();
            let args = &raw.logical[cmd.args.clone()];
            let index = instructions.len();
            match keyword.as_str() {
                "FROM" => {
                    let mut platform = None;
                    for flag in &cmd.flags {
                        match flag.strip_prefix("--platform=") {
                            Some(value) => platform = Some(value.to_string()),
                            None => return Err(fail(format!("unknown flag {flag:?} on FROM"))),
                        }
                    }
                    let words = whitespace_words(args);
                    let alias = match words.as_slice() {
                        [_] => None,
                        [_, as_word, name] if args[as_word.clone()].eq_ignore_ascii_case("as") => {
                            Some(args[name.clone()].to_lowercase())
                        }
                        _ => return Err(fail("FROM requires either one or three arguments".to_string())),
                    };
                    if let Some(alias) = &alias {
                        if !valid_stage_name(alias) {
                            return Err(fail(format!("invalid name for build stage: {alias:?}")));
                        }
                        if stages.iter().any(|s| s.alias.as_ref() == Some(alias)) {
                            return Err(fail(format!("duplicate stage name {alias:?}")));
                        }
                    }
                    let word = words.first().cloned().unwrap_or(0..0);
                    let raw_image = args[word.clone()].to_string();
                    let lookup = |name: &str| lookup_meta(&meta, name);
                    let image = shell_word(&raw_image, escape, &lookup, false).map_err(fail)?;
                    if image.is_empty() {
                        return Err(fail(format!("base name ({raw_image}) should not be blank")));
                    }
                    let word_in_line = cmd.args.start + word.start..cmd.args.start + word.end;
                    let image_span = source_range(&raw.segments, word_in_line)
                        .ok_or_else(|| fail("cannot locate the FROM image in the source".to_string()))?;
                    let folded = image.to_lowercase();
                    let base = match stages.iter().position(|s| s.alias.as_deref() == Some(folded.as_str())) {
                        Some(earlier) => Base::Stage(earlier),
                        None if image == "scratch" => Base::Scratch,
                        None => Base::Image,
                    };
                    let (env, labels) = match base {
                        Base::Stage(earlier) => (stages[earlier].env.clone(), stages[earlier].labels.clone()),
                        _ => (Vec::new(), Vec::new()),
                    };
                    stages.push(Stage {
                        index: stages.len(),
                        image,
                        raw_image,
                        alias,
                        platform,
                        base,
                        instructions: index..index,
                        args: Vec::new(),
                        env,
                        labels,
                        image_span,
                    });
                }
                "ARG" => {
                    let words = split_words(args, escape);
                    if words.is_empty() {
                        return Err(fail("ARG requires at least one argument".to_string()));
                    }
                    for word in words {
                        let (name, default) = match word.split_once('=') {
                            Some((name, default)) => (name.to_string(), Some(default.to_string())),
                            None => (word, None),
                        };
                        match stages.last_mut() {
                            None => {
                                let lookup = |name: &str| lookup_meta(&meta, name);
                                let default = match default {
                                    Some(d) => Some(shell_word(&d, escape, &lookup, false).map_err(fail)?),
                                    None => None,
                                };
                                let value = build_arg(&name).or_else(|| default.clone());
                                set_meta(&mut meta, &name, value.clone());
                                global_args.push(Arg { name, default, value });
                            }
                            Some(stage) => {
                                let default = match default {
                                    Some(d) => {
                                        let lookup = |name: &str| lookup_stage(stage, name);
                                        Some(shell_word(&d, escape, &lookup, true).map_err(fail)?)
                                    }
                                    None => None,
                                };
                                let value =
                                    build_arg(&name).or_else(|| default.clone()).or_else(|| lookup_meta(&meta, &name));
                                stage.args.retain(|a| a.name != name);
                                stage.args.push(Arg { name, default, value });
                            }
                        }
                    }
                }
                "LABEL" | "ENV" => {
                    let Some(stage) = stages.last_mut() else {
                        return Err(fail(format!("{keyword} before the first FROM")));
                    };
                    let pairs = name_values(args, escape, &keyword).map_err(fail)?;
                    let lookup = |name: &str| lookup_stage(stage, name);
                    let mut decoded = Vec::with_capacity(pairs.len());
                    for (key, value) in pairs {
                        let key = shell_word(&key, escape, &lookup, true).map_err(fail)?;
                        let value = shell_word(&value, escape, &lookup, true).map_err(fail)?;
                        decoded.push((key, value));
                    }
                    let target = if keyword == "LABEL" { &mut stage.labels } else { &mut stage.env };
                    for (key, value) in decoded {
                        set_pair(target, key, value);
                    }
                }
                _ => {
                    if stages.is_empty() {
                        return Err(fail(format!("{keyword} before the first FROM (only ARG may come before it)")));
                    }
                }
            }
            let stage = stages.len().checked_sub(1);
            if let Some(current) = stages.last_mut() {
                current.instructions.end = index + 1;
            }
            instructions.push(Instruction {
                keyword,
                span: raw.span,
                line: raw.line,
                text: raw.logical,
                flags: cmd.flags,
                args: cmd.args,
                stage,
                continues_at_eof: raw.continues_at_eof,
            });
        }

        Ok(Dockerfile {
            text: text.to_string(),
            escape,
            newline: detect_newline(text),
            body_start: lexed.body_start,
            instructions,
            stages,
            global_args,
        })
    }

    /// The source text, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The escape character: `\`, or `` ` `` if set by a `# escape=` parser directive.
    pub fn escape_char(&self) -> char {
        self.escape
    }

    /// All instructions, in file order.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// All stages, in file order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The last stage, the one the build produces (if there is any `FROM`).
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// The `ARG`s declared before the first `FROM`, the only variables a `FROM` line may use.
    pub fn global_args(&self) -> &[Arg] {
        &self.global_args
    }

    /// The final stage's image with variables substituted, e.g. `"fedora:40"`; `"scratch"` for
    /// `FROM scratch`. `None` if there is no `FROM` or if the final stage builds on an earlier stage
    /// (see [`Stage::base`] to tell the cases apart).
    pub fn base_image(&self) -> Option<&str> {
        let stage = self.stages.last()?;
        match stage.base {
            Base::Stage(_) => None,
            Base::Image | Base::Scratch => Some(&stage.image),
        }
    }

    /// The image of every `FROM` that does not name an earlier stage, in file order and with
    /// duplicates kept: what has to be pulled before building, except the ones flagged `scratch`.
    pub fn parent_images(&self) -> Vec<ParentImage<'_>> {
        self.stages
            .iter()
            .filter(|s| !matches!(s.base, Base::Stage(_)))
            .map(|s| ParentImage { stage: s.index, image: &s.image, scratch: s.base == Base::Scratch })
            .collect()
    }

    /// The final stage's labels (see [`Stage::labels`]); empty if there is no `FROM`.
    pub fn labels(&self) -> &[(String, String)] {
        self.stages.last().map(|s| s.labels()).unwrap_or(&[])
    }

    /// Starts a set of edits; [`Editor::render`] returns the edited text.
    pub fn edit(&self) -> Editor<'_> {
        Editor { dockerfile: self, splices: Vec::new() }
    }

    fn stage(&self, index: usize) -> Result<&Stage, Error> {
        self.stages.get(index).ok_or(Error::NoSuchStage(index))
    }

    /// The start of the line holding `pos`.
    fn line_start(&self, pos: usize) -> usize {
        self.text[..pos].rfind('\n').map(|p| p + 1).unwrap_or(0).max(self.body_start.min(pos))
    }

    /// Just after the line break that ends the line holding `pos` (or the end of the text).
    fn line_end(&self, pos: usize) -> usize {
        self.text[pos..].find('\n').map(|p| pos + p + 1).unwrap_or(self.text.len())
    }
}

impl fmt::Display for Dockerfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A set of edits to a [`Dockerfile`], applied together by [`Editor::render`].
///
/// Every edit refers to the Dockerfile as parsed (stage and instruction indexes do not shift as
/// edits are added). Edits must not touch the same text: removing an instruction and also
/// rewriting it is a [`Error::Conflict`]. Several insertions at the same place come out in the
/// order they were made. Inserted lines use the file's line break (`\n` or `\r\n`).
#[derive(Debug, Clone)]
pub struct Editor<'a> {
    dockerfile: &'a Dockerfile,
    splices: Vec<Splice>,
}

#[derive(Debug, Clone)]
struct Splice {
    range: Range<usize>,
    text: String,
}

impl Editor<'_> {
    /// Replaces the image of stage `stage`'s `FROM`, keeping `--platform=…`, `AS name` and all other
    /// text. `image` must be a literal image reference (no spaces, quotes, `$` or escapes).
    pub fn set_from_image(&mut self, stage: usize, image: &str) -> Result<&mut Self, Error> {
        let span = self.dockerfile.stage(stage)?.image_span.clone();
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '$' | '\\' | '`');
        if image.is_empty() || image.starts_with('-') || image.contains(bad) {
            return Err(Error::InvalidArgument(format!("{image:?} is not a literal image reference")));
        }
        self.splice(span, image.to_string())?;
        Ok(self)
    }

    /// Appends one `LABEL` instruction with all these labels at the end of the file (the end of the
    /// last stage, after any trailing comments), quoted so that docker reads back exactly these
    /// keys and values. An empty list adds nothing.
    ///
    /// Keys and values may hold any character except line breaks and NUL, which no Dockerfile
    /// can express; keys must also be non-empty and must not contain `=`.
    pub fn add_labels<K: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(K, V)]) -> Result<&mut Self, Error> {
        if labels.is_empty() {
            return Ok(self);
        }
        let escape = self.dockerfile.escape;
        let mut line = String::from("LABEL");
        for (key, value) in labels {
            let key = key.as_ref();
            if key.is_empty() || key.contains('=') {
                return Err(Error::InvalidArgument(format!("label key {key:?} is empty or contains '='")));
            }
            line.push(' ');
            line.push_str(&quote(key, escape)?);
            line.push('=');
            line.push_str(&quote(value.as_ref(), escape)?);
        }
        let last = self.dockerfile.stages.len().checked_sub(1).ok_or(Error::NoSuchStage(0))?;
        self.insert_at_end_of_stage(last, &line)
    }

    /// Adds `text`, one instruction (continuation lines allowed), as the last instruction of stage
    /// `stage`. For the last stage it goes at the end of the file, after any trailing comments;
    /// for another stage, right after the stage's last instruction (so comments before the next
    /// `FROM` stay with it).
    pub fn add_instruction_at_end_of_stage(&mut self, stage: usize, text: &str) -> Result<&mut Self, Error> {
        self.dockerfile.stage(stage)?;
        let line = self.snippet(text)?;
        self.insert_at_end_of_stage(stage, &line)
    }

    /// Adds `text`, one instruction (continuation lines allowed), right after stage `stage`'s `FROM`.
    pub fn insert_after_from(&mut self, stage: usize, text: &str) -> Result<&mut Self, Error> {
        let from = self.dockerfile.stage(stage)?.instructions.start;
        let line = self.snippet(text)?;
        self.insert_after_instruction(from, &line)
    }

    /// Removes instruction `index` (see [`Dockerfile::instructions`]) with its whole lines,
    /// continuation lines included. Removing a `FROM` does not remove the rest of its stage.
    pub fn remove_instruction(&mut self, index: usize) -> Result<&mut Self, Error> {
        let span = self.dockerfile.instructions.get(index).ok_or(Error::NoSuchInstruction(index))?.span.clone();
        let range = self.dockerfile.line_start(span.start)..self.dockerfile.line_end(span.end);
        self.splice(range, String::new())?;
        Ok(self)
    }

    /// The edited text. Everything the edits did not touch is byte-for-byte as in the source.
    pub fn render(&self) -> String {
        let source = &self.dockerfile.text;
        let mut splices: Vec<&Splice> = self.splices.iter().collect();
        splices.sort_by_key(|s| (s.range.start, s.range.end));
        let mut out = String::with_capacity(source.len() + splices.iter().map(|s| s.text.len()).sum::<usize>());
        let mut pos = 0;
        for splice in splices {
            out.push_str(&source[pos..splice.range.start]);
            out.push_str(&splice.text);
            pos = splice.range.end;
        }
        out.push_str(&source[pos..]);
        out
    }

    fn insert_at_end_of_stage(&mut self, stage: usize, line: &str) -> Result<&mut Self, Error> {
        let df = self.dockerfile;
        if stage + 1 == df.stages.len() {
            if df.instructions.last().is_some_and(|i| i.continues_at_eof) {
                return Err(Error::InvalidArgument(
                    "the Dockerfile ends inside a continued instruction; nothing can be added after it".to_string(),
                ));
            }
            self.insert_line(df.text.len(), line)
        } else {
            let last = df.stage(stage)?.instructions.end.saturating_sub(1);
            self.insert_after_instruction(last, line)
        }
    }

    fn insert_after_instruction(&mut self, index: usize, line: &str) -> Result<&mut Self, Error> {
        let instruction = self.dockerfile.instructions.get(index).ok_or(Error::NoSuchInstruction(index))?;
        if instruction.continues_at_eof {
            return Err(Error::InvalidArgument(format!(
                "instruction {index} continues to the end of the file; nothing can be added after it"
            )));
        }
        let pos = self.dockerfile.line_end(instruction.span.end);
        self.insert_line(pos, line)
    }

    /// Inserts a line at `pos`, which is the start of a line or the end of the text.
    fn insert_line(&mut self, pos: usize, line: &str) -> Result<&mut Self, Error> {
        let text = &self.dockerfile.text;
        let newline = self.dockerfile.newline;
        let inserted = if pos == text.len() && !text.is_empty() && !text.ends_with('\n') {
            format!("{newline}{line}")
        } else {
            format!("{line}{newline}")
        };
        self.splice(pos..pos, inserted)?;
        Ok(self)
    }

    /// Checks that `text` is one instruction that ends its own logical line, and converts its line
    /// breaks to the file's.
    fn snippet(&self, text: &str) -> Result<String, Error> {
        let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
        let lexed = lex(text, self.dockerfile.escape, false)
            .map_err(|e| Error::InvalidArgument(format!("cannot parse the instruction {text:?}: {e}")))?;
        let [only] = lexed.instructions.as_slice() else {
            return Err(Error::InvalidArgument(format!("{text:?} is not exactly one instruction")));
        };
        if only.continues_at_eof {
            return Err(Error::InvalidArgument(format!("{text:?} ends with a line continuation")));
        }
        let keyword = &only.logical[split_command(&only.logical).keyword];
        if keyword.eq_ignore_ascii_case("FROM") {
            return Err(Error::InvalidArgument("a FROM cannot be inserted into a stage".to_string()));
        }
        // Also the checks a whole file gets (quotes in LABEL, ENV and ARG values, …).
        let directive = if self.dockerfile.escape == '`' { "# escape=`\n" } else { "" };
        Dockerfile::parse(&format!("{directive}FROM scratch\n{text}"))
            .map_err(|e| Error::InvalidArgument(format!("cannot parse the instruction {text:?}: {e}")))?;
        let unified = text.replace("\r\n", "\n");
        Ok(if self.dockerfile.newline == "\n" { unified } else { unified.replace('\n', self.dockerfile.newline) })
    }

    fn splice(&mut self, range: Range<usize>, text: String) -> Result<(), Error> {
        let overlaps = |a: &Range<usize>, b: &Range<usize>| match (a.is_empty(), b.is_empty()) {
            (true, true) => false,
            (true, false) => b.start < a.start && a.start < b.end,
            (false, true) => a.start < b.start && b.start < a.end,
            (false, false) => a.start < b.end && b.start < a.end,
        };
        if let Some(other) = self.splices.iter().find(|s| overlaps(&s.range, &range)) {
            return Err(Error::Conflict(format!(
                "bytes {}..{} were already edited (bytes {}..{})",
                range.start, range.end, other.range.start, other.range.end
            )));
        }
        self.splices.push(Splice { range, text });
        Ok(())
    }
}

/// Quotes `word` so that docker's parser reads it back unchanged as one word of a `LABEL` or `ENV`
/// (`key=value` form), for a Dockerfile whose escape character is `escape`.
///
/// Words made only of letters, digits and `._-/:@+,%^~` (and not starting with `-`) are returned
/// as they are; others are double-quoted, with `"`, `$` and the escape character escaped. Line
/// breaks and NUL cannot be expressed in a Dockerfile and are an [`Error::InvalidArgument`].
pub fn quote(word: &str, escape: char) -> Result<String, Error> {
    if word.contains(['\n', '\r', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "{word:?}: a Dockerfile cannot hold line breaks or NUL in a value"
        )));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-/:@+,%^~".contains(c);
    if !word.is_empty() && !word.starts_with('-') && word.chars().all(plain) {
        return Ok(word.to_string());
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if c == '"' || c == '$' || c == escape {
            out.push(escape);
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Lines and instructions (BuildKit's parser.Parse)

/// A piece of an instruction's logical text and where it comes from in the source.
#[derive(Debug, Clone)]
struct Segment {
    logical: usize,
    source: usize,
    len: usize,
}

#[derive(Debug)]
struct RawInstruction {
    span: Range<usize>,
    line: usize,
    logical: String,
    segments: Vec<Segment>,
    continues_at_eof: bool,
}

#[derive(Debug)]
struct Lexed {
    escape: char,
    body_start: usize,
    instructions: Vec<RawInstruction>,
}

struct PhysicalLine {
    start: usize,
    content_end: usize,
}

fn physical_lines(text: &str, body_start: usize) -> Vec<PhysicalLine> {
    let mut lines = Vec::new();
    let mut start = body_start;
    while start < text.len() {
        let (end, next) = match text[start..].find('\n') {
            Some(i) => (start + i, start + i + 1),
            None => (text.len(), text.len()),
        };
        let content_end = start + text[start..end].trim_end_matches('\r').len();
        lines.push(PhysicalLine { start, content_end });
        start = next;
    }
    lines
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (and spaces or tabs after it): `(rest, false)` if the
/// line continues, `(line, true)` if it ends the instruction.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        Some(rest) => (rest, false),
        None => (line, true),
    }
}

/// A parser directive line, `# name = value`: the lower-cased name and the value.
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[name_len..].trim_start_matches([' ', '\t']).strip_prefix('=')?.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value))
}

fn lex(text: &str, escape: char, directives: bool) -> Result<Lexed, Error> {
    let body_start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let lines = physical_lines(text, body_start);
    let mut escape = escape;
    let mut directives_done = !directives;
    let mut seen_directives: Vec<String> = Vec::new();
    let mut instructions = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = &lines[i];
        i += 1;
        let content = &text[line.start..line.content_end];
        let trimmed = content.trim_start();
        if !directives_done {
            match directive(trimmed) {
                Some((name, value)) if matches!(name.as_str(), "escape" | "syntax" | "check") => {
                    if seen_directives.contains(&name) {
                        let message = format!("only one {name} parser directive can be used");
                        return Err(Error::Parse { line: line_no, message });
                    }
                    if name == "escape" {
                        escape = match value {
                            "\\" => '\\',
                            "`" => '`',
                            _ => {
                                let message = format!("invalid escape token {value:?} does not match ` or \\");
                                return Err(Error::Parse { line: line_no, message });
                            }
                        };
                    }
                    seen_directives.push(name);
                }
                _ => directives_done = true,
            }
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let (first, mut ended) = trim_continuation(trimmed, escape);
        if ended && first.is_empty() {
            continue;
        }
        let start = line.content_end - trimmed.len();
        let mut logical = String::new();
        let mut segments = Vec::new();
        let mut push = |part: &str, source: usize| {
            if !part.is_empty() {
                segments.push(Segment { logical: logical.len(), source, len: part.len() });
                logical.push_str(part);
            }
        };
        push(first, start);
        let mut end = line.content_end;
        while !ended && i < lines.len() {
            let next = &lines[i];
            i += 1;
            end = next.content_end;
            let content = &text[next.start..next.content_end];
            if is_comment(content) || content.trim_start().is_empty() {
                continue;
            }
            let (part, e) = trim_continuation(content, escape);
            push(part, next.start);
            ended = e;
        }
        if logical.trim().is_empty() {
            continue;
        }
        instructions.push(RawInstruction {
            span: start..end,
            line: line_no,
            logical,
            segments,
            continues_at_eof: !ended,
        });
    }
    Ok(Lexed { escape, body_start, instructions })
}

/// Where the bytes `range` of a logical line are in the source (spanning any continuations).
fn source_range(segments: &[Segment], range: Range<usize>) -> Option<Range<usize>> {
    let at = |pos: usize| {
        segments.iter().find(|s| s.logical <= pos && pos < s.logical + s.len).map(|s| s.source + pos - s.logical)
    };
    let last = range.end.checked_sub(1)?;
    Some(at(range.start)?..at(last)? + 1)
}

/// The whitespace docker splits a command line on (`[\t\v\f\r ]`).
const COMMAND_SPACE: [char; 5] = [' ', '\t', '\u{b}', '\u{c}', '\r'];

struct Command {
    keyword: Range<usize>,
    flags: Vec<String>,
    args: Range<usize>,
}

/// Splits a logical line into keyword, `--flags` and arguments (BuildKit's `splitCommand`).
fn split_command(line: &str) -> Command {
    let start = line.len() - line.trim_start().len();
    let end = line.trim_end().len().max(start);
    let body = &line[start..end];
    let Some(space) = body.find(COMMAND_SPACE) else {
        return Command { keyword: start..end, flags: Vec::new(), args: end..end };
    };
    let rest_start = start + space + (body[space..].len() - body[space..].trim_start_matches(COMMAND_SPACE).len());
    let (skipped, flags) = extract_flags(&line[rest_start..end]);
    let args = &line[rest_start + skipped..end];
    let args_start = rest_start + skipped + (args.len() - args.trim_start().len());
    Command { keyword: start..start + space, flags, args: args_start..end }
}

/// Reads the leading `--flag` words (BuildKit's `extractBuilderFlags`): how many bytes they take,
/// and the flags with quotes and `\` escapes removed.
fn extract_flags(line: &str) -> (usize, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            return (line.len(), flags);
        }
        if chars[i].1 != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
            return (chars[i].0, flags);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i].1;
            i += 1;
            match quote {
                None if c.is_whitespace() => {
                    i -= 1;
                    break;
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => match chars.get(i) {
                    Some(&(_, next)) => {
                        word.push(next);
                        i += 1;
                    }
                    None => quote = None,
                },
                _ => word.push(c),
            }
        }
        if i == chars.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(word);
            }
            return (line.len(), flags);
        }
        if word == "--" {
            return (chars[i].0, flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// The byte ranges of the words of `text`, split on docker's command whitespace.
fn whitespace_words(text: &str) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (COMMAND_SPACE.contains(&c), start) {
            (true, Some(s)) => {
                words.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(s..text.len());
    }
    words
}

fn valid_stage_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Splits arguments into words the way docker does for `LABEL`, `ENV` and `ARG` (BuildKit's
/// `parseWords`): whitespace outside quotes separates words; quotes and escapes are kept.
fn split_words(text: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                in_word = false;
                continue;
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                blank_ok = true;
            }
            Some(q) if c == q => quote = None,
            _ => {}
        }
        if c == escape && quote != Some('\'') {
            match chars.get(i) {
                Some(&next) => {
                    word.push(c);
                    word.push(next);
                    i += 1;
                }
                None => quote = None,
            }
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// The raw key/value pairs of a `LABEL` or `ENV` (BuildKit's `parseNameVal`): `k=v …`, or the
/// legacy `k v` form whose value is the rest of the line.
fn name_values(args: &str, escape: char, keyword: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Err(format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let Some(space) = args.find(COMMAND_SPACE) else {
            return Err(format!("{keyword} must have two arguments"));
        };
        let value = args[space..].trim_start_matches(COMMAND_SPACE);
        return Ok(vec![(args[..space].to_string(), value.to_string())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None => Err(format!("syntax error - can't find = in {word:?}. Must be of the form: name=value")),
        })
        .collect()
}

fn detect_newline(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

// ---------------------------------------------------------------------------------------------
// Variables

fn lookup_meta(meta: &[(String, Option<String>)], name: &str) -> Option<String> {
    meta.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.clone())
}

fn set_meta(meta: &mut Vec<(String, Option<String>)>, name: &str, value: Option<String>) {
    match meta.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value,
        None => meta.push((name.to_string(), value)),
    }
}

/// A variable as seen inside a stage: `ENV` wins over `ARG`, as in docker.
fn lookup_stage(stage: &Stage, name: &str) -> Option<String> {
    stage
        .env
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .or_else(|| stage.args.iter().find(|a| a.name == name).and_then(|a| a.value.clone()))
}

fn set_pair(pairs: &mut Vec<(String, String)>, key: String, value: String) {
    match pairs.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => pairs.push((key, value)),
    }
}

/// Processes one word as docker's shell lexer does (`shell.ProcessWord`): quotes removed, escapes
/// resolved, `$VAR`, `${VAR}` and `${VAR:-word}`-style forms substituted. Unset variables become
/// empty, or with `keep_unset` stay as written.
fn shell_word(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
    keep_unset: bool,
) -> Result<String, String> {
    let mut shell = Shell { chars: word.chars().collect(), pos: 0, escape, vars, keep_unset };
    shell.word(None, false)
}

struct Shell<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Fn(&str) -> Option<String>,
    keep_unset: bool,
}

impl Shell<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn word(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                _ => {
                    self.pos += 1;
                    if c != self.escape {
                        out.push(c);
                        continue;
                    }
                    if raw_escapes {
                        out.push(c);
                    }
                    match self.next() {
                        Some(next) => out.push(next),
                        None => break,
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!("unexpected end of statement while looking for matching {stop}")),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".to_string()),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".to_string()),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                out.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!".contains(c) {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match (self.vars)(&name) {
                Some(value) => value,
                None if self.keep_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err("syntax error: missing '}'".to_string());
        };
        let value = (self.vars)(&name);
        let mut modifier = op.to_string();
        match op {
            '}' => Ok(match value {
                Some(value) => value,
                None if self.keep_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = op == ':';
                if null_is_unset {
                    op = self.next().ok_or("syntax error: missing '}'")?;
                    modifier.push(op);
                }
                let raw = op == '#' || op == '%';
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let word = self.word(Some('}'), raw)?;
                if value.is_none() && self.keep_unset {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let usable = value.as_deref().is_some_and(|v| !(null_is_unset && v.is_empty()));
                match op {
                    '-' => Ok(if usable { value.unwrap_or_default() } else { word }),
                    '+' => Ok(if usable { word } else { String::new() }),
                    '?' => match value {
                        Some(value) if usable => Ok(value),
                        Some(_) => Err(format!("{name}: {}", or(&word, "is not allowed to be empty"))),
                        None => Err(format!("{name}: {}", or(&word, "is not allowed to be unset"))),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let pattern = word.strip_prefix(op).unwrap_or(&word);
                        self.literal_pattern(pattern)?;
                        let trimmed = if op == '#' { value.strip_prefix(pattern) } else { value.strip_suffix(pattern) };
                        Ok(trimmed.unwrap_or(&value).to_string())
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.word(Some('/'), true)?;
                let replacement = self.word(Some('}'), true)?;
                let Some(value) = value else {
                    let slashes = if all { "//" } else { "/" };
                    return Ok(if self.keep_unset {
                        format!("${{{name}{slashes}{pattern}/{replacement}}}")
                    } else {
                        String::new()
                    });
                };
                self.literal_pattern(&pattern)?;
                self.literal_pattern(&replacement)?;
                if pattern.is_empty() {
                    return Ok(value);
                }
                Ok(if all { value.replace(&pattern, &replacement) } else { value.replacen(&pattern, &replacement, 1) })
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    /// Patterns are supported only when they are plain text (no glob or escape characters).
    fn literal_pattern(&self, pattern: &str) -> Result<(), String> {
        if pattern.contains(['*', '?', '[', self.escape]) {
            return Err(format!("unsupported pattern {pattern:?} in substitution (only plain text is supported)"));
        }
        Ok(())
    }
}

fn or<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.is_empty() {
        default
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dockerfile {
        match Dockerfile::parse(text) {
            Ok(df) => df,
            Err(e) => panic!("parse failed: {e}\n{text}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn keywords(df: &Dockerfile) -> Vec<&str> {
        df.instructions().iter().map(|i| i.keyword()).collect()
    }

    const MESSY: &str = "# syntax=docker/dockerfile:1\n\
        # a comment\n\
        \n\
        ARG BASE=fedora\n\
        ARG TAG=40\n\
        \n\
        FROM --platform=linux/amd64 ${BASE}:$TAG AS builder\n\
        \u{20}   # indented comment\n\
        RUN dnf install -y \\\n\
        \u{20}     gcc \\\n\
        # a comment inside the RUN\n\
        \u{20}     make   \\   \n\
        \n\
        \u{20}     && dnf clean all\n\
        \tenv PATH=/opt/bin:$PATH HOME=/root\n\
        \n\
        from builder as test\n\
        RUN make test\n\
        \n\
        FROM registry.example.com/ubi9:latest\n\
        COPY --from=builder /out /usr/bin/\n\
        LABEL name=\"my app\" version=1.0 \\\n\
        \u{20}     description='single \"quoted\"'\n\
        # trailing comment\n";

    #[test]
    fn round_trip_is_exact() {
        for text in [MESSY, "", "\n\n# only comments\n", "FROM a\r\nRUN b\r\n", "\u{feff}FROM a\nRUN b", "FROM a \\"] {
            let df = parse(text);
            assert_eq!(df.text(), text);
            assert_eq!(df.to_string(), text);
            assert_eq!(df.edit().render(), text);
        }
    }

    #[test]
    fn instructions_keywords_spans_and_logical_text() {
        let df = parse(MESSY);
        assert_eq!(keywords(&df), ["ARG", "ARG", "FROM", "RUN", "ENV", "FROM", "RUN", "FROM", "COPY", "LABEL"]);
        let run = &df.instructions()[3];
        assert_eq!(run.line(), 9);
        assert_eq!(run.text(), "RUN dnf install -y       gcc       make         && dnf clean all");
        assert_eq!(run.args(), "dnf install -y       gcc       make         && dnf clean all");
        let source = &df.text()[run.span()];
        assert!(source.starts_with("RUN dnf install -y \\\n"), "{source:?}");
        assert!(source.ends_with("      && dnf clean all"), "{source:?}");
        assert!(source.contains("# a comment inside the RUN\n"));
        // Every span starts at its keyword, however indented, and ends at the end of a line.
        for i in df.instructions() {
            let text = &df.text()[i.span()];
            assert!(text.to_ascii_uppercase().starts_with(i.keyword()), "{text:?}");
            assert!(df.text()[i.span().end..].is_empty() || df.text()[i.span().end..].starts_with('\n'));
        }
        assert_eq!(df.instructions()[4].keyword(), "ENV");
        assert_eq!(&df.text()[df.instructions()[4].span()], "env PATH=/opt/bin:$PATH HOME=/root");
        assert_eq!(df.instructions()[8].flags(), ["--from=builder"]);
        assert_eq!(df.instructions()[8].args(), "/out /usr/bin/");
        assert_eq!(df.instructions()[0].stage(), None);
        assert_eq!(df.instructions()[6].stage(), Some(1));
    }

    #[test]
    fn stages_aliases_and_images() {
        let df = parse(MESSY);
        let stages = df.stages();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[0].image(), "fedora:40");
        assert_eq!(stages[0].raw_image(), "${BASE}:$TAG");
        assert_eq!(stages[0].alias(), Some("builder"));
        assert_eq!(stages[0].platform(), Some("linux/amd64"));
        assert_eq!(stages[0].base(), Base::Image);
        assert_eq!(stages[0].instructions(), 2..5);
        assert_eq!(stages[1].alias(), Some("test"));
        assert_eq!(stages[1].base(), Base::Stage(0));
        assert_eq!(stages[1].instructions(), 5..7);
        assert_eq!(stages[2].alias(), None);
        assert_eq!(stages[2].instructions(), 7..10);
        assert_eq!(df.base_image(), Some("registry.example.com/ubi9:latest"));
        let parents: Vec<_> = df.parent_images().iter().map(|p| (p.stage, p.image)).collect();
        assert_eq!(parents, [(0, "fedora:40"), (2, "registry.example.com/ubi9:latest")]);
    }

    #[test]
    fn base_image_of_an_alias_and_of_scratch() {
        let df = parse("FROM busybox AS Build\nFROM BUILD\n");
        assert_eq!(df.stages()[0].alias(), Some("build"));
        assert_eq!(df.stages()[1].base(), Base::Stage(0));
        assert_eq!(df.base_image(), None);
        assert_eq!(df.parent_images().len(), 1);

        let df = parse("FROM golang AS build\nFROM scratch\nCOPY --from=build /a /a\n");
        assert_eq!(df.base_image(), Some("scratch"));
        assert_eq!(df.final_stage().map(|s| s.base()), Some(Base::Scratch));
        let parents = df.parent_images();
        assert_eq!(parents[1], ParentImage { stage: 1, image: "scratch", scratch: true });
        assert!(!parents[0].scratch);

        // An alias only counts once defined: a later stage's name is an image name before it.
        let df = parse("FROM later\nFROM busybox AS later\n");
        assert_eq!(df.stages()[0].base(), Base::Image);
        assert_eq!(parse("").base_image(), None);
    }

    #[test]
    fn global_args_defaults_build_args_and_substitution() {
        let text = "ARG REGISTRY=quay.io\nARG NAME\nARG TAG=${VERSION:-1.0}-$REGISTRY\n\
                    FROM ${REGISTRY}/org/${NAME:-app}:${TAG}\nFROM \"$REGISTRY/other\"\n";
        let df = parse(text);
        assert_eq!(df.global_args().len(), 3);
        assert_eq!(df.global_args()[1], Arg { name: "NAME".into(), default: None, value: None });
        assert_eq!(df.global_args()[2].value.as_deref(), Some("1.0-quay.io"));
        assert_eq!(df.stages()[0].image(), "quay.io/org/app:1.0-quay.io");
        assert_eq!(df.stages()[1].image(), "quay.io/other");

        let args = [("REGISTRY", "localhost:5000"), ("NAME", "x"), ("UNDECLARED", "y")];
        let df = Dockerfile::parse_with_build_args(text, &args).expect("test input is valid");
        assert_eq!(df.stages()[0].image(), "localhost:5000/org/x:1.0-localhost:5000");
        // A build arg only matters where an ARG declares it.
        let df = Dockerfile::parse_with_build_args("FROM img:$UNDECLARED\n", &args).expect("test input is valid");
        assert_eq!(df.stages()[0].image(), "img:");
    }

    #[test]
    fn stage_args_env_and_their_substitution() {
        let text = "ARG V=1\nFROM a\nARG V\nARG W=w-$V\nENV A=1 B=$A C=${V}\nENV D $A and $W\nARG A=fromarg\n\
                    ENV E=$A\nFROM a\nENV X=${V:-unset}\n";
        let df = parse(text);
        let s0 = &df.stages()[0];
        assert_eq!(s0.args()[0], Arg { name: "V".into(), default: None, value: Some("1".into()) });
        assert_eq!(s0.args()[1].value.as_deref(), Some("w-1"));
        // Words of one ENV see the environment from before it, as in docker; ENV wins over ARG.
        assert_eq!(s0.env(), pairs(&[("A", "1"), ("B", "$A"), ("C", "1"), ("D", "1 and w-1"), ("E", "1")]));
        // Global args are only visible in a stage that declares them.
        assert_eq!(df.stages()[1].env(), pairs(&[("X", "${V:-unset}")]));
    }

    #[test]
    fn labels_with_every_quoting_form() {
        let text = concat!(
            "FROM a\n",
            "LABEL plain=value \"quoted key\"=\"a b\" single='it''s' mixed=a\"b c\"d\n",
            "LABEL escaped=\"say \\\"hi\\\"\" dollar=\"\\$HOME\" back=\"a\\\\b\" other=\"\\n\\t\" bare=a\\ b\n",
            "label legacy   value with   spaces  \n",
            "LABEL cont=one \\\n",
            "  # comment inside\n",
            "  cont2=\"two \\\n",
            "three\" empty= emptyq=\"\"\n",
            "LABEL plain=override\n",
        );
        let df = parse(text);
        assert_eq!(
            df.labels(),
            pairs(&[
                ("plain", "override"),
                ("quoted key", "a b"),
                ("single", "its"),
                ("mixed", "ab cd"),
                ("escaped", "say \"hi\""),
                ("dollar", "$HOME"),
                ("back", "a\\b"),
                ("other", "\\n\\t"),
                ("bare", "a b"),
                ("legacy", "value with   spaces"),
                ("cont", "one"),
                ("cont2", "two three"),
                ("empty", ""),
                ("emptyq", ""),
            ])
        );
    }

    #[test]
    fn labels_substitute_known_variables_and_keep_unknown_ones() {
        let text = "FROM a AS base\nARG VERSION=2.1\nENV NAME=app\nLABEL version=$VERSION name=${NAME}-x \
                    path=$PATH home=${HOME:-/root} single='$NAME'\nFROM base\nLABEL extra=1\n";
        let df = parse(text);
        assert_eq!(
            df.labels(),
            pairs(&[
                ("version", "2.1"),
                ("name", "app-x"),
                ("path", "$PATH"),
                ("home", "${HOME:-/root}"),
                ("single", "$NAME"),
                ("extra", "1"),
            ])
        );
        // Labels of a stage built on another stage include that stage's labels.
        assert_eq!(df.stages()[1].env(), pairs(&[("NAME", "app")]));
    }

    #[test]
    fn escape_directive_backtick() {
        let text = "# escape=`\n\nFROM mcr.microsoft.com/windows\nRUN dir C:\\ `\n  && echo done\n\
                    LABEL path=\"C:\\Program Files\" q=\"a`\"b\" t=\"``\"\n";
        let df = parse(text);
        assert_eq!(df.escape_char(), '`');
        assert_eq!(df.instructions()[1].text(), "RUN dir C:\\   && echo done");
        assert_eq!(df.labels(), pairs(&[("path", "C:\\Program Files"), ("q", "a\"b"), ("t", "`")]));
        // A backslash at the end of a line does not continue it.
        let df = parse("# escape=`\nFROM a\nRUN echo \\\nRUN b\n");
        assert_eq!(keywords(&df), ["FROM", "RUN", "RUN"]);
    }

    #[test]
    fn directives_only_count_at_the_top() {
        let df = parse("# Escape = ` \n# syntax=x\nFROM a\n");
        assert_eq!(df.escape_char(), '`');
        // After a blank line, a comment, or an unknown directive, `# escape=` is a comment.
        for text in ["\n# escape=`\nFROM a\n", "# hi\n# escape=`\nFROM a\n", "# foo=bar\n# escape=`\nFROM a\n"] {
            assert_eq!(parse(text).escape_char(), '\\', "{text:?}");
        }
        assert!(matches!(Dockerfile::parse("# escape=x\nFROM a\n"), Err(Error::Parse { line: 1, .. })));
        assert!(matches!(Dockerfile::parse("# escape=`\n# escape=`\nFROM a\n"), Err(Error::Parse { line: 2, .. })));
    }

    #[test]
    fn continuation_details() {
        // Blank lines and comments inside a continuation are skipped, not the end of it; spaces after
        // the backslash are allowed; CRLF line breaks work.
        let df = parse("FROM a\r\nRUN one \\  \r\n\r\n   # note\r\n  two\r\nRUN three\r\n");
        assert_eq!(keywords(&df), ["FROM", "RUN", "RUN"]);
        assert_eq!(df.instructions()[1].text(), "RUN one   two");
        assert_eq!(&df.text()[df.instructions()[1].span()], "RUN one \\  \r\n\r\n   # note\r\n  two");
        // A comment line ending in a backslash does not continue.
        let df = parse("FROM a\n# comment \\\nRUN b\n");
        assert_eq!(keywords(&df), ["FROM", "RUN"]);
        // A continuation that reaches the end of the file.
        let df = parse("FROM a\nRUN b \\\n# c\n");
        assert!(df.instructions()[1].continues_at_eof);
    }

    #[test]
    fn case_insensitive_keywords_and_unknown_instructions() {
        let df = parse("from a As B\nRuN x\nMAINTAINER me\nfrobnicate now\n");
        assert_eq!(keywords(&df), ["FROM", "RUN", "MAINTAINER", "FROBNICATE"]);
        assert_eq!(df.stages()[0].alias(), Some("b"));
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("RUN x\nFROM a\n", 1),
            ("FROM\n", 1),
            ("FROM a b\n", 1),
            ("FROM a AS b c\n", 1),
            ("FROM a AS 1x\n", 1),
            ("FROM a AS x\nFROM b AS X\n", 2),
            ("FROM --foo=bar a\n", 1),
            ("FROM a\nLABEL k=\"unterminated\n", 2),
            ("FROM a\nLABEL onlykey\n", 2),
            ("FROM a\nLABEL a=b c\n", 2),
            ("FROM a\nENV\n", 2),
            ("ARG X\nFROM ${X:?must be set}\n", 2),
            ("FROM a\nLABEL x=${\n", 2),
            ("FROM $EMPTY\n", 1),
        ];
        for (text, line) in cases {
            match Dockerfile::parse(text) {
                Err(Error::Parse { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn set_from_image_keeps_platform_alias_and_layout() {
        let df = parse(MESSY);
        let out = df.edit().set_from_image(0, "quay.io/fedora/fedora:41").expect("test input is valid").render();
        assert_eq!(
            out,
            MESSY.replace(
                "FROM --platform=linux/amd64 ${BASE}:$TAG AS builder",
                "FROM --platform=linux/amd64 quay.io/fedora/fedora:41 AS builder"
            )
        );
        let out = df.edit().set_from_image(2, "ubi9@sha256:abc").expect("test input is valid").render();
        assert_eq!(out, MESSY.replace("FROM registry.example.com/ubi9:latest", "FROM ubi9@sha256:abc"));
        // An image on a continuation line, with odd spacing and a comment after.
        let text = "FROM \\\n  # the base\n   old:1   as   x  \nRUN a\n";
        let out = parse(text).edit().set_from_image(0, "new:2").expect("test input is valid").render();
        assert_eq!(out, "FROM \\\n  # the base\n   new:2   as   x  \nRUN a\n");
        assert_eq!(parse(&out).stages()[0].image(), "new:2");
    }

    #[test]
    fn set_from_image_rejects_bad_input() {
        let df = parse("FROM a\n");
        for bad in ["", "a b", "$X", "\"a\"", "-x", "a\nb", "a\\b"] {
            assert!(matches!(df.edit().set_from_image(0, bad), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        assert_eq!(df.edit().set_from_image(1, "b").err(), Some(Error::NoSuchStage(1)));
    }

    #[test]
    fn add_labels_appends_one_label_at_end_of_file() {
        let df = parse(MESSY);
        let out = df.edit().add_labels(&[("a", "1"), ("com.example/b", "x:y")]).expect("test input is valid").render();
        assert_eq!(out, format!("{MESSY}LABEL a=1 com.example/b=x:y\n"));
        // A file without a final line break keeps not having one.
        let out = parse("FROM a\nRUN b").edit().add_labels(&[("a", "1")]).expect("test input is valid").render();
        assert_eq!(out, "FROM a\nRUN b\nLABEL a=1");
        // CRLF files get CRLF.
        let out = parse("FROM a\r\n").edit().add_labels(&[("a", "1")]).expect("test input is valid").render();
        assert_eq!(out, "FROM a\r\nLABEL a=1\r\n");
        // Nothing to add, nothing added.
        let empty: [(&str, &str); 0] = [];
        assert_eq!(df.edit().add_labels(&empty).expect("test input is valid").render(), MESSY);
    }

    #[test]
    fn add_labels_quotes_tricky_values_exactly() {
        let labels = [
            ("name", "my app"),
            ("quote", "say \"hi\""),
            ("single", "it's"),
            ("dollar", "$HOME ${X}"),
            ("backslash", "C:\\dir\\"),
            ("backtick", "`cmd`"),
            ("empty", ""),
            ("key with space", "v"),
            ("hash", "#not a comment"),
            ("eq", "a=b"),
            ("dash", "-x"),
            ("tab", "a\tb"),
            ("unicode", "ünï"),
        ];
        let df = parse("FROM a\n");
        let out = df.edit().add_labels(&labels).expect("test input is valid").render();
        let expected = concat!(
            "FROM a\nLABEL name=\"my app\" quote=\"say \\\"hi\\\"\" single=\"it's\" dollar=\"\\$HOME \\${X}\" ",
            "backslash=\"C:\\\\dir\\\\\" backtick=\"`cmd`\" empty=\"\" \"key with space\"=v hash=\"#not a comment\" ",
            "eq=\"a=b\" dash=\"-x\" tab=\"a\tb\" unicode=\"ünï\"\n"
        );
        assert_eq!(out, expected);
        assert_eq!(parse(&out).labels(), pairs(&labels));
    }

    #[test]
    fn add_labels_quotes_for_the_backtick_escape() {
        let labels = [("path", "C:\\Program Files\\"), ("tick", "a`b"), ("quote", "\"$x\"")];
        let df = parse("# escape=`\nFROM a\n");
        let out = df.edit().add_labels(&labels).expect("test input is valid").render();
        assert_eq!(out, "# escape=`\nFROM a\nLABEL path=\"C:\\Program Files\\\" tick=\"a``b\" quote=\"`\"`$x`\"\"\n");
        assert_eq!(parse(&out).labels(), pairs(&labels));
    }

    #[test]
    fn add_labels_rejects_what_docker_cannot_express() {
        let df = parse("FROM a\n");
        for (k, v) in [("a", "line\nbreak"), ("a", "cr\r"), ("", "v"), ("a=b", "v"), ("a", "nul\0")] {
            assert!(matches!(df.edit().add_labels(&[(k, v)]), Err(Error::InvalidArgument(_))), "{k:?}={v:?}");
        }
        assert_eq!(parse("").edit().add_labels(&[("a", "b")]).err(), Some(Error::NoSuchStage(0)));
        // Text added after an instruction that continues to the end of the file would join it.
        let df = parse("FROM a\nRUN b \\\n# c\n");
        assert!(matches!(df.edit().add_labels(&[("a", "b")]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn quote_round_trips_through_the_parser() {
        let values =
            ["", "a", "a b", "\"", "\\", "\\\"", "$", "$$", "${", "'", "''", "`", "a\\", "x\\$y", " lead", "-"];
        for escape in ['\\', '`'] {
            let mut text = if escape == '`' { "# escape=`\n".to_string() } else { String::new() };
            text.push_str("FROM a\n");
            for (i, v) in values.iter().enumerate() {
                text.push_str(&format!("ENV v{i}={}\n", quote(v, escape).expect("test input is valid")));
            }
            let df = parse(&text);
            let got: Vec<&str> = df.stages()[0].env().iter().map(|(_, v)| v.as_str()).collect();
            assert_eq!(got, values, "{text}");
        }
    }

    #[test]
    fn add_instruction_at_end_of_stage_and_after_from() {
        let text = "FROM a AS one\nRUN x\n\n# about two\nFROM b\nRUN y\n# trailing\n";
        let df = parse(text);
        let out = df.edit().add_instruction_at_end_of_stage(0, "RUN added").expect("test input is valid").render();
        assert_eq!(out, "FROM a AS one\nRUN x\nRUN added\n\n# about two\nFROM b\nRUN y\n# trailing\n");
        let out = df.edit().add_instruction_at_end_of_stage(1, "RUN added\n").expect("test input is valid").render();
        assert_eq!(out, format!("{text}RUN added\n"));
        let out = df
            .edit()
            .insert_after_from(1, "ADD Dockerfile-app /root/buildinfo/")
            .expect("test input is valid")
            .render();
        assert_eq!(
            out,
            "FROM a AS one\nRUN x\n\n# about two\nFROM b\nADD Dockerfile-app /root/buildinfo/\nRUN y\n# trailing\n"
        );
        // A multi-line instruction is fine, and takes the file's line breaks.
        let out =
            parse("FROM a\r\n").edit().insert_after_from(0, "RUN a \\\n  b").expect("test input is valid").render();
        assert_eq!(out, "FROM a\r\nRUN a \\\r\n  b\r\n");
        // FROM on the last line without a line break.
        let out = parse("FROM a").edit().insert_after_from(0, "COPY x y").expect("test input is valid").render();
        assert_eq!(out, "FROM a\nCOPY x y");
    }

    #[test]
    fn inserted_text_must_be_one_whole_instruction() {
        let df = parse("FROM a\n");
        for bad in
            ["", "  ", "# just a comment", "RUN a\nRUN b", "RUN a \\", "FROM b", "from b AS c", "LABEL a=\"x", "ENV"]
        {
            let result = df.edit().insert_after_from(0, bad).map(|e| e.render());
            assert!(matches!(result, Err(Error::InvalidArgument(_))), "{bad:?}: {result:?}");
        }
        assert_eq!(df.edit().add_instruction_at_end_of_stage(3, "RUN a").err(), Some(Error::NoSuchStage(3)));
    }

    #[test]
    fn remove_instruction_removes_whole_lines() {
        let text = "FROM a\n  RUN one \\\n    # c\n    two\nRUN three\nRUN last";
        let df = parse(text);
        assert_eq!(
            df.edit().remove_instruction(1).expect("test input is valid").render(),
            "FROM a\nRUN three\nRUN last"
        );
        assert_eq!(
            df.edit().remove_instruction(3).expect("test input is valid").render(),
            "FROM a\n  RUN one \\\n    # c\n    two\nRUN three\n"
        );
        assert_eq!(df.edit().remove_instruction(4).err(), Some(Error::NoSuchInstruction(4)));
    }

    #[test]
    fn several_edits_compose() {
        let df = parse(MESSY);
        let run = 3;
        let mut editor = df.edit();
        editor
            .set_from_image(0, "fedora:41")
            .and_then(|e| e.set_from_image(2, "ubi9:9.4"))
            .and_then(|e| e.remove_instruction(run))
            .and_then(|e| e.insert_after_from(2, "ADD Dockerfile /root/buildinfo/Dockerfile"))
            .and_then(|e| e.add_instruction_at_end_of_stage(0, "RUN echo built"))
            .and_then(|e| e.add_labels(&[("release", "3 \"final\"")]))
            .and_then(|e| e.add_instruction_at_end_of_stage(2, "USER 1001"))
            .expect("test input is valid");
        let out = editor.render();
        let expected = "# syntax=docker/dockerfile:1\n# a comment\n\nARG BASE=fedora\nARG TAG=40\n\n\
            FROM --platform=linux/amd64 fedora:41 AS builder\n    # indented comment\n\
            \tenv PATH=/opt/bin:$PATH HOME=/root\nRUN echo built\n\nfrom builder as test\nRUN make test\n\n\
            FROM ubi9:9.4\nADD Dockerfile /root/buildinfo/Dockerfile\nCOPY --from=builder /out /usr/bin/\n\
            LABEL name=\"my app\" version=1.0 \\\n      description='single \"quoted\"'\n# trailing comment\n\
            LABEL release=\"3 \\\"final\\\"\"\nUSER 1001\n";
        assert_eq!(out, expected);
        let again = parse(&out);
        assert_eq!(again.base_image(), Some("ubi9:9.4"));
        assert_eq!(again.labels().last(), Some(&("release".to_string(), "3 \"final\"".to_string())));
    }

    #[test]
    fn conflicting_edits_are_refused() {
        let df = parse("FROM a\nRUN b\n");
        let mut editor = df.edit();
        editor.remove_instruction(0).expect("test input is valid");
        assert!(matches!(editor.set_from_image(0, "c"), Err(Error::Conflict(_))));
        assert!(matches!(editor.remove_instruction(0), Err(Error::Conflict(_))));
        // Inserting next to a removed line is fine.
        editor.insert_after_from(0, "RUN c").expect("test input is valid");
        assert_eq!(editor.render(), "RUN c\nRUN b\n");
    }

    #[test]
    fn byte_order_mark_is_kept() {
        let text = "\u{feff}FROM a\nRUN b\n";
        let df = parse(text);
        assert_eq!(df.instructions()[0].span(), 3..9);
        assert_eq!(df.edit().remove_instruction(0).expect("test input is valid").render(), "\u{feff}RUN b\n");
        assert_eq!(df.edit().set_from_image(0, "c").expect("test input is valid").render(), "\u{feff}FROM c\nRUN b\n");
    }

    #[test]
    fn shell_word_forms() {
        let vars = |name: &str| match name {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            ("$SET", "value"),
            ("${SET}x", "valuex"),
            ("$SETx", ""),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${SET:+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${SET#val}", "ue"),
            ("${SET%ue}", "val"),
            ("${SET/a/A}", "vAlue"),
            ("a$", "a$"),
            ("'$SET'", "$SET"),
            ("\"$SET\"", "value"),
            ("\\$SET", "$SET"),
            ("a\\ b", "a b"),
            ("${UNSET:-\"x y\"}", "x y"),
        ];
        for (word, expected) in cases {
            assert_eq!(shell_word(word, '\\', &vars, false).as_deref(), Ok(expected), "{word}");
        }
        assert_eq!(shell_word("${UNSET:-d}", '\\', &vars, true).as_deref(), Ok("${UNSET:-d}"));
        assert!(shell_word("${SET#*l}", '\\', &vars, false).is_err());
        assert!(shell_word("${EMPTY:?}", '\\', &vars, false).is_err());
    }

    #[test]
    fn generated_inputs_never_panic_and_edits_reparse() {
        const PIECES: [&str; 24] = [
            "FROM ",
            "LABEL ",
            "ENV ",
            "ARG ",
            "RUN ",
            " AS ",
            "img",
            "x=",
            "\"",
            "'",
            "$",
            "${A}",
            "\\",
            "`",
            "\n",
            "\r\n",
            "#",
            " ",
            "\t",
            "=",
            "é",
            "--platform=p ",
            "# escape=`\n",
            "\\\n",
        ];
        let labels = [("k", "v w"), ("q", "\"$x\\`'"), ("e", "")];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            let Ok(df) = Dockerfile::parse(&text) else { continue };
            parsed += 1;
            assert_eq!(df.edit().render(), text);
            for stage in 0..df.stages().len() {
                let out = df.edit().set_from_image(stage, "new.example/img:1").expect("test input is valid").render();
                let again = Dockerfile::parse(&out).unwrap_or_else(|e| panic!("{e}: {text:?} -> {out:?}"));
                assert_eq!(again.stages()[stage].image(), "new.example/img:1", "{text:?} -> {out:?}");
            }
            if let Ok(editor) = df.edit().add_labels(&labels) {
                let out = editor.render();
                let again = Dockerfile::parse(&out).unwrap_or_else(|e| panic!("{e}: {text:?} -> {out:?}"));
                for (k, v) in labels {
                    assert!(again.labels().contains(&(k.to_string(), v.to_string())), "{text:?} -> {out:?}");
                }
            }
        }
        assert!(parsed > 1000, "only {parsed} generated files parsed");
    }
}
