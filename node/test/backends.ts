// Which engine a test file runs against. vitest.config.ts runs the
// contract and differential files a second time with
// LOGSTORE_NODE_BACKEND=postgres, against the server at LOGSTORE_PG_URL
// (scripts/with-postgres.sh starts one and sets it).
import { randomUUID } from "node:crypto";
import { join } from "node:path";

import { tempDir } from "./helpers.js";

export const BACKEND: "log" | "postgres" =
  process.env.LOGSTORE_NODE_BACKEND === "postgres" ? "postgres" : "log";

/** Where one store lives: a fresh directory, or a fresh schema of the test server. */
export type Place = { dir: string } | { url: string; schema: string };

/** A place no other test (or run) uses. */
export function freshPlace(): Place {
  if (BACKEND === "log") return { dir: join(tempDir(), "log") };
  const url = process.env.LOGSTORE_PG_URL;
  if (!url) throw new Error("LOGSTORE_NODE_BACKEND=postgres needs LOGSTORE_PG_URL");
  return { url, schema: `t_${randomUUID().replaceAll("-", "")}` };
}
