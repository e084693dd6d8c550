//! `reactor completions SHELL` and `reactor man`: shell completion scripts and manual pages,
//! generated from the clap command itself so that they never drift from the flags. The hidden
//! `__plugin-worker` command appears in neither.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

use crate::app::exit;
use crate::cli::Cli;

/// Where a page's EXAMPLE section comes from: each command's `after_help` starts with this.
const EXAMPLE_PREFIX: &str = "Example: ";

/// Prints `shell`'s completion script for reactor to stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut completed_command(), "reactor", &mut script);
    print(&script, "the completion script")
}

/// The command that completions offer: reactor without its hidden subcommands, which
/// clap_complete's bash script would otherwise offer (clap has no way to remove a subcommand,
/// so the root is made again from its parts).
fn completed_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("reactor")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Prints reactor(1) to stdout, or with `dir` writes one page per command there.
pub fn man(dir: Option<&Path>) -> ExitCode {
    let Some(dir) = dir else {
        let mut page = Vec::new();
        return match render(&built_command(), &mut page) {
            Ok(()) => print(&page, "the manual page"),
            Err(e) => {
                log::error!("cannot render the manual page: {e}");
                ExitCode::from(exit::FAILED)
            }
        };
    };
    match write_pages(dir) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::from(exit::SUCCESS)
        }
        Err(problem) => {
            log::error!("{problem}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Writes `bytes` to stdout; a closed stdout (`reactor man | head`) is not an error.
fn print(bytes: &[u8], what: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            log::error!("cannot print {what}: {e}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// The command as its pages show it: built, so that subcommands know their full names
/// (`reactor-build-json`), and without the `help` subcommand, which has no page of its own.
fn built_command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// The visible commands, the root first, each followed by its subcommands.
pub(crate) fn visible_commands(command: &clap::Command) -> Vec<&clap::Command> {
    let mut all = vec![command];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(visible_commands(sub));
    }
    all
}

/// Writes `reactor.1`, `reactor-build.1`, … into `dir` (created if missing) and returns their
/// paths; the error names the file and what to do.
fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!("reactor man --dir {}: cannot create it ({e}): choose another directory", dir.display())
    })?;
    let root = built_command();
    let mut written = Vec::new();
    for command in visible_commands(&root) {
        let path = dir.join(format!("{}.1", page_name(command)));
        let mut page = Vec::new();
        render(command, &mut page).and_then(|()| std::fs::write(&path, &page)).map_err(|e| {
            format!("reactor man --dir: cannot write {} ({e}): choose another directory", path.display())
        })?;
        written.push(path);
    }
    Ok(written)
}

/// `reactor-build-json` for `reactor build json`.
fn page_name(command: &clap::Command) -> &str {
    command.get_display_name().unwrap_or_else(|| command.get_name())
}

