//! "did you mean …?": the known name nearest to a misspelt one, by edit distance.

/// The candidate nearest to `typed`, if one is near enough to be what was meant: at most a third
/// of the typed length away (and at least 2 edits are always allowed).
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (typed.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(typed, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `x`?)`, or nothing.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(typed, candidates).map(|near| format!(" (did you mean `{near}`?)")).unwrap_or_default()
}

/// Levenshtein distance over characters, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_known_name_only_when_near() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(nearest("git_comit", ["git_commit", "git_url"]), Some("git_commit"));
        assert_eq!(nearest("fooboo_plugins", ["prebuild_plugins", "exit_plugins"]), None);
        assert_eq!(nearest("postbild_plugins", ["prebuild_plugins", "postbuild_plugins"]), Some("postbuild_plugins"));
        assert_eq!(did_you_mean("imag", ["image"]), " (did you mean `image`?)");
        assert_eq!(did_you_mean("zzz", ["image"]), "");
    }
}
