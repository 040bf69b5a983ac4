//! What the import pages show: the form, the listing with checkboxes, the progress and the
//! summary of one import (the API's `Import`, unchanged, so the script polls the same shape).

use super::*;
use askama::Template;
use berth_proto::{Import, ImportItem};

#[derive(Template)]
#[template(path = "import_new.html")]
pub struct ImportNewPage {
    pub l: Layout,
    pub credentials: Vec<Choice>,
    pub source: String,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "import.html")]
pub struct ImportPage {
    pub l: Layout,
    pub imp: Import,
    pub problem: Option<Problem>,
}

impl ImportPage {
    /// Listed repositories that can still be chosen (not registered before the import).
    pub fn choosable(&self) -> usize {
        self.imp.repositories.iter().filter(|r| r.already_registered.is_none()).count()
    }

    pub fn percent(&self) -> i64 {
        if self.imp.total == 0 {
            0
        } else {
            self.imp.done * 100 / self.imp.total
        }
    }

    pub fn failures(&self) -> Vec<&ImportItem> {
        self.imp.repositories.iter().filter(|r| r.selected && r.status == "failed").collect()
    }

    pub fn code_of(r: &ImportItem) -> String {
        r.code.map(|c| c.as_str().to_owned()).unwrap_or_default()
    }
}
