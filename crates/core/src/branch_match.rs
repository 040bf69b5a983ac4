//! Closest branch names, for "branch `mian` not found; did you mean `main`?".

/// Up to `limit` names from `candidates` closest to `wanted`, best first. Exact
/// case-insensitive matches and prefix matches rank before edit distance.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>, limit: usize) -> Vec<String> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let score = if lc == w {
                0
            } else if lc.starts_with(&w) || w.starts_with(&lc) {
                1
            } else {
                let d = strsim::levenshtein(&w, &lc);
                // Beyond about a third of the name, a suggestion is noise.
                if d > w.len().max(3) / 3 + 1 {
                    return None;
                }
                1 + d
            };
            Some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(limit).map(|(_, c)| c.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_near_names() {
        let names = ["main", "develop", "release/1.0", "feature/login", "Main2"];
        assert_eq!(closest("mian", names, 3), vec!["main".to_owned()]);
        assert_eq!(closest("MAIN", names, 1), vec!["main".to_owned()]);
        assert_eq!(closest("release", names, 3), vec!["release/1.0".to_owned()]);
        assert!(closest("zzzzzzzz", names, 3).is_empty());
    }
}
