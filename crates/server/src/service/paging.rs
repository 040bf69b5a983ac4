//! Keyset paging for every list: a page is the rows after the last one the client saw, in the
//! list's order, so its cost does not grow with its depth, and rows added or deleted meanwhile
//! never make a client skip or repeat the rows that stayed.
//!
//! The cursor handed out as `next` is opaque to clients: URL-safe base64 of the list's kind and
//! the sort key of the page's last row. A cursor that does not decode, or that belongs to
//! another list, is refused with `invalid_cursor`; it is never trusted beyond being a key.

use super::{Error, Refusal, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_core::Code;
use berth_proto::Page;

/// Page size when the request names none.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page a request may ask for.
pub const MAX_LIMIT: i64 = 1000;

/// Which list a cursor belongs to: its tag inside the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Repositories,
    Credentials,
    Users,
    Audit,
    History,
    Branches,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Repositories => "r1",
            Kind::Credentials => "c1",
            Kind::Users => "u1",
            Kind::Audit => "a1",
            Kind::History => "h1",
            Kind::Branches => "b1",
        }
    }
}

/// The page a request asks for: after which cursor, and at most how many rows.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    /// `None`: [`DEFAULT_LIMIT`]. The adapters refuse values outside 1..=[`MAX_LIMIT`]; the
    /// use cases clamp as well.
    pub limit: Option<i64>,
}

impl PageRequest {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// The sort key the cursor carries, for `kind`'s list; `None` for the first page.
    pub fn key(&self, kind: Kind) -> Result<Option<String>> {
        self.after.as_deref().filter(|a| !a.is_empty()).map(|a| decode(kind, a)).transpose()
    }

    /// The cursor's key as an id (the lists ordered by id: audit, history).
    pub fn id_key(&self, kind: Kind) -> Result<Option<i64>> {
        self.key(kind)?.map(|k| k.parse::<i64>().map_err(|_| invalid_cursor())).transpose()
    }
}

pub fn encode(kind: Kind, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{key}", kind.tag()))
}

fn decode(kind: Kind, cursor: &str) -> Result<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_cursor())?;
    match text.split_once(':') {
        Some((tag, key)) if tag == kind.tag() => Ok(key.to_owned()),
        _ => Err(invalid_cursor()),
    }
}

fn invalid_cursor() -> Error {
    Error::Invalid(Refusal::new(
        Code::InvalidCursor,
        "the cursor (after) is not one this list handed out",
        "pass the `next` value of the previous page as it was, or leave `after` out for the first page",
    ))
}

/// A page from rows fetched with `limit + 1`: the extra row only says another page follows, and
/// the cursor is the key of the last row shown.
pub fn page_of<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    total: i64,
    kind: Kind,
    key: impl Fn(&R) -> String,
    view: impl FnMut(R) -> T,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|r| encode(kind, &key(r))) } else { None };
    Page { items: rows.into_iter().map(view).collect(), next, total, total_exact: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_only_in_its_own_list() {
        let c = encode(Kind::Repositories, "app:β/ünïcode");
        assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'), "{c}");
        let req = PageRequest { after: Some(c.clone()), limit: None };
        assert_eq!(req.key(Kind::Repositories).ok().flatten().as_deref(), Some("app:β/ünïcode"));
        for bad in [c.as_str(), "not base64!", "", "AAAA", "cjE"] {
            let req = PageRequest { after: Some(bad.to_owned()), limit: None };
            let r = req.key(Kind::Users);
            if bad.is_empty() {
                assert!(matches!(r, Ok(None)));
            } else {
                assert!(matches!(r, Err(Error::Invalid(ref x)) if x.code == Code::InvalidCursor), "{bad}");
            }
        }
        let not_an_id = PageRequest { after: Some(encode(Kind::Audit, "x")), limit: None };
        assert!(not_an_id.id_key(Kind::Audit).is_err());
        assert_eq!(
            PageRequest { after: Some(encode(Kind::Audit, "42")), limit: None }.id_key(Kind::Audit).ok(),
            Some(Some(42))
        );
    }

    #[test]
    fn the_extra_row_makes_the_cursor() {
        let p = page_of(vec![1, 2, 3], 2, 3, Kind::History, ToString::to_string, |x| x * 10);
        assert_eq!(p.items, vec![10, 20]);
        assert_eq!(p.next, Some(encode(Kind::History, "2")));
        let last = page_of(vec![1, 2], 2, 2, Kind::History, ToString::to_string, |x| x);
        assert_eq!(last.next, None);
    }
}
