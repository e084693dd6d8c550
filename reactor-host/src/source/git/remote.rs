//! Fetching one commit over a network transport, as shallow as the server allows.
//!
//! One connection lists the remote's refs; the wanted name is resolved against that list, so
//! a branch or tag costs one fetch with depth 1 and an unknown name costs no fetch at all. A SHA
//! is asked for directly with depth 1, which servers allow only with
//! `uploadpack.allowReachableSHA1InWant` / `allowAnySHA1InWant` (as the big forges do). Where
//! one refuses, the branches are fetched ever deeper until the commit is there, then in full.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{AutotagOption, Direction, FetchOptions, Oid, Remote, RemoteCallbacks, RemoteUpdateFlags, Repository};

use super::{full_sha, is_hex_prefix, FetchError, Stall, Wanted};
use crate::cancel::Cancel;

/// A transfer that brings less than this within the idle timeout has stalled (a server that
/// trickles a byte now and then never trips the socket's own timeout).
pub(crate) const LOW_SPEED_BYTES: usize = 1024;

/// Every branch, kept as remote-tracking refs.
const BRANCHES: &str = "+refs/heads/*:refs/remotes/origin/*";

/// How deep the fallback fetches the branches before it fetches everything.
pub(super) const DEEPENING: [i32; 2] = [50, 1000];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: the whole history, even after shallow fetches.
const UNSHALLOW: i32 = i32::MAX;

/// A ref the remote advertises.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Advertised {
    pub name: String,
    pub oid: Oid,
    /// What `HEAD` points to, when the server says.
    pub symref_target: Option<String>,
}

/// How the wanted commit is fetched.
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    /// A ref the remote advertises, fetched by name; `shown` names it in the log.
    Ref { refname: String, oid: Oid, shown: String },
    /// A full SHA that is no advertised ref's tip: asked for by SHA, which the server may refuse.
    Sha(Oid),
    /// An abbreviated SHA, which cannot be asked for: found only in fetched history.
    Prefix(String),
    /// A revision expression on a ref or SHA (`main~2`, `v1^`): the base is fetched deeper until
    /// the expression resolves, as atomic-reactor's final full clone + `git reset --hard` took it.
    Expression { base: Box<Plan>, rest: String },
}

/// One fetch of the fallback chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Attempt {
    /// The plan's ref or SHA alone, depth 1.
    Depth1,
    /// Every branch, this deep.
    Deepen(i32),
    /// Every branch and tag, whole.
    Full,
}

