// Compiled by test/package.test.ts (tsc --noEmit): this package's stores are
// the published package's PatternStores, and the other way round.
import type { PatternStores as Published } from "../../.reference/package/dist/store/types.js";
import { logstorePatternStores, type PatternStores as Ours } from "../../dist/index.js";

export async function compat(): Promise<[Published, Ours]> {
  const ours: Published = await logstorePatternStores({ dir: "x", maxBlobBytes: 1, durability: "flush" });
  const back: Ours = ours;
  return [ours, back];
}