/// One command's page: clap_mangen's sections, with the `after_help` example as an EXAMPLE
/// section (clap_mangen would title it EXTRA).
fn render(command: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    // Every page's footer says `reactor 0.4.0`, not its subcommand's name.
    let man = clap_mangen::Man::new(command.clone()).source(concat!("reactor ", env!("CARGO_PKG_VERSION")));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    if let Some(after_help) = command.get_after_help() {
        out.write_all(example_section(&after_help.to_string()).as_bytes())?;
    }
    if command.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// The EXAMPLE section of an `after_help`: its prose as a paragraph, its indented lines (the
/// commands) as a literal block.
fn example_section(after_help: &str) -> String {
    let mut roff = String::from(".SH EXAMPLE\n");
    let mut in_block = false;
    for line in after_help.lines() {
        let is_command = line.starts_with("  ");
        if is_command != in_block {
            roff.push_str(if is_command { ".PP\n.RS 4\n.nf\n" } else { ".fi\n.RE\n" });
            in_block = is_command;
        }
        if line.trim().is_empty() {
            if !in_block {
                roff.push_str(".PP\n");
            }
            continue;
        }
        let text = if is_command { line.trim_start() } else { line.strip_prefix(EXAMPLE_PREFIX).unwrap_or(line) };
        roff.push_str(&escape(text));
        roff.push('\n');
    }
    if in_block {
        roff.push_str(".fi\n.RE\n");
    }
    roff
}

/// Text as roff prints it literally: backslashes and hyphens escaped, and a leading `.` or `'`
/// (a request) guarded.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    //! The help text says only what exists: every example parses as a reactor command line,
    //! every `--flag` a command's help names is one of that command's, and every plugin-like
    //! name in backquotes is a built-in plugin.

    use std::collections::BTreeSet;

    use clap::Parser;

    use super::*;

    /// Every visible command's long help, with its full name (`reactor build json`).
    fn long_helps() -> Vec<(String, clap::Command, String)> {
        let root = built_command();
        visible_commands(&root)
            .into_iter()
            .map(|c| {
                let name = c.get_bin_name().unwrap_or(c.get_name()).to_owned();
                let help = c.clone().render_long_help().to_string();
                (name, c.clone(), help)
            })
            .collect()
    }

    /// The example lines of a help text, continuation lines (`\`) joined.
    fn example_commands(help: &str) -> Vec<String> {
        let after = help.split_once(EXAMPLE_PREFIX).map(|(_, after)| after).unwrap_or("");
        let mut commands = Vec::new();
        let mut pending = String::new();
        for line in after.lines().filter(|l| l.starts_with("  ")) {
            let line = line.trim();
            match line.strip_suffix('\\') {
                Some(start) => pending.push_str(start),
                None => {
                    pending.push_str(line);
                    commands.push(std::mem::take(&mut pending));
                }
            }
        }
        commands
    }

    #[test]
    fn every_visible_command_shows_an_example() {
        for (name, _, help) in long_helps() {
            assert!(!example_commands(&help).is_empty(), "{name} --help shows no example:\n{help}");
        }
    }

    /// Backquoted spans (`reactor completions bash`, `tag_and_push`).
    fn quoted(text: &str) -> impl Iterator<Item = &str> {
        text.split('`').skip(1).step_by(2)
    }

    #[test]
    fn every_example_is_a_command_line_reactor_accepts() {
        let mut checked = 0;
        for (name, _, help) in long_helps() {
            let in_prose = quoted(&help).filter(|q| q.starts_with("reactor ")).map(str::to_owned);
            for line in example_commands(&help).into_iter().chain(in_prose) {
                // Each `&&`-separated part that runs reactor; a redirection or pipe ends it.
                for part in line.split("&&").map(str::trim).filter(|p| p.starts_with("reactor ")) {
                    let words: Vec<&str> =
                        part.split_whitespace().take_while(|w| !matches!(*w, ">" | "|" | ">>")).collect();
                    if let Err(e) = Cli::try_parse_from(&words) {
                        panic!("{name} --help's example `{part}` does not parse:\n{e}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 16, "only {checked} examples checked");
    }

    /// `--word` tokens of a text (not inside a longer word such as `x--y`).
    fn flags_named(text: &str) -> BTreeSet<String> {
        let mut flags = BTreeSet::new();
        for (i, _) in text.match_indices("--") {
            if text[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '-') {
                continue;
            }
            let name: String = text[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if !name.is_empty() {
                flags.insert(name);
            }
        }
        flags
    }

    /// Every `--flag` of a command's prose (its examples and backquoted command lines are checked
    /// by parsing them) is one of the command's own flags.
    #[test]
    fn every_flag_a_help_names_is_one_of_its_commands() {
        for (name, command, help) in long_helps() {
            let mut prose = help.split(EXAMPLE_PREFIX).next().unwrap_or_default().to_owned();
            for span in quoted(&help) {
                prose = prose.replace(&format!("`{span}`"), "");
            }
            let mut known: BTreeSet<String> = ["help", "version"].map(String::from).into();
            for arg in command.get_arguments() {
                known.extend(arg.get_long().map(String::from));
                known.extend(arg.get_all_aliases().into_iter().flatten().map(String::from));
            }
            for flag in flags_named(&prose) {
                assert!(known.contains(&flag), "{name} --help names --{flag}, which it does not take:\n{help}");
            }
        }
    }

    #[test]
    fn every_plugin_a_help_names_is_a_builtin() {
        let registry = crate::plugins::Registry::with_builtins();
        let mut named = 0;
        for (name, _, help) in long_helps() {
            // Plugin keys are snake_case: a backquoted word with `_`, or the KEY of `inspect`.
            let inspected = example_commands(&help)
                .into_iter()
                .filter_map(|l| l.strip_prefix("reactor plugins inspect ").map(str::to_owned));
            let keys = quoted(&help).map(str::to_owned).chain(inspected).filter(|w| {
                w.contains('_')
                    && w.starts_with(|c: char| c.is_ascii_lowercase())
                    && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
            for key in keys {
                assert!(registry.get(&key).is_some(), "{name} --help names the plugin `{key}`, which is not built in");
                named += 1;
            }
        }
        // tag_and_push and pull_base_image, named by the source flags of `build git` and `build path`.
        assert!(named >= 4, "{named}");
    }

    #[test]
    fn the_hidden_worker_has_no_page_and_no_completion() {
        let root = built_command();
        let names: Vec<&str> = visible_commands(&root).into_iter().map(page_name).collect();
        assert!(names.contains(&"reactor-build-json") && names.contains(&"reactor-plugins-new"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("worker")), "{names:?}");
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut completed_command(), "reactor", &mut script);
            let script = String::from_utf8(script).expect("utf-8");
            assert!(script.contains("completions") && !script.contains("plugin-worker"), "{shell}");
        }
    }

    #[test]
    fn an_example_becomes_an_example_section() {
        let roff = example_section("Example: read it:\n  reactor man | man -l -\n  reactor man --dir .x\n");
        assert_eq!(
            roff,
            ".SH EXAMPLE\nread it:\n.PP\n.RS 4\n.nf\nreactor man | man \\-l \\-\nreactor man \\-\\-dir .x\n.fi\n.RE\n"
        );
        assert_eq!(escape(".x \\ y"), "\\&.x \\e y");
    }
}
