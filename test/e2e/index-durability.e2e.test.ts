// The list index follows an event that ended while D1 refused writes. The fault is real: the test
// process holds an exclusive write lock on the platform's local D1 database file (SQLite, WAL mode)
// with python3's sqlite3 module, so workerd's D1 writes fail at once with "database is locked:
// SQLITE_BUSY" while reads go on; releasing the lock brings D1 back.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "index-durability";
/** Where wrangler keeps the local D1 databases of a state folder (one file per database). */
const D1_DIR = join("wrangler", "v3", "d1", "miniflare-D1DatabaseObject");
/** The lock holder gives up the lock by itself after this long, should the test die holding it. */
const LOCK_HOLD_LIMIT_S = 120;
/** How long the lock holder waits for a write in progress before it has the lock. */
const LOCK_ACQUIRE_TIMEOUT_S = 30;
/** How long the list is watched to still show RUNNING while D1 refuses writes. */
const STALE_OBSERVATION_MS = 3_000;
/** How long the list may take to converge once D1 takes writes again (retries back off). */
const CONVERGENCE_DEADLINE_MS = 90_000;
/** Pause between two list reads (well under the list's 20 per second). */
const POLL_INTERVAL_MS = 500;

/** Holds `BEGIN EXCLUSIVE` on the database until its standard input closes (or the hold limit). */
const LOCK_HOLDER = `
import sqlite3, sys, threading
db = sqlite3.connect(sys.argv[1], timeout=${LOCK_ACQUIRE_TIMEOUT_S}, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
done.wait(${LOCK_HOLD_LIMIT_S})
db.execute("COMMIT")
print("released", flush=True)
`;

/**
 * The platform's D1 database files: DB and the index databases of INDEX_DATABASES (wrangler.toml
 * declares two; the namespace's index is in one of them, and both are locked).
 */
function d1Files(): string[] {
  const dir = join(inject("stateDir"), D1_DIR);
  const files = readdirSync(dir).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  expect(files, `D1 databases in ${dir}`).toHaveLength(2);
  return files.map((name) => join(dir, name));
}

/** A held write lock on the D1 file; `release()` resolves once it is given up. */
async function lockD1(file: string): Promise<{ release(): Promise<void> }> {
  const holder: ChildProcessWithoutNullStreams = spawn("python3", ["-c", LOCK_HOLDER, file]);
  const lines = createInterface({ input: holder.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((resolve) => holder.once("exit", resolve));
  let stderr = "";
  holder.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const first = await lines.next();
  if (first.value !== "locked") throw new Error(`the D1 lock was not taken (exit ${await exited}): ${stderr}`);
  return {
    async release() {
      holder.stdin.end();
      const code = await exited;
      if (code !== 0) throw new Error(`the D1 lock holder failed (exit ${code}): ${stderr}`);
    },
  };
}

/** The event's status as the list shows it, or null when it has no row. */
async function listedStatus(functionName: string, requestId: string): Promise<string | null> {
  const { status, body } = await api.json<{ events: { status: string }[] }>(
    `/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?requestId=${requestId}`,
  );
  expect(status).toBe(200);
  return body.events[0]?.status ?? null;
}

/** Polls the list until the event shows `expected`; fails with the last status seen otherwise. */
async function waitForListed(functionName: string, requestId: string, expected: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last = await listedStatus(functionName, requestId);
  while (last !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    last = await listedStatus(functionName, requestId);
  }
  expect(last, `listed status of ${requestId}`).toBe(expected);
}

function deleteFunction(functionName: string) {
  return api.json<{ error?: { code: string } }>(`/v1/namespaces/${NAMESPACE}/functions/${functionName}`, {
    method: "DELETE",
  });
}

describe("the event index under a D1 write outage", () => {
  it("shows an event that ended while D1 refused writes as FINISHED once D1 is back, and then lets DeleteFunction through", async () => {
    const functionName = await api.createUniqueFunction(NAMESPACE, "indexed", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": NODE_HANDLER },
      timeout: 60,
    });
    const requestId = await api.invoke(NAMESPACE, functionName, { sleepMs: 3_000 });
    await api.waitForEvent(requestId, (event) => event.phase === "running", 120_000);
    await waitForListed(functionName, requestId, "RUNNING", 60_000);

    const locks = await Promise.all(d1Files().map((file) => lockD1(file)));
    try {
      const done = await api.waitForEvent(requestId, undefined, 60_000);
      expect(done.status).toBe("FINISHED");
      // D1 refuses the end's index write: the list keeps the stale row, and DeleteFunction (which
      // reads the index) is refused.
      const observeUntil = Date.now() + STALE_OBSERVATION_MS;
      while (Date.now() < observeUntil) {
        expect(await listedStatus(functionName, requestId)).toBe("RUNNING");
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      }
      const refused = await deleteFunction(functionName);
      expect(refused.status).toBe(409);
      expect(refused.body?.error?.code).toBe("FUNCTION_IN_USE");
    } finally {
      await Promise.all(locks.map((lock) => lock.release()));
    }

    // Nothing but the event's own retry writes the row again.
    await waitForListed(functionName, requestId, "FINISHED", CONVERGENCE_DEADLINE_MS);
    expect((await deleteFunction(functionName)).status).toBe(204);
  });
});