/// Resolves `wanted` against the remote's refs, as a clone would find it: a branch, then a tag,
/// then a full ref name, then a SHA.
pub(super) fn plan(wanted: &Wanted, advertised: &[Advertised]) -> Result<Plan, FetchError> {
    let by_name = |name: &str| advertised.iter().find(|r| r.name == name);
    let as_ref = |r: &Advertised, shown: String| Plan::Ref { refname: r.name.clone(), oid: r.oid, shown };
    // A commit that is the tip of an advertised ref is fetched by that ref: every server allows it.
    // Several refs may match; they must agree on the commit (a SHA prefix may not be unique).
    let by_tip = |matches: &dyn Fn(&Oid) -> bool| {
        let tips: Vec<&Advertised> = advertised.iter().filter(|r| matches(&r.oid)).collect();
        let first = tips.first()?;
        if tips.iter().any(|r| r.oid != first.oid) {
            return None;
        }
        // A branch or tag rather than HEAD, for the log.
        let tip = tips.iter().find(|r| r.name != "HEAD").unwrap_or(first);
        // A peeled tag (`refs/tags/v1^{}`) is fetched through the tag itself.
        let refname = tip.name.strip_suffix("^{}").unwrap_or(&tip.name).to_owned();
        let oid = by_name(&refname).map_or(tip.oid, |r| r.oid);
        Some(Plan::Ref { shown: format!("the tip of {refname}"), refname, oid })
    };
    match wanted {
        Wanted::DefaultBranch => {
            let head = by_name("HEAD").ok_or_else(|| {
                FetchError::Failed("the remote has no default branch (HEAD); is it empty?".to_owned())
            })?;
            let shown = match head.symref_target.as_deref().and_then(|t| t.strip_prefix("refs/heads/")) {
                Some(branch) => format!("the default branch '{branch}'"),
                None => "the default branch (HEAD)".to_owned(),
            };
            Ok(as_ref(head, shown))
        }
        Wanted::Commit(oid) => Ok(by_tip(&|o| o == oid).unwrap_or(Plan::Sha(*oid))),
        Wanted::Name(name) => {
            if let Some((base, rest)) = split_expression(name) {
                let base = match base {
                    "HEAD" | "" => plan(&Wanted::DefaultBranch, advertised)?,
                    base => plan(&Wanted::Name(base.to_owned()), advertised)?,
                };
                if matches!(base, Plan::Prefix(_) | Plan::Expression { .. }) {
                    return Err(FetchError::NoSuchCommit(name.clone()));
                }
                return Ok(Plan::Expression { base: Box::new(base), rest: rest.to_owned() });
            }
            if let Some(branch) = by_name(&format!("refs/heads/{name}")) {
                return Ok(as_ref(branch, format!("branch '{name}'")));
            }
            if let Some(tag) = by_name(&format!("refs/tags/{name}")) {
                return Ok(as_ref(tag, format!("tag '{name}'")));
            }
            if let Some(full) = by_name(name).filter(|_| name.starts_with("refs/")) {
                return Ok(as_ref(full, format!("'{name}'")));
            }
            if let Some(oid) = full_sha(name) {
                return Ok(by_tip(&|o| *o == oid).unwrap_or(Plan::Sha(oid)));
            }
            if is_hex_prefix(name) {
                let prefix = name.to_ascii_lowercase();
                return Ok(by_tip(&|o| o.to_string().starts_with(&prefix)).unwrap_or(Plan::Prefix(prefix)));
            }
            Err(FetchError::NoSuchCommit(name.clone()))
        }
    }
}

/// `main~2` as (`main`, `~2`): a name holding `~`, `^`, `:` or `@{`, which no ref name may
/// (git check-ref-format), is a revision expression on the name before them.
fn split_expression(name: &str) -> Option<(&str, &str)> {
    let at = name.find(['~', '^', ':']).into_iter().chain(name.find("@{")).min()?;
    Some(name.split_at(at))
}

/// The fetches tried for `plan`, in order, until one brings the commit.
pub(super) fn attempts(plan: &Plan) -> Vec<Attempt> {
    let fallback = DEEPENING.iter().map(|&depth| Attempt::Deepen(depth)).chain([Attempt::Full]);
    match plan {
        Plan::Ref { .. } => vec![Attempt::Depth1],
        Plan::Sha(_) => std::iter::once(Attempt::Depth1).chain(fallback).collect(),
        Plan::Prefix(_) | Plan::Expression { .. } => fallback.collect(),
    }
}

/// Whether a failed `attempt` leaves the next one a chance: only a SHA the server would not
/// send by itself does; any other failure (the network, TLS, a missing repository) is final.
/// libgit2 refuses before asking when the server allows no SHA at all; a server that allows
/// only advertised tips answers `ERR upload-pack: not our ref`, which libgit2 reports as an
/// unexpected packet.
pub(super) fn worth_going_on(attempt: Attempt, error: &git2::Error) -> bool {
    attempt == Attempt::Depth1 && (is_refused_before_asking(error) || is_rejected_want(error))
}

/// libgit2 saw in the advertisement that the server sends no unadvertised SHA: nothing was sent.
fn is_refused_before_asking(error: &git2::Error) -> bool {
    error.message().contains("cannot fetch a specific object")
}

/// The server rejected the SHA asked for.
fn is_rejected_want(error: &git2::Error) -> bool {
    let message = error.message();
    message.contains("not our ref") || message.contains("unexpected packet type")
}

