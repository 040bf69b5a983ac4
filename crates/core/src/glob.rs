//! Name patterns: `*` any run of characters, `?` one character, case ignored. What a
//! notification channel's repository filter is written in.

/// Whether `text` matches `pattern` as a whole.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('?'), Some(_)) => {
                pi += 1;
                ti += 1;
            }
            (Some(a), Some(b)) if a == b && *a != '*' => {
                pi += 1;
                ti += 1;
            }
            (Some('*'), _) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => match star {
                // Backtrack: the last `*` swallows one more character.
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs() {
        assert!(glob_matches("team-*", "Team-App"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("*lib*", "core-library"));
        assert!(!glob_matches("team-*", "other"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("exact", "EXACT"));
    }
}
