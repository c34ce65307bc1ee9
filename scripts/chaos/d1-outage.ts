// Scenario "d1-outage": D1 made unavailable for OUTAGE_MS mid-run, for real: an exclusive lock on
// every local D1 SQLite file (python3's sqlite3: BEGIN EXCLUSIVE, hold, roll back), while invocations
// keep coming. Expected: every invocation is accepted or answered a clear 503 (never another 5xx),
// every accepted event ends, and the list converges afterwards with no missing or stale row.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ApiClient } from "../../test/helpers/api-client";
import type { RunCounter } from "./counter";
import {
  commonFigures,
  createCountingFunction,
  distribution,
  type Expectation,
  type InvokeAnswer,
  invokeOnce,
  listRows,
  log,
  report,
  type ScenarioReport,
  sleep,
  startChaosPlatform,
  timesToTerminal,
  unfinished,
  waitListConverged,
  waitTerminal,
} from "./harness";

/** How long D1 is unavailable, in ms (the 30 s). */
const OUTAGE_MS = 30_000;
/** Invocations before the outage and after it, for this long each, in ms. */
const AROUND_OUTAGE_MS = 10_000;
/** Pause between two invocations of the steady stream, in ms (about 10 per second). */
const INVOKE_INTERVAL_MS = 100;
/** How long every accepted event may take to end after the outage, in ms. */
const TERMINAL_TIMEOUT_MS = 10 * 60_000;
/** How long the list may take to converge after the outage, in ms. */
const LIST_TIMEOUT_MS = 10 * 60_000;
/** How long taking the lock may take, in ms. */
const LOCK_TIMEOUT_MS = 30_000;

/** Holds an exclusive lock on a SQLite file for holdMs: D1's local database, unavailable meanwhile. */
const LOCKER = `
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]) / 1000)
connection.execute("ROLLBACK")
print("released", flush=True)
`;

/** The local D1 database files of a state folder (wrangler keeps them under v3/d1). */
function d1Files(stateDir: string): string[] {
  const root = join(stateDir, "wrangler", "v3", "d1");
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.endsWith(".sqlite")) files.push(join(dir, entry.name));
    }
  };
  walk(root);
  return files;
}

/** Starts holding the lock; resolves once it is held, with the process (which exits on release). */
async function lockDatabase(file: string, holdMs: number): Promise<ChildProcess> {
  const locker = spawn("python3", ["-c", LOCKER, file, String(holdMs)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`could not lock ${file}`)), LOCK_TIMEOUT_MS);
    if (!locker.stdout) return reject(new Error("the locker has no output"));
    createInterface({ input: locker.stdout }).once("line", () => {
      clearTimeout(timer);
      resolve();
    });
    locker.once("exit", (code) => reject(new Error(`the locker exited (${code}) before locking ${file}`)));
  });
  return locker;
}

/** Invokes the function every INVOKE_INTERVAL_MS until `until` (epoch ms), recording every answer. */
async function steadyInvocations(api: ApiClient, name: string, until: number, answers: InvokeAnswer[]): Promise<void> {
  while (Date.now() < until) {
    const sent = Date.now();
    try {
      answers.push(await invokeOnce(api, name, {}));
    } catch (error) {
      answers.push({ accepted: false, status: 0, body: String(error), at: Date.now() });
    }
    await sleep(Math.max(0, INVOKE_INTERVAL_MS - (Date.now() - sent)));
  }
}

export async function d1Outage(counter: RunCounter): Promise<ScenarioReport> {
  const startedAt = Date.now();
  log(`d1-outage: D1 locked for ${OUTAGE_MS} ms mid-run`);
  const platform = await startChaosPlatform();
  try {
    const api = new ApiClient(platform.baseUrl);
    const name = await createCountingFunction(api, counter.url, "d1", { maxConcurrency: 10 });
    // Every D1 database (DB and the index databases of INDEX_DATABASES) is locked at once.
    const files = d1Files(platform.stateDir).filter((file) => !file.endsWith("metadata.sqlite"));
    if (files.length === 0) throw new Error(`no D1 database under ${platform.stateDir}`);
    const answers: InvokeAnswer[] = [];
    const streamEnds = Date.now() + AROUND_OUTAGE_MS + OUTAGE_MS + AROUND_OUTAGE_MS;
    const stream = steadyInvocations(api, name, streamEnds, answers);
    await sleep(AROUND_OUTAGE_MS);
    const lockers = await Promise.all(files.map((file) => lockDatabase(file, OUTAGE_MS)));
    const faultAt = Date.now();
    // A read of the index during the outage: does the lock really make D1 fail?
    let listDuringOutage: string;
    try {
      listDuringOutage = `${(await listRows(api, name)).size} rows`;
    } catch (error) {
      listDuringOutage = String(error).slice(0, 300);
    }
    await Promise.all(lockers.map((locker) => new Promise((resolve) => locker.once("exit", resolve))));
    const recoveredAt = Date.now();
    await stream;

    const ids = answers.flatMap((answer) => (answer.accepted ? [answer.requestId] : []));
    const refused = answers.filter((answer): answer is Extract<InvokeAnswer, { accepted: false }> => !answer.accepted);
    const during = answers.filter((answer) => answer.at >= faultAt && answer.at <= recoveredAt);
    const views = await waitTerminal(api, ids, TERMINAL_TIMEOUT_MS);
    const { missing, stale } = await waitListConverged(api, new Map([[name, ids]]), views, LIST_TIMEOUT_MS);
    const runs = await counter.runs();
    const figures = commonFigures(ids, views, runs);
    const platformLog = readFileSync(platform.logFile, "utf8");
    const d1Errors = platformLog.split("\n").filter((line) => /SQLITE_BUSY|database is locked/i.test(line));
    const bad = refused.filter((answer) => answer.status !== 503);
    const expectations: Expectation[] = [
      {
        name: "the lock makes D1 fail (errors in the platform log)",
        pass: d1Errors.length > 0,
        detail: { d1ErrorLines: d1Errors.length, first: d1Errors[0]?.slice(0, 300), listDuringOutage },
      },
      {
        name: "every invocation is accepted (202) or refused with a clear 503",
        pass: bad.length === 0,
        detail: bad.slice(0, 5),
      },
      {
        name: "every accepted RequestId reaches a terminal status",
        pass: figures.lost === 0,
        detail: figures.statuses,
      },
      { name: "no event runs twice (external counter)", pass: figures.runTwice === 0 },
      {
        name: "the list converges: no missing or stale row",
        pass: missing.length === 0 && stale.length === 0,
        detail: { missing: missing.slice(0, 10), stale: stale.slice(0, 10) },
      },
    ];
    return report(
      {
        scenario: "d1-outage",
        ...figures,
        timeToTerminalAfterFaultMs: distribution(timesToTerminal(views.values(), recoveredAt)),
        invocations: {
          total: answers.length,
          accepted: ids.length,
          duringOutage: during.length,
          acceptedDuringOutage: during.filter((answer) => answer.accepted).length,
          refusedByStatus: refused.reduce<Record<string, number>>((counts, answer) => {
            counts[answer.status] = (counts[answer.status] ?? 0) + 1;
            return counts;
          }, {}),
        },
        outageMs: recoveredAt - faultAt,
        unfinished: unfinished(ids, views, runs),
        expectations,
      },
      startedAt,
    );
  } finally {
    await platform.stop();
  }
}