/// Fetches what `wanted` names from `url` into a new repository at `dest`. The work tree is left
/// for the caller to check out.
pub(super) fn fetch(url: &str, wanted: &Wanted, dest: &Path, cancel: &Cancel) -> Result<(Repository, Oid), FetchError> {
    let repo = Repository::init(dest).map_err(|e| FetchError::git(&e))?;
    let oid = fetch_into(&repo, url, wanted, cancel)?;
    Ok((repo, oid))
}

fn fetch_into(repo: &Repository, url: &str, wanted: &Wanted, cancel: &Cancel) -> Result<Oid, FetchError> {
    let idle = super::timeouts().idle;
    // Set by the progress callback when it stops a transfer that stalled.
    let stalled = Cell::new(false);
    let failed = |e: git2::Error| {
        if cancel.is_cancelled() {
            FetchError::Cancelled
        } else if stalled.get() {
            FetchError::TimedOut(Stall::TooSlow(idle))
        } else {
            FetchError::git(&e)
        }
    };
    // Anonymous: the URL, which may hold credentials, is not written into the checkout's config.
    let mut remote = repo.remote_anonymous(url).map_err(failed)?;
    remote.connect(Direction::Fetch).map_err(failed)?;
    let advertised: Vec<Advertised> = remote
        .list()
        .map_err(failed)?
        .iter()
        .map(|head| Advertised {
            name: head.name().to_owned(),
            oid: head.oid(),
            symref_target: head.symref_target().map(str::to_owned),
        })
        .collect();
    let plan = plan(wanted, &advertised)?;
    let attempts = attempts(&plan);
    for (i, &attempt) in attempts.iter().enumerate() {
        let is_last = i + 1 == attempts.len();
        // The first attempt reuses the connection that listed the refs; the others connect again.
        match transfer(repo, &mut remote, &plan, attempt, Watch { cancel, idle, stalled: &stalled }) {
            Ok(()) => {}
            Err(e) if cancel.is_cancelled() || stalled.get() => return Err(failed(e)),
            Err(e) if !is_last && worth_going_on(attempt, &e) => {
                log::debug!("asking for the SHA failed: {}", e.message());
                // A refusal sent nothing, so the connection can still ask for something else.
                if !is_refused_before_asking(&e) {
                    let _ = remote.disconnect();
                }
                continue;
            }
            Err(e) => return Err(failed(e)),
        }
        if let Some(oid) = find(repo, &plan) {
            log::info!("{}", fetched_how(&plan, oid, attempt));
            return Ok(oid);
        }
    }
    match plan {
        Plan::Ref { refname, .. } => Err(FetchError::Failed(format!("the remote did not send {refname}"))),
        Plan::Sha(oid) => Err(FetchError::NoSuchCommit(oid.to_string())),
        Plan::Prefix(prefix) => Err(FetchError::NoSuchCommit(prefix)),
        Plan::Expression { .. } => Err(FetchError::NoSuchCommit(match wanted {
            Wanted::Name(name) => name.clone(),
            _ => String::new(),
        })),
    }
}

/// Runs one fetch of the chain, updating the refs it brings (the next fetch tells the server
/// what it has from them).
fn transfer(
    repo: &Repository,
    remote: &mut Remote<'_>,
    plan: &Plan,
    attempt: Attempt,
    watch: Watch<'_>,
) -> Result<(), git2::Error> {
    let (refspecs, depth): (Vec<String>, i32) = match (attempt, plan) {
        (Attempt::Depth1, Plan::Ref { refname, .. }) => (vec![refname.clone()], 1),
        (Attempt::Depth1, Plan::Sha(oid)) => (vec![oid.to_string()], 1),
        // Never planned: a prefix cannot be asked for.
        (Attempt::Depth1, Plan::Prefix(_) | Plan::Expression { .. }) => (vec![BRANCHES.to_owned()], 1),
        // An expression needs its base's history only.
        (Attempt::Deepen(depth), Plan::Expression { base, .. }) => (vec![base_refspec(base)], depth),
        (Attempt::Full, Plan::Expression { base, .. }) => {
            (vec![base_refspec(base)], if repo.is_shallow() { UNSHALLOW } else { 0 })
        }
        (Attempt::Deepen(depth), _) => (vec![BRANCHES.to_owned()], depth),
        (Attempt::Full, _) => (
            vec![BRANCHES.to_owned(), "+refs/tags/*:refs/tags/*".to_owned()],
            if repo.is_shallow() { UNSHALLOW } else { 0 },
        ),
    };
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(watch)).depth(depth).download_tags(AutotagOption::None).update_fetchhead(false);
    remote.download(&refspecs, Some(&mut options))?;
    remote.update_tips(None, RemoteUpdateFlags::empty(), AutotagOption::None, None)?;
    remote.disconnect()
}

