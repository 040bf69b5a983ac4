//! A `WHERE` clause built from a list's filters, with its values numbered from `$1`, and the
//! macro that binds them (a macro: the query type differs per dialect).

/// A value bound to a placeholder of a query built from a filter.
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause and its values, numbered from `$1`.
#[derive(Default)]
pub(super) struct Where {
    pub(super) terms: Vec<String>,
    pub(super) binds: Vec<Bind>,
}

impl Where {
    pub(super) fn next(&self) -> usize {
        self.binds.len() + 1
    }

    pub(super) fn text(&mut self, term: impl FnOnce(usize) -> String, v: String) {
        self.terms.push(term(self.next()));
        self.binds.push(Bind::Text(v));
    }

    pub(super) fn sql(&self) -> String {
        if self.terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.terms.join(" AND "))
        }
    }
}

/// Binds every value of `w` to `q`, in order (a macro: the query type differs per dialect).
macro_rules! bind_all {
    ($q:expr, $w:expr) => {{
        let mut q = $q;
        for b in &$w.binds {
            q = match b {
                $crate::store::list_query::Bind::Text(s) => q.bind(s.clone()),
                $crate::store::list_query::Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

