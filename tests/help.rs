//! Help a person can use: `reactor completions` gives scripts that bash, zsh and fish accept and
//! that complete reactor's commands and flags in those real shells, and `reactor man` gives pages
//! that man and groff render. The help texts themselves (an example each, only flags and plugins
//! that exist) are checked by the unit tests of `reactor-host/src/manual.rs`.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Every page `reactor man --dir` writes: one per visible command.
const PAGES: [&str; 17] = [
    "reactor",
    "reactor-build",
    "reactor-build-json",
    "reactor-build-git",
    "reactor-build-path",
    "reactor-plugins",
    "reactor-plugins-list",
    "reactor-plugins-inspect",
    "reactor-plugins-check",
    "reactor-plugins-install",
    "reactor-plugins-remove",
    "reactor-plugins-package",
    "reactor-plugins-new",
    "reactor-completions",
    "reactor-man",
    "reactor-create-build-image",
    "reactor-inside-build",
];

/// Runs reactor without the engine (which `util::reactor` checks for).
fn reactor_run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reactor"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run reactor")
}

/// Runs reactor and returns its stdout, failing unless it exits 0 with nothing on stderr.
fn reactor_stdout(dir: &Path, args: &[&str]) -> String {
    let out = reactor_run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reactor {args:?} exited {:?}:\n{stderr}", out.status.code());
    assert!(stderr.is_empty(), "reactor {args:?} wrote to stderr:\n{stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a program (bash, groff, man) and returns its stdout and stderr, failing unless it exits 0.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {program} ({e}): scripts/setup.sh installs it"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?} exited {:?}:\n{stdout}\n{stderr}", out.status.code());
    (stdout.into_owned(), stderr.into_owned())
}

