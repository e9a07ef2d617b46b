//! Query planning over the in-memory indexes.
//!
//! - No filter: walk the collection in `createdAt` or `id` order, or sort it
//!   for other orders.
//! - Filters: drive from the field whose value has the fewest documents and
//!   check the other filters on each candidate's stored index strings, so
//!   only matching documents are touched. In the default order the walk is
//!   already ordered and stops at `offset + limit`.

use std::cmp::Ordering;
use std::sync::Arc;

use super::collection::{Collection, DocMeta, Postings};
use super::State;
use crate::log::segment::Loc;
use crate::validate::{CheckedQuery, OrderKey};

impl State {
    /// The locations of one page of matches, in order.
    pub fn query(&self, collection: &str, q: &CheckedQuery) -> Vec<Loc> {
        let Some(c) = self.collection(collection) else {
            return Vec::new();
        };
        let page = |it: &mut dyn Iterator<Item = &DocMeta>| -> Vec<Loc> {
            it.skip(q.offset).take(q.limit).map(|m| m.loc).collect()
        };
        if q.filters.is_empty() {
            return match q.order {
                OrderKey::CreatedAt => {
                    let ids = c.by_created.iter().map(|(_, id)| &c.docs[id]);
                    if q.desc {
                        page(&mut ids.rev())
                    } else {
                        page(&mut ids.into_iter())
                    }
                }
                OrderKey::Id => {
                    if q.desc {
                        page(&mut c.docs.values().rev())
                    } else {
                        page(&mut c.docs.values())
                    }
                }
                _ => sorted_page(c.docs.iter(), q),
            };
        }
        let Some(postings) = driving_postings(c, q) else {
            return Vec::new();
        };
        let candidates = postings.iter().map(|(_, id)| (id, &c.docs[id]));
        if q.order == OrderKey::CreatedAt {
            let matching = |(_, m): &(&Arc<str>, &DocMeta)| matches(m, q);
            if q.desc {
                page(&mut candidates.rev().filter(matching).map(|(_, m)| m))
            } else {
                page(&mut candidates.filter(matching).map(|(_, m)| m))
            }
        } else {
            sorted_page(candidates.filter(|(_, m)| matches(m, q)), q)
        }
    }

    /// How many documents match (order, limit and offset ignored).
    pub fn count(&self, collection: &str, q: &CheckedQuery) -> u64 {
        let Some(c) = self.collection(collection) else {
            return 0;
        };
        if q.filters.is_empty() {
            return c.docs.len() as u64;
        }
        let Some(postings) = driving_postings(c, q) else {
            return 0;
        };
        if q.filters.len() == 1 {
            return postings.len() as u64;
        }
        postings
            .iter()
            .filter(|(_, id)| matches(&c.docs[id], q))
            .count() as u64
    }
}

fn matches(meta: &DocMeta, q: &CheckedQuery) -> bool {
    q.filters
        .iter()
        .all(|(pos, _, value)| meta.values.get(*pos).and_then(|v| v.as_deref()) == Some(value))
}

/// The postings of the filter value with the fewest documents; `None` when
/// some filter value has no documents at all.
fn driving_postings<'c>(c: &'c Collection, q: &CheckedQuery) -> Option<&'c Postings> {
    let mut best: Option<&Postings> = None;
    for (pos, _, value) in &q.filters {
        let postings = c.fields.get(*pos)?.get(value.as_str())?;
        if best.is_none_or(|b| postings.len() < b.len()) {
            best = Some(postings);
        }
    }
    best
}

/// Collects the candidates, sorts them by the query's order with ties on id
/// (both in the query's direction), and cuts the page.
fn sorted_page<'a>(
    candidates: impl Iterator<Item = (&'a Arc<str>, &'a DocMeta)>,
    q: &CheckedQuery,
) -> Vec<Loc> {
    let mut rows: Vec<(&Arc<str>, &DocMeta)> = candidates.collect();
    let compare = |a: &(&Arc<str>, &DocMeta), b: &(&Arc<str>, &DocMeta)| -> Ordering {
        let primary = match &q.order {
            OrderKey::CreatedAt => a.1.created_at.cmp(&b.1.created_at),
            OrderKey::UpdatedAt => a.1.updated_at.cmp(&b.1.updated_at),
            OrderKey::Id => Ordering::Equal,
            // A missing value (`None`) sorts lowest.
            OrderKey::Field(pos, _) => a.1.values.get(*pos).cmp(&b.1.values.get(*pos)),
        };
        let ordering = primary.then_with(|| a.0.cmp(b.0));
        if q.desc {
            ordering.reverse()
        } else {
            ordering
        }
    };
    let end = q.offset.saturating_add(q.limit).min(rows.len());
    if end == 0 {
        return Vec::new();
    }
    if end < rows.len() {
        rows.select_nth_unstable_by(end - 1, compare);
        rows.truncate(end);
    }
    rows.sort_unstable_by(compare);
    rows.iter().skip(q.offset).map(|(_, m)| m.loc).collect()
}
