//! The contract's limits and fixed names, the same in every driver. Input
//! past a limit is `InvalidInput` and changes nothing.

/// The longest collection name, in bytes of UTF-8.
pub const MAX_COLLECTION_NAME_BYTES: usize = 256;
/// The longest document id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 1024;
/// The longest index field path, in bytes of UTF-8.
pub const MAX_INDEX_PATH_BYTES: usize = 256;
/// The most index fields one collection may declare.
pub const MAX_INDEXES: usize = 64;
/// The deepest nesting of objects and arrays a document body may have,
/// counting the body's own object as 1 (`{"a": [1]}` is 2 deep). Scalars
/// add nothing. A put, compare-and-swap put or import of a deeper body, or
/// a patch that is (or makes the document) deeper, is `InvalidInput` and
/// writes nothing. The limit sits well under the 128 levels serde_json's
/// parser accepts, so every stored body can be read back and replayed.
pub const MAX_DOCUMENT_DEPTH: usize = 64;

/// The longest blob id, in bytes. Ids are UUIDs; any id of ASCII letters,
/// digits, `-` and `_` is accepted so ids from other writers still read.
pub const MAX_BLOB_ID_BYTES: usize = 128;
/// The longest blob mime type, in bytes.
pub const MAX_MIME_BYTES: usize = 255;
/// The longest blob owner id, lease key or lease owner, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The default page size of a blob list.
pub const DEFAULT_BLOB_LIMIT: usize = 100;

/// The order fields every collection has without declaring them.
pub const ORDER_CREATED_AT: &str = "createdAt";
/// See [`ORDER_CREATED_AT`].
pub const ORDER_UPDATED_AT: &str = "updatedAt";
/// See [`ORDER_CREATED_AT`].
pub const ORDER_ID: &str = "id";