/// What to ask for to get `base`'s history: its ref, or its SHA.
fn base_refspec(base: &Plan) -> String {
    match base {
        Plan::Ref { refname, .. } => refname.clone(),
        Plan::Sha(oid) => oid.to_string(),
        // Never a base (see `plan`): every branch, as for a prefix.
        Plan::Prefix(_) | Plan::Expression { .. } => BRANCHES.to_owned(),
    }
}

/// What the progress callbacks watch a transfer for.
#[derive(Clone, Copy)]
struct Watch<'a> {
    cancel: &'a Cancel,
    /// How long the transfer may go without [`LOW_SPEED_BYTES`] arriving (or objects indexed).
    idle: Duration,
    /// Set when the callbacks stop a stalled transfer.
    stalled: &'a Cell<bool>,
}

/// Progress callbacks that stop the transfer once the build is cancelled, or once it stalls:
/// libgit2 stops when one returns false. (A server that sends nothing at all calls no callback:
/// libgit2's socket timeout ends that, and the workflow abandons the fetch on cancellation.)
fn callbacks(watch: Watch<'_>) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    let mut pace = Pace::new(Instant::now());
    callbacks.transfer_progress(move |progress| {
        if watch.cancel.is_cancelled() {
            return false;
        }
        let indexed = progress.indexed_objects() + progress.indexed_deltas();
        if pace.stalled(progress.received_bytes(), indexed, Instant::now(), watch.idle) {
            watch.stalled.set(true);
            return false;
        }
        true
    });
    callbacks.sideband_progress(move |_| !watch.cancel.is_cancelled());
    callbacks
}

/// When a transfer last moved on, and how far it had come then.
struct Pace {
    at: Instant,
    bytes: usize,
    indexed: usize,
}

impl Pace {
    fn new(now: Instant) -> Pace {
        Pace { at: now, bytes: 0, indexed: 0 }
    }

    /// Whether a transfer that has now received `bytes` and indexed `indexed` objects and deltas
    /// has stalled: neither [`LOW_SPEED_BYTES`] more nor an object more for longer than `idle`.
    fn stalled(&mut self, bytes: usize, indexed: usize, now: Instant, idle: Duration) -> bool {
        if bytes >= self.bytes + LOW_SPEED_BYTES || indexed != self.indexed {
            *self = Pace { at: now, bytes, indexed };
            return false;
        }
        now.duration_since(self.at) > idle
    }
}

/// The planned commit, if the fetches so far brought it.
fn find(repo: &Repository, plan: &Plan) -> Option<Oid> {
    let commit = match plan {
        Plan::Ref { oid, .. } => repo.find_object(*oid, None).ok()?.peel_to_commit().ok()?,
        Plan::Sha(oid) => repo.find_commit(*oid).ok()?,
        Plan::Prefix(prefix) => repo.revparse_single(prefix).ok()?.peel_to_commit().ok()?,
        Plan::Expression { base, rest } => {
            let base = find(repo, base)?;
            repo.revparse_single(&format!("{base}{rest}")).ok()?.peel_to_commit().ok()?
        }
    };
    Some(commit.id())
}

