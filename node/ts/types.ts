/**
 * The `PatternStores` shape of `@pattern-js/mod-store@0.4.0`
 * (`dist/store/types.d.ts`), restated so this package type-checks without
 * it: structurally identical, so a `PatternStores` from here is assignable
 * to the package's and back.
 */

export interface CollectionDef {
  name: string;
  /** Dotted paths into the document data; only these are queryable. */
  indexes: string[];
}

export interface DocumentRow {
  id: string;
  collection: string;
  data: Record<string, unknown>;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface QueryOptions {
  collection: string;
  where?: Record<string, unknown>;
  orderBy?: string;
  orderDir?: "asc" | "desc";
  limit?: number;
  offset?: number;
}

export interface DocumentStore {
  ensureCollection(def: CollectionDef): Promise<void>;
  listCollections(): Promise<Array<CollectionDef & { docCount: number }>>;
  get(collection: string, id: string): Promise<DocumentRow | null>;
  put(
    collection: string,
    id: string,
    data: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<DocumentRow | null>;
  patch(
    collection: string,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number,
  ): Promise<DocumentRow | null>;
  delete(collection: string, id: string): Promise<boolean>;
  query(opts: QueryOptions): Promise<DocumentRow[]>;
  count(collection: string, where?: Record<string, unknown>): Promise<number>;
}

export interface BlobMeta {
  id: string;
  mime: string;
  size: number;
  ownerId: string | null;
  createdAt: number;
}

export interface BlobStore {
  put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    opts?: { mime?: string; ownerId?: string | null },
  ): Promise<BlobMeta>;
  get(id: string): Promise<{ meta: BlobMeta; stream: ReadableStream<Uint8Array> } | null>;
  getMeta(id: string): Promise<BlobMeta | null>;
  delete(id: string): Promise<boolean>;
  list(opts?: { ownerId?: string; limit?: number; offset?: number }): Promise<BlobMeta[]>;
}

export interface LeaseRow {
  key: string;
  owner: string;
  expiresAt: number;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export type AcquireResult =
  | { ok: true; lease: LeaseRow }
  | { ok: false; owner: string; expiresAt: number };

export interface LeaseStore {
  acquire(key: string, owner: string, ttlMs: number): Promise<AcquireResult>;
  renew(key: string, owner: string, ttlMs: number): Promise<AcquireResult>;
  release(key: string, owner: string): Promise<void>;
  releaseAll(owner: string): Promise<number>;
  get(key: string): Promise<LeaseRow | null>;
}

export interface PatternStores {
  docs: DocumentStore;
  blobs: BlobStore;
  leases: LeaseStore;
  close(): Promise<void>;
}

/** A field value as the reference package indexes it (null: not indexed). */
export function indexValue(v: unknown): string | null {
  if (v == null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return null;
}
