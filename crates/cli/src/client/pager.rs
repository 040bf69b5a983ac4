//! Walking a paged list (`berth_proto::Page`): the repository list's query and [`Pager`].

use super::{ApiClient, ClientError};
use berth_proto::Page;
use reqwest::Method;
use serde::de::DeserializeOwned;

/// The filters and page size of `GET /api/v1/repositories`; `None` and empty leave a filter out.
#[derive(Debug, Clone, Default)]
pub struct RepoQuery {
    /// Repositories per page (the server's default, 100, when `None`).
    pub limit: Option<i64>,
    pub q: Option<String>,
    pub statuses: Vec<String>,
    pub credential: Option<String>,
    pub provider: Option<String>,
    pub host: Option<String>,
}

impl RepoQuery {
    pub(super) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p: Vec<(&'static str, String)> = Vec::new();
        p.extend(self.limit.map(|l| ("limit", l.to_string())));
        p.extend(self.q.clone().map(|v| ("q", v)));
        p.extend(self.statuses.iter().map(|s| ("status", s.clone())));
        p.extend(self.credential.clone().map(|v| ("credential", v)));
        p.extend(self.provider.clone().map(|v| ("provider", v)));
        p.extend(self.host.clone().map(|v| ("host", v)));
        p
    }
}

/// Walks a paged list: each [`Pager::next_page`] asks for the page after the last one's `next`
/// cursor, until a page has none. Pages are fetched only when asked for, so a reader that stops
/// early (output piped into `head`) costs no further requests.
pub struct Pager<T> {
    client: ApiClient,
    path: String,
    pairs: Vec<(&'static str, String)>,
    after: Option<String>,
    done: bool,
    /// `total` of the last page read.
    pub total: Option<i64>,
    _item: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> Pager<T> {
    pub(super) fn new(client: ApiClient, path: &str, pairs: Vec<(&'static str, String)>) -> Self {
        Pager {
            client,
            path: path.to_owned(),
            pairs,
            after: None,
            done: false,
            total: None,
            _item: std::marker::PhantomData,
        }
    }

    /// The next page's items; `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let mut pairs = self.pairs.clone();
        pairs.extend(self.after.clone().map(|a| ("after", a)));
        let page: Page<T> = self.client.call(self.client.request(Method::GET, &self.path)?.query(&pairs)).await?;
        self.total = Some(page.total);
        // A server that hands back the cursor it was given would loop forever: stop there.
        self.done = page.next.is_none() || page.next == self.after;
        self.after = page.next;
        Ok(Some(page.items))
    }

    /// Every item of every page, in order.
    pub async fn all(mut self) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        while let Some(items) = self.next_page().await? {
            out.extend(items);
        }
        Ok(out)
    }
}
