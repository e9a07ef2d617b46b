// Everything a PatternStores holds that the tests name, as plain data: the
// listed collections, every row of the named collections (by id), every
// blob's metadata with a hash of its bytes, and the named leases.
import { createHash } from "node:crypto";

export async function dump(stores, { collections, leaseKeys }) {
  const docs = {};
  for (const c of collections) {
    docs[c] = await stores.docs.query({ collection: c, orderBy: "id", limit: 1_000_000 });
  }
  const blobs = [];
  for (const meta of await stores.blobs.list({ limit: 1_000_000 })) {
    const got = await stores.blobs.get(meta.id);
    const bytes = new Uint8Array(await new Response(got.stream).arrayBuffer());
    blobs.push({ meta, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
  }
  const leases = [];
  for (const k of leaseKeys) leases.push(await stores.leases.get(k));
  return { collections: await stores.docs.listCollections(), docs, blobs, leases };
}