/// The info line saying which strategy brought `oid`.
pub(super) fn fetched_how(plan: &Plan, oid: Oid, attempt: Attempt) -> String {
    let why = match plan {
        Plan::Prefix(prefix) => format!("an abbreviated SHA ({prefix}) cannot be asked for"),
        Plan::Expression { rest, .. } => format!("the revision expression '{rest}' needs history"),
        _ => "the server refuses SHAs in want".to_owned(),
    };
    match (attempt, plan) {
        (Attempt::Depth1, Plan::Ref { shown, .. }) => format!("fetched {shown} at {oid} with depth 1"),
        (Attempt::Depth1, _) => format!("fetched {oid} with depth 1"),
        (Attempt::Deepen(depth), _) => format!("{why}; found {oid} by deepening to {depth}"),
        (Attempt::Full, _) => format!("{why}; found {oid} by a full fetch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";
    const T: &str = "dddddddddddddddddddddddddddddddddddddddd";

    fn oid(s: &str) -> Oid {
        Oid::from_str(s).expect("oid")
    }

    /// HEAD → main at A, branch `stable` at B, annotated tag v1 (object T) on B, a `1234` branch.
    fn advertised() -> Vec<Advertised> {
        let r = |name: &str, sha: &str| Advertised { name: name.into(), oid: oid(sha), symref_target: None };
        let mut head = r("HEAD", A);
        head.symref_target = Some("refs/heads/main".into());
        vec![
            head,
            r("refs/heads/main", A),
            r("refs/heads/stable", B),
            r("refs/heads/1234", B),
            r("refs/tags/v1", T),
            r("refs/tags/v1^{}", B),
        ]
    }

    fn name(n: &str) -> Wanted {
        Wanted::Name(n.into())
    }

    #[test]
    fn a_transfer_stalls_when_less_than_the_low_speed_limit_arrives_within_the_idle_time() {
        let (start, idle) = (Instant::now(), Duration::from_secs(10));
        let at = |s: u64| start + Duration::from_secs(s);
        let mut pace = Pace::new(start);
        assert!(!pace.stalled(2000, 0, at(5), idle), "moved on");
        // A trickle: a few bytes now and then never counts as progress.
        assert!(!pace.stalled(2100, 0, at(12), idle));
        assert!(pace.stalled(2200, 0, at(16), idle), "11 s since 2000 bytes");
        // Indexing objects (after the download) is progress too.
        let mut pace = Pace::new(start);
        assert!(!pace.stalled(0, 1, at(9), idle));
        assert!(!pace.stalled(0, 2, at(18), idle));
        assert!(pace.stalled(0, 2, at(29), idle));
    }

    #[test]
    fn names_resolve_against_the_advertised_refs_without_a_fetch() {
        let refs = advertised();
        let planned = |w: Wanted| plan(&w, &refs).expect("planned");
        assert_eq!(
            planned(Wanted::DefaultBranch),
            Plan::Ref { refname: "HEAD".into(), oid: oid(A), shown: "the default branch 'main'".into() }
        );
        assert_eq!(
            planned(name("stable")),
            Plan::Ref { refname: "refs/heads/stable".into(), oid: oid(B), shown: "branch 'stable'".into() }
        );
        assert_eq!(
            planned(name("v1")),
            Plan::Ref { refname: "refs/tags/v1".into(), oid: oid(T), shown: "tag 'v1'".into() }
        );
        // A branch wins over a SHA prefix that happens to be its name, as in a clone.
        assert!(matches!(planned(name("1234")), Plan::Ref { refname, .. } if refname == "refs/heads/1234"));
        assert!(matches!(planned(name("refs/tags/v1")), Plan::Ref { oid: o, .. } if o == oid(T)));
        assert!(
            matches!(plan(&name("no-such-branch"), &refs), Err(FetchError::NoSuchCommit(n)) if n == "no-such-branch")
        );
        assert!(
            matches!(plan(&Wanted::DefaultBranch, &[]), Err(FetchError::Failed(m)) if m.contains("no default branch"))
        );
    }

    #[test]
    fn a_revision_expression_deepens_its_base_only() {
        let refs = advertised();
        let planned = |w: Wanted| plan(&w, &refs).expect("planned");
        let stable = Plan::Ref { refname: "refs/heads/stable".into(), oid: oid(B), shown: "branch 'stable'".into() };
        assert_eq!(planned(name("stable~2")), Plan::Expression { base: Box::new(stable), rest: "~2".into() });
        assert!(
            matches!(planned(name("HEAD^")), Plan::Expression { base, rest } if rest == "^" && matches!(*base, Plan::Ref { ref refname, .. } if refname == "HEAD"))
        );
        assert!(matches!(plan(&name("nope~1"), &refs), Err(FetchError::NoSuchCommit(n)) if n == "nope"));
        let expression = planned(name("v1^{commit}"));
        assert_eq!(
            base_refspec(match &expression {
                Plan::Expression { base, .. } => base,
                _ => unreachable!(),
            }),
            "refs/tags/v1"
        );
        assert_eq!(attempts(&expression), [Attempt::Deepen(50), Attempt::Deepen(1000), Attempt::Full]);
        assert_eq!(split_expression("main@{1}"), Some(("main", "@{1}")));
        assert_eq!(split_expression("feature/x"), None);
    }

    #[test]
    fn a_sha_at_a_tip_is_fetched_by_its_ref_others_by_sha_or_history() {
        let refs = advertised();
        let planned = |w: Wanted| plan(&w, &refs).expect("planned");
        // The tip of main: fetched through the ref, which needs no server setting.
        assert!(matches!(planned(name(A)), Plan::Ref { refname, .. } if refname == "refs/heads/main"));
        // B is the tip of two branches and of a peeled tag: any of them brings it.
        assert!(matches!(planned(Wanted::Commit(oid(B))), Plan::Ref { refname, .. } if refname == "refs/heads/stable"));
        assert_eq!(planned(name(C)), Plan::Sha(oid(C)));
        assert_eq!(planned(name(&C[..8].to_uppercase())), Plan::Prefix(C[..8].into()));
        assert!(matches!(planned(name(&A[..7])), Plan::Ref { refname, .. } if refname == "refs/heads/main"));
    }

    #[test]
    fn the_fallback_chain_goes_deeper_only_after_the_server_refuses_a_sha() {
        assert_eq!(
            attempts(&Plan::Ref { refname: "HEAD".into(), oid: oid(A), shown: String::new() }),
            [Attempt::Depth1]
        );
        assert_eq!(
            attempts(&Plan::Sha(oid(C))),
            [Attempt::Depth1, Attempt::Deepen(50), Attempt::Deepen(1000), Attempt::Full]
        );
        assert_eq!(attempts(&Plan::Prefix("cccc".into())), [Attempt::Deepen(50), Attempt::Deepen(1000), Attempt::Full]);

        let refused = git2::Error::from_str("cannot fetch a specific object from the remote repository");
        let not_ours = git2::Error::from_str("remote error: upload-pack: not our ref cccccccc");
        let rejected = git2::Error::from_str("unexpected packet type");
        let network = git2::Error::from_str("failed to connect to 127.0.0.1: Connection refused");
        assert!(worth_going_on(Attempt::Depth1, &refused));
        assert!(worth_going_on(Attempt::Depth1, &not_ours));
        assert!(worth_going_on(Attempt::Depth1, &rejected));
        assert!(!worth_going_on(Attempt::Depth1, &network));
        assert!(!worth_going_on(Attempt::Deepen(50), &refused));
    }

    #[test]
    fn the_log_says_which_strategy_brought_the_commit() {
        let sha = Plan::Sha(oid(C));
        assert_eq!(fetched_how(&sha, oid(C), Attempt::Depth1), format!("fetched {C} with depth 1"));
        assert_eq!(
            fetched_how(&sha, oid(C), Attempt::Deepen(50)),
            format!("the server refuses SHAs in want; found {C} by deepening to 50")
        );
        assert_eq!(
            fetched_how(&sha, oid(C), Attempt::Full),
            format!("the server refuses SHAs in want; found {C} by a full fetch")
        );
        let branch = Plan::Ref { refname: "refs/heads/main".into(), oid: oid(A), shown: "branch 'main'".into() };
        assert_eq!(fetched_how(&branch, oid(A), Attempt::Depth1), format!("fetched branch 'main' at {A} with depth 1"));
    }
}
