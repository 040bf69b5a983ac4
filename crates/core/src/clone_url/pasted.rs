//! Finding the URL in what was pasted: a whole `git clone` command, quotes, padding.

use super::*;

// ---------------------------------------------------------------------------------------------
// Finding the URL in what was pasted

/// Characters around a pasted URL that are never part of it: Unicode whitespace (including
/// no-break spaces) and the invisible byte-order mark and zero-width space that editors and chat
/// tools slip in.
pub(super) fn is_padding(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}')
}

pub(super) fn trim_padding(s: &str) -> &str {
    s.trim_matches(is_padding)
}

/// Removes surrounding quotes and angle brackets (`"…"`, `'…'`, `` `…` ``, `<…>`), nested too.
pub(super) fn strip_wrapping(mut s: &str) -> &str {
    const PAIRS: [(char, char); 4] = [('"', '"'), ('\'', '\''), ('`', '`'), ('<', '>')];
    while let Some(inner) =
        PAIRS.iter().find_map(|(open, close)| s.strip_prefix(*open).and_then(|r| r.strip_suffix(*close)))
    {
        s = trim_padding(inner);
    }
    s
}

/// The URL itself, or the URL argument of a pasted `git clone` command.
pub(super) fn extract_candidate(text: &str) -> Result<&str, UrlError> {
    let text = strip_wrapping(text);
    match strip_word(text, "git").and_then(|rest| strip_word(rest, "clone")) {
        Some(args) => url_from_clone_args(args),
        None => Ok(text),
    }
}

/// `s` after a leading `word` (any case) that ends at whitespace or at the end of `s`.
pub(super) fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let s = s.trim_start_matches(is_padding);
    let rest = s.get(..word.len()).filter(|head| head.eq_ignore_ascii_case(word)).and(s.get(word.len()..))?;
    (rest.is_empty() || rest.starts_with(is_padding)).then_some(rest)
}

/// `git clone` options whose value is the next word (`--depth 1`, `-b main`), so the value is
/// never taken for the URL.
pub(super) const CLONE_OPTIONS_WITH_VALUE: &[&str] = &[
    "-b",
    "--branch",
    "-o",
    "--origin",
    "-c",
    "--config",
    "-u",
    "--upload-pack",
    "-j",
    "--jobs",
    "--depth",
    "--reference",
    "--reference-if-able",
    "--separate-git-dir",
    "--template",
    "--shallow-since",
    "--shallow-exclude",
    "--filter",
    "--server-option",
    "--bundle-uri",
    "--ref-format",
];

/// The first argument of `git clone` that looks like a URL. What follows it (the target
/// directory, a `&& cd repo`) is ignored.
pub(super) fn url_from_clone_args(args: &str) -> Result<&str, UrlError> {
    let mut words = args.split_whitespace().map(strip_wrapping);
    let mut first_operand = None;
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            if CLONE_OPTIONS_WITH_VALUE.contains(&word) {
                words.next();
            }
            continue;
        }
        if !matches!(classify(word), Form::Word) {
            return Ok(word);
        }
        first_operand.get_or_insert(word);
    }
    // No word looks like a URL: report on the first operand, which is what git would use.
    first_operand.ok_or_else(|| invalid("is a `git clone` command without a URL"))
}

pub(super) fn check_characters(candidate: &str) -> Result<(), UrlError> {
    if candidate.chars().any(char::is_control) {
        return Err(invalid("contains a control character such as a line break or a tab"));
    }
    if candidate.chars().any(is_padding) {
        return Err(invalid("contains a space; a clone URL has none (spaces in names are written %20)"));
    }
    Ok(())
}
