//! The conformance suite: every rule of the contract, written once against
//! `&dyn Store` and run for every driver configuration.
//!
//! A driver test file declares `mod conformance;` and calls
//! `conformance_suite!(module_name, factory)`, where the factory turns
//! `Options` into a store (and the temporary directory it lives in). The
//! few rules that need rows the contract cannot write (a version at the top
//! of its range) set them up through the driver's `Transfer` import.

#![allow(dead_code)]

pub mod blobs;
pub mod documents;
pub mod leases;

use std::sync::Arc;

use logstore::{ManualClock, Options, Store, Transfer};
use tempfile::TempDir;

/// The clock every suite store starts at (2023-11-14T22:13:20Z).
pub const START_MS: i64 = 1_700_000_000_000;
/// The document limit of suite stores, small so the oversize rule is cheap.
pub const SUITE_MAX_DOCUMENT_BYTES: u64 = 64 * 1024;
/// The blob limit of suite stores.
pub const SUITE_MAX_BLOB_BYTES: u64 = 256 * 1024;

/// A driver under test: the contract, and the exact import that sets up
/// rows the contract cannot write.
pub trait Driver: Transfer {
    fn as_store(&self) -> &dyn Store;
    fn as_transfer(&self) -> &dyn Transfer;
}

impl<T: Transfer + 'static> Driver for T {
    fn as_store(&self) -> &dyn Store {
        self
    }

    fn as_transfer(&self) -> &dyn Transfer {
        self
    }
}

/// A store under test with the clock that drives it.
pub struct Harness {
    pub store: Box<dyn Driver>,
    pub clock: Arc<ManualClock>,
    _dir: Option<TempDir>,
}

/// Builds a store from options; returns it with the directory it lives in.
pub type Factory = fn(Options) -> (Box<dyn Driver>, Option<TempDir>);

impl Harness {
    pub fn new(factory: Factory) -> Harness {
        let clock = Arc::new(ManualClock::new(START_MS));
        let opts = Options {
            clock: clock.clone(),
            max_document_bytes: SUITE_MAX_DOCUMENT_BYTES,
            max_blob_bytes: SUITE_MAX_BLOB_BYTES,
            ..Options::default()
        };
        let (store, dir) = factory(opts);
        Harness {
            store,
            clock,
            _dir: dir,
        }
    }

    pub fn s(&self) -> &dyn Store {
        self.store.as_store()
    }

    /// The driver's exact import, for setting up rows.
    pub fn t(&self) -> &dyn Transfer {
        self.store.as_transfer()
    }
}

/// Imports a row through `import` at the highest version the driver stores:
/// `u64::MAX`, or `i64::MAX` for a driver whose column is a signed 64-bit
/// integer (it refuses the larger one as `InvalidInput`). Returns that
/// version.
pub fn import_at_top_version(import: impl Fn(u64) -> logstore::Result<()>) -> u64 {
    match import(u64::MAX) {
        Ok(()) => u64::MAX,
        Err(logstore::Error::InvalidInput(_)) => {
            let top = i64::MAX as u64;
            import(top).expect("import at i64::MAX");
            top
        }
        Err(e) => panic!("import at u64::MAX failed: {e}"),
    }
}

/// One `#[test]` per rule of the contract (documents, blobs, leases), for
/// one driver configuration. With `when GUARD`, each test returns at once
/// when `GUARD` is false (a driver whose server is not configured; the guard
/// itself fails the test where skipping is not allowed).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $factory:expr) => {
        $crate::conformance_suite!($name, $factory, when true);
    };
    ($name:ident, $factory:expr, when $guard:expr) => {
        mod $name {
            $crate::conformance_suite!(@cases documents, $factory, $guard,
                put_new_row_starts_at_version_one,
                upsert_bumps_version_and_keeps_created_at,
                cas_put_wins_only_at_the_expected_version,
                cas_put_on_a_missing_row_is_none,
                put_rejects_data_that_is_not_an_object,
                put_keeps_key_order,
                put_into_an_unensured_collection,
                ensure_collection_is_idempotent_and_appends_fields,
                ensure_collection_backfills_existing_documents,
                list_collections_orders_by_name_with_counts,
                get_missing_is_none,
                patch_merges_shallowly_and_stores_null,
                patch_is_compare_and_swap_only,
                delete_removes_the_row_and_its_index_entries,
                query_matches_every_filter,
                query_rejects_an_unindexed_field,
                query_rejects_null_object_and_array_values,
                query_orders_by_created_at_by_default_with_id_ties,
                query_orders_by_updated_at_and_id,
                query_orders_by_index_field_with_missing_lowest,
                query_rejects_an_unindexed_order,
                query_pages_with_limit_and_offset,
                count_ignores_order_limit_and_offset,
                index_values_follow_javascript,
                numbers_compare_as_strings,
                numbers_round_trip_exactly,
                nested_and_array_paths_are_indexed,
                array_length_paths_are_indexed,
                bad_names_and_ids_are_rejected,
                oversized_document_is_rejected,
                documents_at_the_depth_limit_round_trip,
                documents_deeper_than_the_limit_are_rejected,
                imported_documents_deeper_than_the_limit_are_rejected,
                imported_rows_are_written_exactly_in_order,
                document_writes_past_the_highest_version_are_refused,
                index_path_with_an_empty_segment_is_rejected,
                concurrent_cas_puts_have_one_winner,
                closed_store_refuses_calls,
                raw_reads_match_parsed_reads
            );
            $crate::conformance_suite!(@cases blobs, $factory, $guard,
                put_returns_metadata_and_get_streams_the_bytes,
                put_keeps_mime_and_owner,
                empty_and_limit_sized_blobs_are_stored,
                an_oversized_blob_is_refused_and_leaves_nothing,
                a_failing_reader_is_an_error_and_leaves_nothing,
                identical_bytes_are_still_two_blobs,
                missing_blobs_are_none_and_delete_reports_existence,
                list_is_newest_first_with_owner_and_paging,
                bad_blob_input_is_rejected,
                blobs_of_every_size_stream_whole_in_reads_of_any_size,
                closed_store_refuses_blob_calls
            );
            $crate::conformance_suite!(@cases leases, $factory, $guard,
                acquire_claims_a_free_key,
                acquire_of_a_held_key_says_who_holds_it,
                acquire_is_reentrant_for_the_holder,
                an_expired_lease_can_be_stolen,
                a_negative_ttl_is_born_expired,
                renew_extends_only_an_unexpired_own_lease,
                release_removes_only_the_holders_lease,
                release_all_removes_every_lease_of_the_owner,
                an_expired_row_is_still_returned,
                concurrent_acquires_have_one_winner,
                bad_lease_input_is_rejected,
                lease_writes_past_the_highest_version_are_refused,
                closed_store_refuses_lease_calls
            );
        }
    };
    (@cases $facility:ident, $factory:expr, $guard:expr, $($case:ident),+) => {
        mod $facility {
            $(
                #[test]
                fn $case() {
                    if !$guard {
                        return;
                    }
                    let h = $crate::conformance::Harness::new($factory);
                    $crate::conformance::$facility::$case(&h);
                }
            )+
        }
    };
}
