//! Small helpers for sentences people read.

/// "1 branch", "3 branches", "0 repositories": the count with the right form of the noun.
pub fn plural(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 || n == -1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "1 repository", "3 repositories", "2 days": the plural made by English's regular rules,
/// for the nouns Berth counts (steps, warnings, repositories, minutes, …).
pub fn counted(n: i64, unit: &str) -> String {
    if n == 1 {
        return format!("1 {unit}");
    }
    match unit.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {unit}s"),
    }
}

/// The same for a `usize` count (lengths of lists).
pub fn count(n: usize, one: &str, many: &str) -> String {
    plural(i64::try_from(n).unwrap_or(i64::MAX), one, many)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_only_for_one() {
        assert_eq!(plural(1, "day", "days"), "1 day");
        assert_eq!(plural(0, "day", "days"), "0 days");
        assert_eq!(count(3, "repository", "repositories"), "3 repositories");
        assert_eq!(
            (counted(3, "repository"), counted(2, "day"), counted(1, "step")),
            ("3 repositories".into(), "2 days".into(), "1 step".into())
        );
    }
}
