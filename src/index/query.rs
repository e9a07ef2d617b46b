//! Query planning over the in-memory indexes.
//!
//! - No filter: walk the collection in `createdAt` or `id` order, or sort it
//!   for other orders.
//! - Filters: each filter's string becomes its value number in the field's
//!   dictionary once; then drive from the value with the fewest documents
//!   and check the other filters on each candidate's value numbers (integer
//!   compares), so only matching documents are touched. In the default
//!   order the walk is already ordered and stops at `offset + limit`.

use std::cmp::Ordering;

use super::collection::{Collection, NO_VALUE};
use super::order::OrderList;
use super::State;
use crate::log::segment::Loc;
use crate::validate::{CheckedQuery, OrderKey};

/// A query's filters as (field position, value number).
type Filters = Vec<(usize, u32)>;

impl State {
    /// The locations of one page of matches, in order.
    pub fn query(&self, collection: &str, q: &CheckedQuery) -> Vec<Loc> {
        let Some(c) = self.collection(collection) else {
            return Vec::new();
        };
        let loc = |doc: u32| c.docs.slots[doc as usize].loc;
        let page = |docs: &mut dyn Iterator<Item = u32>| -> Vec<Loc> {
            docs.skip(q.offset).take(q.limit).map(loc).collect()
        };
        let walk = |list: &OrderList| -> Vec<Loc> {
            if q.desc {
                page(&mut list.iter().rev())
            } else {
                list.iter_from(q.offset).take(q.limit).map(loc).collect()
            }
        };
        if q.filters.is_empty() {
            return match q.order {
                OrderKey::CreatedAt => walk(&c.by_created),
                OrderKey::Id => walk(&c.primary),
                _ => sorted_page(c, c.primary.iter(), q),
            };
        }
        let Some((postings, filters)) = plan(c, q) else {
            return Vec::new();
        };
        if filters.len() == 1 && q.order == OrderKey::CreatedAt {
            return walk(postings);
        }
        let matching = |doc: &u32| matches(c, &filters, *doc);
        match q.order {
            OrderKey::CreatedAt if q.desc => page(&mut postings.iter().rev().filter(matching)),
            OrderKey::CreatedAt => page(&mut postings.iter().filter(matching)),
            _ => sorted_page(c, postings.iter().filter(matching), q),
        }
    }

    /// An upper bound on the index work [`State::query`] does for `q`:
    /// the entries it walks, plus the comparisons of a sort, without doing
    /// any of it (a few lookups in the filters' dictionaries). It follows
    /// `query`'s plan branch by branch.
    pub fn query_work(&self, collection: &str, q: &CheckedQuery) -> u64 {
        let Some(c) = self.collection(collection) else {
            return 0;
        };
        let end = q.offset.saturating_add(q.limit);
        let walk = |list: &OrderList| -> u64 {
            let len = list.len();
            let work = if q.desc {
                end.min(len)
            } else {
                // `iter_from` skips whole chunks, then takes the page.
                q.offset.min(list.chunk_count()) + q.limit.min(len.saturating_sub(q.offset))
            };
            work as u64
        };
        if q.filters.is_empty() {
            return match q.order {
                OrderKey::CreatedAt => walk(&c.by_created),
                OrderKey::Id => walk(&c.primary),
                _ => sort_work(c.len(), end),
            };
        }
        let Some((postings, filters)) = plan(c, q) else {
            return 0;
        };
        if filters.len() == 1 && q.order == OrderKey::CreatedAt {
            return walk(postings);
        }
        match q.order {
            // The walk checks candidates until the page is full: at worst
            // every one.
            OrderKey::CreatedAt => postings.len() as u64,
            _ => sort_work(postings.len(), end),
        }
    }

    /// An upper bound on the index work [`State::count`] does for `q`, as
    /// [`State::query_work`] for a query.
    pub fn count_work(&self, collection: &str, q: &CheckedQuery) -> u64 {
        let Some(c) = self.collection(collection) else {
            return 0;
        };
        if q.filters.len() < 2 {
            return 1;
        }
        plan(c, q).map_or(0, |(postings, _)| postings.len() as u64)
    }

    /// How many documents match (order, limit and offset ignored).
    pub fn count(&self, collection: &str, q: &CheckedQuery) -> u64 {
        let Some(c) = self.collection(collection) else {
            return 0;
        };
        if q.filters.is_empty() {
            return c.len() as u64;
        }
        let Some((postings, filters)) = plan(c, q) else {
            return 0;
        };
        if filters.len() == 1 {
            return postings.len() as u64;
        }
        postings.iter().filter(|d| matches(c, &filters, *d)).count() as u64
    }
}

/// The filters as value numbers and the postings of the value with the
/// fewest documents; `None` when some filter value has no documents at all.
fn plan<'c>(c: &'c Collection, q: &CheckedQuery) -> Option<(&'c OrderList, Filters)> {
    let mut best: Option<&OrderList> = None;
    let mut filters = Vec::with_capacity(q.filters.len());
    for (pos, _, text) in &q.filters {
        let field = c.fields.get(*pos)?;
        let value = field.lookup(text)?;
        let postings = field.postings(value)?;
        if best.is_none_or(|b| postings.len() < b.len()) {
            best = Some(postings);
        }
        filters.push((*pos, value));
    }
    Some((best?, filters))
}

fn matches(c: &Collection, filters: &Filters, doc: u32) -> bool {
    filters
        .iter()
        .all(|(pos, value)| c.docs.values[*pos][doc as usize] == *value)
}

/// The work of [`sorted_page`] over `candidates` entries for a page ending
/// at `end`: collecting them and selecting the page's rows (linear), then
/// sorting those (`k log k`).
fn sort_work(candidates: usize, end: usize) -> u64 {
    let k = end.min(candidates) as u64;
    let log = u64::from(u64::BITS - k.leading_zeros());
    (candidates as u64).saturating_add(k.saturating_mul(log))
}

/// Collects the candidates, sorts them by the query's order with ties on id
/// (both in the query's direction), and cuts the page.
fn sorted_page(
    c: &Collection,
    candidates: impl Iterator<Item = u32>,
    q: &CheckedQuery,
) -> Vec<Loc> {
    let mut rows: Vec<u32> = candidates.collect();
    let slots = &c.docs.slots;
    let text = |pos: usize, doc: u32| -> Option<&str> {
        match c.docs.values[pos][doc as usize] {
            NO_VALUE => None,
            value => c.fields[pos].text(value),
        }
    };
    let compare = |a: &u32, b: &u32| -> Ordering {
        let (sa, sb) = (&slots[*a as usize], &slots[*b as usize]);
        let primary = match &q.order {
            OrderKey::CreatedAt => sa.created_at.cmp(&sb.created_at),
            OrderKey::UpdatedAt => sa.updated_at.cmp(&sb.updated_at),
            OrderKey::Id => Ordering::Equal,
            // A missing value (`None`) sorts lowest; equal value numbers
            // are equal strings without reading them.
            OrderKey::Field(pos, _) => {
                let (va, vb) = (
                    c.docs.values[*pos][*a as usize],
                    c.docs.values[*pos][*b as usize],
                );
                if va == vb {
                    Ordering::Equal
                } else {
                    text(*pos, *a).cmp(&text(*pos, *b))
                }
            }
        };
        let ordering = primary.then_with(|| c.docs.id(*a).cmp(c.docs.id(*b)));
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
    rows.iter()
        .skip(q.offset)
        .map(|doc| slots[*doc as usize].loc)
        .collect()
}