/// What bash's completion of `line` (the cursor at its end) offers, with reactor's script loaded.
fn bash_completes(script: &Path, line: &str) -> Vec<String> {
    // Called as bash calls a `complete -F` function: the command, the word being completed and
    // the word before it, with COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set.
    let program = format!(
        "source {script}; COMP_LINE=\"$LINE\"; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< \"$LINE \"; \
         [[ $LINE == *' ' ]] && COMP_WORDS+=(''); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
         _reactor reactor \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display()
    );
    let (stdout, _) = run("bash", &["--norc", "-c", &program], &[("LINE", line)]);
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn the_bash_completion_script_parses_and_completes_commands_and_flags() {
    let dir = workdir();
    let script = dir.path().join("reactor.bash");
    std::fs::write(&script, reactor_stdout(dir.path(), &["completions", "bash"])).expect("write the script");
    run("bash", &["-n", &script.display().to_string()], &[]);

    assert_eq!(bash_completes(&script, "reactor bu"), ["build"]);
    let commands = bash_completes(&script, "reactor ");
    for command in ["build", "plugins", "completions", "man"] {
        assert!(commands.iter().any(|c| c == command), "`reactor <TAB>` offers {commands:?}");
    }
    assert!(!commands.iter().any(|c| c.contains("worker")), "`reactor <TAB>` offers the hidden worker: {commands:?}");
    assert_eq!(bash_completes(&script, "reactor build j"), ["json"]);
    assert_eq!(bash_completes(&script, "reactor build json --sub"), ["--substitute"]);
    assert_eq!(bash_completes(&script, "reactor plugins new x --pha"), ["--phase"]);
}

#[test]
fn zsh_and_fish_get_their_scripts() {
    let dir = workdir();
    let zsh = reactor_stdout(dir.path(), &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef reactor"), "{}", &zsh[..zsh.len().min(200)]);
    let fish = reactor_stdout(dir.path(), &["completions", "fish"]);
    assert!(fish.contains("complete -c reactor") && fish.contains("substitute"), "{fish}");
    assert!(!zsh.contains("plugin-worker") && !fish.contains("plugin-worker"));
}

/// What fish's completion of `line` offers (`complete -C`, which is what TAB shows), with
/// reactor's script sourced: the candidates without their descriptions.
fn fish_completes(script: &Path, line: &str) -> Vec<String> {
    let program = format!("source {}; complete -C \"$LINE\"", script.display());
    let (stdout, stderr) = run("fish", &["--no-config", "-c", &program], &[("LINE", line)]);
    assert!(stderr.is_empty(), "fish complains about the script:\n{stderr}");
    stdout.lines().map(|l| l.split('\t').next().unwrap_or_default().to_owned()).collect()
}

#[test]
fn fish_completes_commands_and_flags() {
    let dir = workdir();
    let script = dir.path().join("reactor.fish");
    std::fs::write(&script, reactor_stdout(dir.path(), &["completions", "fish"])).expect("write the script");
    run("fish", &["--no-config", "--no-execute", &script.display().to_string()], &[]);

    assert_eq!(fish_completes(&script, "reactor build js"), ["json"]);
    assert_eq!(fish_completes(&script, "reactor build json --prog"), ["--progress"]);
    assert_eq!(fish_completes(&script, "reactor plugins new x --pha"), ["--phase"]);
    let commands = fish_completes(&script, "reactor ");
    for command in ["build", "plugins", "completions", "man"] {
        assert!(commands.iter().any(|c| c == command), "`reactor <TAB>` offers {commands:?}");
    }
    assert!(!commands.iter().any(|c| c.contains("worker")), "`reactor <TAB>` offers the hidden worker: {commands:?}");
}

/// Drives an interactive zsh through a pseudo-terminal (the `zsh/zpty` module), as a person at
/// a terminal would: `compinit` with the directory of `_reactor` first in `fpath`, then the line
/// typed and TAB pressed. `compadd` is wrapped to write every candidate it is given to `hits`, so
/// what the completion offered is read from a file rather than from the redrawn screen. TAB runs
/// the completion and then a command that prints DONE: anything typed after TAB would be
/// typeahead, which zsh's completion may give up for (seen under load). Prints
/// what the terminal showed while loading on stderr. `$1`: the directory; `$2`: the line.
const ZSH_DRIVER: &str = r#"
dir=$1 line=$2
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=($dir \$fpath); autoload -Uz compinit; compinit -u -d $dir/zcompdump"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a __hits; builtin compadd -A __hits "$@"; local r=$?; (( $#__hits )) && print -rl -- $__hits >> '$dir'/hits; builtin compadd "$@"; return r; }'
zpty -w z 'complete-then-done() { zle complete-word; BUFFER="print D\"\"ONE"; zle accept-line; }; zle -N complete-then-done; bindkey "^I" complete-then-done'
zpty -w z "print L''OADED"
zpty -r z loaded '*LOADED*' || exit 3
zpty -w -n z "$line"$'\t'
zpty -r z done '*DONE*' || exit 4
print -r -- "$loaded" >&2
zpty -d z
"#;

/// What zsh's TAB completion of `line` offers with `_reactor` loaded by `compinit` (see
/// [`ZSH_DRIVER`]).
fn zsh_completes(dir: &Path, line: &str) -> Vec<String> {
    let driver = dir.join("drive.zsh");
    std::fs::write(&driver, ZSH_DRIVER).expect("write the driver");
    let hits = dir.join("hits");
    let _ = std::fs::remove_file(&hits);
    // `timeout` bounds a driver left waiting for a prompt that never comes (a broken script);
    // it is a guard against a hang, not a measure of speed.
    let (_, shown) =
        run("timeout", &["120", "zsh", "-f", &driver.display().to_string(), &dir.display().to_string(), line], &[]);
    for complaint in ["not found", "error", "parse", "no such", "undefined"] {
        assert!(
            !shown.to_lowercase().contains(complaint),
            "loading _reactor under compinit shows {complaint:?}:\n{shown}"
        );
    }
    std::fs::read_to_string(&hits).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn zsh_completes_commands_and_flags_at_a_terminal() {
    let dir = workdir();
    let functions = dir.path().join("functions");
    std::fs::create_dir(&functions).expect("mkdir");
    let script = functions.join("_reactor");
    std::fs::write(&script, reactor_stdout(dir.path(), &["completions", "zsh"])).expect("write the script");
    run("zsh", &["-n", &script.display().to_string()], &[]);

    assert_eq!(zsh_completes(&functions, "reactor build js"), ["json"]);
    assert_eq!(zsh_completes(&functions, "reactor build json --prog"), ["--progress"]);
    assert_eq!(zsh_completes(&functions, "reactor plugins new x --pha"), ["--phase"]);
    let commands = zsh_completes(&functions, "reactor ");
    for command in ["build", "plugins", "completions", "man"] {
        assert!(commands.iter().any(|c| c == command), "`reactor <TAB>` offers {commands:?}");
    }
    assert!(!commands.iter().any(|c| c.contains("worker")), "`reactor <TAB>` offers the hidden worker: {commands:?}");
}

#[test]
fn the_manual_page_renders_and_names_every_command() {
    let dir = workdir();
    let page = reactor_stdout(dir.path(), &["man"]);
    assert!(page.contains("\n.TH reactor 1 "), "{page}");
    assert_eq!(reactor_stdout(dir.path(), &["manpage"]), page, "`manpage` is `man`");
    let path = dir.path().join("reactor.1");
    std::fs::write(&path, &page).expect("write the page");

    // groff warns (-ww) about any request or escape it cannot make sense of; -k reads UTF-8
    // (through preconv), as man does.
    let (text, warnings) = run("groff", &["-k", "-man", "-Tutf8", "-ww", &path.display().to_string()], &[]);
    assert!(warnings.is_empty(), "groff warns:\n{warnings}");
    let (text_by_man, _) =
        run("man", &["-l", &path.display().to_string()], &[("MANPAGER", "cat"), ("MANWIDTH", "100")]);
    for rendered in [&text, &text_by_man] {
        // Bold and underlined letters are overstruck (`b\bb`); drop them to read the words.
        let plain = strip_overstrike(rendered);
        for wanted in
            ["SYNOPSIS", "SUBCOMMANDS", "EXAMPLE", "reactor-build(1)", "reactor-plugins(1)", "reactor-completions(1)"]
        {
            assert!(plain.contains(wanted), "no {wanted} in the rendered page:\n{plain}");
        }
        assert!(plain.contains("reactor build path --uri ./app"), "the example is missing:\n{plain}");
        assert!(!plain.contains("worker"), "the hidden worker is in the page:\n{plain}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command_for_packagers() {
    let dir = workdir();
    let out = dir.path().join("share/man/man1");
    let listed = reactor_stdout(dir.path(), &["man", "--dir", &out.display().to_string()]);
    let expected: Vec<String> = PAGES.iter().map(|p| out.join(format!("{p}.1")).display().to_string()).collect();
    assert_eq!(listed.lines().collect::<Vec<_>>(), expected);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut wanted: Vec<String> = PAGES.iter().map(|p| format!("{p}.1")).collect();
    wanted.sort();
    assert_eq!(files, wanted, "exactly one page per visible command");
    for name in PAGES {
        let path = out.join(format!("{name}.1"));
        let page = std::fs::read_to_string(&path).expect("read the page");
        assert!(page.contains(&format!("\n.TH {name} 1 ")), "{name}.1:\n{page}");
        assert!(page.contains(".SH EXAMPLE\n"), "{name}.1 has no example:\n{page}");
        let (_, warnings) = run("groff", &["-k", "-man", "-Tutf8", "-ww", &path.display().to_string()], &[]);
        assert!(warnings.is_empty(), "groff warns about {name}.1:\n{warnings}");
    }
}

#[test]
fn man_dir_that_cannot_be_made_is_one_clear_error() {
    let dir = workdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let inside = file.join("man1").display().to_string();
    let out = reactor_run(dir.path(), &["man", "--dir", &inside]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty() && !stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&format!("reactor man --dir {inside}: cannot create it")), "{}", errors[0]);
    assert!(errors[0].contains("choose another directory"), "{}", errors[0]);
}

/// Text without the overstrike a terminal renderer uses for bold (`x\bx`) and underline (`_\bx`).
fn strip_overstrike(text: &str) -> String {
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}
