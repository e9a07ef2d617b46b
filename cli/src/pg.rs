//! PostgreSQL stores on the command line: a STORE that starts with
//! `postgres://` or `postgresql://` is a connection URL, opened with the
//! PostgreSQL driver in the schema its `options=-csearch_path%3DNAME`
//! names (`logstore` by default).

use std::path::Path;

use anyhow::{Context, Result};
use logstore::{Durability, Options, PgStore};

/// The URL, when `store` names a PostgreSQL store.
pub fn url_of(store: &Path) -> Option<&str> {
    store
        .to_str()
        .filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Opens the PostgreSQL store at `url`, creating its schema and tables when
/// missing (a server has no "exists" that a path check could answer).
pub fn open(url: &str) -> Result<PgStore> {
    let opts = Options {
        durability: Durability::Sync,
        ..Options::default()
    };
    PgStore::open(url, opts).with_context(|| redacted(url))
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths_and_passwords_hidden() {
        assert!(url_of(Path::new("postgres://u@h/db")).is_some());
        assert!(url_of(Path::new("postgresql://u@h/db")).is_some());
        assert!(url_of(Path::new("./store.db")).is_none());
        assert_eq!(
            redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
    }
}
