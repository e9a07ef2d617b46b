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

/// The URL with its password masked, for messages: the one after the
/// user name and a `password` query parameter. A URL without a password
/// is shown as it is.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
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

    #[test]
    fn only_a_password_that_is_there_is_masked() {
        for plain in [
            "postgres://u@h/db",
            "postgres://u@h",
            "postgresql://postgres@%2Ftmp%2Fpg/postgres?options=-csearch_path%3Dx",
            "postgres://u@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(redacted(plain), plain);
        }
        assert_eq!(
            redacted("postgres://u:pw@h:5432"),
            "postgres://u:***@h:5432"
        );
        assert_eq!(redacted("postgres://:pw@h/db"), "postgres://:***@h/db");
        assert_eq!(
            redacted("postgres://u:p@ss@h/db?x=1"),
            "postgres://u:***@h/db?x=1"
        );
        assert_eq!(
            redacted("postgres://u@h/db?password=secret&options=-cx%3D1"),
            "postgres://u@h/db?password=***&options=-cx%3D1"
        );
    }
}
