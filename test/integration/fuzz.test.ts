// Property-based fuzz pass over every route of the platform (issue 9, "A security test suite"):
// thousands of generated malformed requests (REST and the Tencent Cloud API endpoint), each of which
// must be refused with a well-formed 4xx (or Tencent error envelope), never a 5xx, and none of which
// may store anything.
import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/api/app";
import type { EventState } from "../../worker/events/event-machine";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";
import { type FuzzKeys, judge, type KeyPair, secretsOf, sendCase, type Verdict } from "./fuzz-client";
import {
  FIXTURE_EVENT,
  FIXTURE_FUNCTION,
  FOREIGN_QUEUED_EVENT,
  type FuzzCase,
  OWN_ENDED_EVENT,
  SCOPED_NAMESPACE,
} from "./fuzz-model";
import {
  documentationWrongMethodCases,
  INPUTLESS_PATHS,
  oversizedCodeCases,
  REST_ROUTE_LABELS,
  restCaseArb,
} from "./fuzz-rest";
import { oversizedTencentCases, TENCENT_ROUTE, tencentCaseArb, tencentWrongMethodArb } from "./fuzz-tencent";

/** Generated requests per run (the issue asks for at least 2,000). */
const FUZZ_RUNS = 2_000;
/** The fast-check seed when FUZZ_SEED is not set: the same requests on every run. */
const DEFAULT_SEED = 20_260_901;
/** Time the whole pass may take (setup, requests, checks) before the test fails. */
const FUZZ_TIMEOUT_MS = 180_000;
/** Distinct failures printed in full (the rest are counted). */
const REPORTED_FAILURES = 40;
/** Examples kept per distinct failure. */
const EXAMPLES_PER_FAILURE = 2;
/** Routes that take no input at all, so that only a wrong method can be malformed on them. */
const INPUTLESS_ROUTES = new Set(INPUTLESS_PATHS.map((path) => `GET ${path}`));

/**
 * The seed: FUZZ_SEED when the pool passes it (a FUZZ_SEED binding in vitest.config.ts, or
 * process.env), else DEFAULT_SEED.
 */
function fuzzSeed(): number {
  const binding = (env as unknown as Record<string, unknown>).FUZZ_SEED;
  const processEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const raw = typeof binding === "string" && binding !== "" ? binding : processEnv?.FUZZ_SEED;
  const parsed = raw === undefined || raw === "" ? Number.NaN : Number(raw);
  return Number.isSafeInteger(parsed) ? parsed : DEFAULT_SEED;
}

/** Origin of the requests the fixtures are created with. */
const ORIGIN = "https://platform.test";
/** The Worker's bindings with its secrets (declared in worker/shared/secrets.d.ts). */
const workerEnv = env as Env;

async function adminFetch(keys: FuzzKeys, path: string, init: RequestInit): Promise<Response> {
  return SELF.fetch(`${ORIGIN}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${keys.admin.secretId}:${keys.admin.secretKey}`,
      "content-type": "application/json",
    },
  });
}

async function createKey(admin: KeyPair, namespaces: string[]): Promise<KeyPair> {
  const response = await SELF.fetch(`${ORIGIN}/v1/admin/credentials`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.secretId}:${admin.secretKey}` },
    body: JSON.stringify({ namespaces, description: "fuzz" }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as KeyPair;
}

/** The state of a seeded event, as if it had been accepted (and, when ended, had run). */
function seededState(requestId: string, ended: boolean): EventState {
  const { namespace, functionName } = FIXTURE_EVENT[requestId] as { namespace: string; functionName: string };
  const invokedAt = Date.now() - 60_000;
  return {
    requestId,
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, functionName),
    phase: ended ? "finished" : "queued",
    version: ended ? 4 : 1,
    invokedAt,
    ...(ended ? { startedAt: invokedAt + 1_000, endedAt: invokedAt + 2_000, statusCode: 200, result: '"done"' } : {}),
  };
}

/** Stores an event in its Durable Object and its row in the D1 index (no alarm: nothing moves it). */
async function seedEvent(requestId: string, ended: boolean): Promise<void> {
  const state = seededState(requestId, ended);
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put("state", state);
  });
  await evictDurableObject(stub);
  await env.DB.prepare(
    `INSERT OR REPLACE INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, status_code,
       phase, start_time, end_time, duration_ms, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(
      requestId,
      state.namespace,
      state.functionName,
      state.qualifier,
      state.invokeType,
      ended ? "FINISHED" : "RUNNING",
      state.statusCode ?? null,
      state.phase,
      state.invokedAt,
      state.endedAt ?? null,
      ended ? 1_000 : null,
      state.version,
      Date.now(),
    )
    .run();
}

/** The fixtures every case refers to, created before anything is counted. */
async function setUpFixtures(): Promise<FuzzKeys> {
  const admin = { secretId: workerEnv.DEV_SECRET_ID ?? "", secretKey: workerEnv.DEV_SECRET_KEY ?? "" };
  expect(admin.secretId, "DEV_SECRET_ID is set in vitest.config.ts").not.toBe("");
  const keys: FuzzKeys = {
    admin,
    scoped: await createKey(admin, [SCOPED_NAMESPACE]),
    victimId: (await createKey(admin, ["fuzz-victim"])).secretId,
  };
  for (const [namespace, name] of Object.entries(FIXTURE_FUNCTION)) {
    const created = await adminFetch(keys, `/v1/namespaces/${namespace}/functions`, {
      method: "POST",
      body: JSON.stringify({
        name,
        runtime: "Nodejs22",
        code: { zipFile: zipBase64({ "index.js": `exports.main_handler = async () => "${name}";` }) },
        timeout: 600,
      }),
    });
    expect(created.status, `fixture ${namespace}/${name}`).toBe(201);
  }
  await seedEvent(OWN_ENDED_EVENT, true);
  await seedEvent(FOREIGN_QUEUED_EVENT, false);
  return keys;
}

/** Everything a request could store or change: counts and contents. */
interface Snapshot {
  functions: number;
  events: number;
  credentials: number;
  codeObjects: number;
  /** Contents, compared as text: function rows, index rows, credential rows, code keys, seeded events. */
  detail: string;
}

/** The three D1 tables a request could write, each as one JSON array, in one query. */
const TABLES_SQL = `SELECT
  (SELECT json_group_array(json_array(namespace, name, runtime, handler, code_sha256, code_size, code_key,
     timeout_seconds, memory_mb, environment, description, async_run_enable, max_concurrency, qps_limit,
     created_at, updated_at)) FROM (SELECT * FROM functions ORDER BY namespace, name)) AS functions,
  (SELECT json_group_array(json_array(request_id, namespace, function_name, status, phase, version))
     FROM (SELECT * FROM events ORDER BY request_id)) AS events,
  (SELECT json_group_array(json_array(secret_id, namespaces, revoked_at))
     FROM (SELECT * FROM credentials ORDER BY secret_id)) AS credentials,
  (SELECT json_group_array(json_array(namespace, function_name, version, description))
     FROM (SELECT * FROM function_versions ORDER BY namespace, function_name, version)) AS versions,
  (SELECT json_group_array(json_array(namespace, function_name, name, function_version, additional_version,
     additional_weight, description, updated_at))
     FROM (SELECT * FROM function_aliases ORDER BY namespace, function_name, name)) AS aliases,
  (SELECT json_group_array(json_array(id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
     custom_argument, description, source, updated_at))
     FROM (SELECT * FROM triggers ORDER BY id)) AS triggers`;

async function codeObjectKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.CODE_BUCKET.list({ prefix: "code/", ...(cursor ? { cursor } : {}) });
    keys.push(...page.objects.map((object) => object.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Reads the stored state: D1 (functions, events index, credentials), R2 code objects, seeded events. */
async function snapshot(): Promise<Snapshot> {
  const tables = await env.DB.prepare(TABLES_SQL).first<{
    functions: string;
    events: string;
    credentials: string;
    versions: string;
    aliases: string;
    triggers: string;
  }>();
  const functions = JSON.parse(tables?.functions ?? "[]") as unknown[];
  const events = JSON.parse(tables?.events ?? "[]") as unknown[];
  const credentials = JSON.parse(tables?.credentials ?? "[]") as unknown[];
  // Versions, aliases and triggers: their contents are compared (a bad request must change none).
  const management = {
    versions: JSON.parse(tables?.versions ?? "[]") as unknown[],
    aliases: JSON.parse(tables?.aliases ?? "[]") as unknown[],
    triggers: JSON.parse(tables?.triggers ?? "[]") as unknown[],
  };
  const codeKeys = await codeObjectKeys();
  const views = await Promise.all(
    [OWN_ENDED_EVENT, FOREIGN_QUEUED_EVENT].map((id) => env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(id)).view()),
  );
  return {
    functions: functions.length,
    events: events.length,
    credentials: credentials.length,
    codeObjects: codeKeys.length,
    detail: JSON.stringify({ functions, events, credentials, management, codeKeys, views }),
  };
}

/** How two snapshots' counts differ, for reports. */
function countChanges(before: Snapshot, after: Snapshot): string {
  return (
    `functions ${before.functions}→${after.functions}, events ${before.events}→${after.events}, ` +
    `credentials ${before.credentials}→${after.credentials}, code objects ${before.codeObjects}→${after.codeObjects}`
  );
}

/** The problem recorded when stored state changed (the counts, or only contents, in the report). */
const STATE_CHANGED = "stored state changed (first seen after this request; background writes may show later)";

/** One request that got a wrong answer or changed something. */
interface Failure {
  fuzzCase: FuzzCase;
  verdict: Verdict;
  /** How stored state changed after it, if it did. */
  change?: string;
}

/** A short description of a case and its answer, for the report. */
function describeFailure({ fuzzCase, verdict, change }: Failure): string {
  const action = fuzzCase.headers["x-tc-action"];
  return [
    `${fuzzCase.method} ${fuzzCase.target.slice(0, 120)}`,
    `  auth: ${JSON.stringify(fuzzCase.auth)}${action !== undefined ? ` action: ${JSON.stringify(action.slice(0, 40))}` : ""}`,
    `  malformed: ${fuzzCase.malformations.join("; ")}`,
    `  answer: ${verdict.status} ${verdict.code ?? ""} ${verdict.excerpt.slice(0, 200)}`,
    ...(change ? [`  state: ${change}`] : []),
  ].join("\n");
}

/** The property's tally. */
interface Tally {
  sent: number;
  serverErrors: number;
  changes: number;
  perRoute: Map<string, number>;
  /** A few examples of each distinct failure, keyed by route (and Tencent action) and problem. */
  failures: Map<string, Failure[]>;
}

function record(tally: Tally, failure: Failure): void {
  const { fuzzCase, verdict } = failure;
  tally.sent += 1;
  tally.perRoute.set(fuzzCase.route, (tally.perRoute.get(fuzzCase.route) ?? 0) + 1);
  if (verdict.problems.some((problem) => problem === "5xx" || problem.startsWith("InternalError"))) {
    tally.serverErrors += 1;
  }
  for (const problem of verdict.problems) {
    const action = fuzzCase.headers["x-tc-action"];
    const key = `${fuzzCase.route}${action !== undefined ? ` ${action.slice(0, 40)}` : ""} → ${problem}`;
    const examples = tally.failures.get(key) ?? [];
    if (examples.length < EXAMPLES_PER_FAILURE) examples.push(failure);
    tally.failures.set(key, examples);
  }
}

/** Sends a case, judges its answer and checks that stored state did not change. */
async function exercise(
  tally: Tally,
  keys: FuzzKeys,
  secrets: readonly string[],
  state: { current: Snapshot },
  fuzzCase: FuzzCase,
): Promise<void> {
  let verdict: Verdict;
  try {
    verdict = await judge(fuzzCase, await sendCase(fuzzCase, keys), secrets);
  } catch (error) {
    verdict = { status: 0, code: undefined, problems: [`request failed: ${String(error)}`], excerpt: "" };
  }
  const after = await snapshot();
  let change: string | undefined;
  if (after.detail !== state.current.detail) {
    tally.changes += 1;
    change = countChanges(state.current, after);
    verdict.problems.push(STATE_CHANGED);
    state.current = after;
  }
  record(tally, { fuzzCase, verdict, ...(change ? { change } : {}) });
}

/** True for an input-less route (GET /healthz) whose path got requests with methods it does not serve. */
function inputlessRouteProbed(route: string, tally: Tally): boolean {
  if (!INPUTLESS_ROUTES.has(route)) return false;
  const path = route.slice(route.indexOf(" ") + 1);
  return [...tally.perRoute.keys()].some((label) => label.endsWith(` ${path} (no such route)`));
}

/** Every malformed request the pass generates. */
const caseArb: fc.Arbitrary<FuzzCase> = fc
  .oneof(
    { weight: 11, arbitrary: restCaseArb },
    { weight: 8, arbitrary: tencentCaseArb },
    { weight: 1, arbitrary: tencentWrongMethodArb },
  )
  .filter((fuzzCase) => fuzzCase.malformations.length > 0);

describe("fuzz: malformed requests on every route", () => {
  it(
    `refuses ${FUZZ_RUNS} generated malformed requests with well-formed 4xx errors and stores nothing`,
    async () => {
      const keys = await setUpFixtures();
      const secrets = secretsOf(workerEnv, keys);
      const initial = await snapshot();
      const state = { current: initial };
      const tally: Tally = { sent: 0, serverErrors: 0, changes: 0, perRoute: new Map(), failures: new Map() };
      const seed = fuzzSeed();

      // Every case is sent and judged; failures are collected rather than thrown so that one run
      // reports every distinct failure (and no shrinking re-sends requests).
      await fc.assert(
        fc.asyncProperty(caseArb, async (fuzzCase) => {
          await exercise(tally, keys, secrets, state, fuzzCase);
        }),
        { numRuns: FUZZ_RUNS, seed },
      );
      for (const fuzzCase of [
        ...oversizedCodeCases(),
        ...oversizedTencentCases(),
        ...documentationWrongMethodCases(),
      ]) {
        await exercise(tally, keys, secrets, state, fuzzCase);
      }

      const final = await snapshot();
      const routes = createApp()
        .routes.filter((route) => route.method !== "ALL" || route.path === "/")
        .map((route) => `${route.method} ${route.path}`);
      const covered = routes.filter((route) => tally.perRoute.has(route) || inputlessRouteProbed(route, tally));
      const distinct = [...tally.failures.entries()];
      console.log(
        `fuzz summary: seed ${seed}, ${tally.sent} malformed requests sent to ${covered.length} of the app's ` +
          `${routes.length} routes (and to paths and methods no route serves), ${tally.serverErrors} 5xx ` +
          `(or InternalError) seen, ${tally.changes} requests changed stored state ` +
          `(${countChanges(initial, final)}), ${distinct.length} distinct failures`,
      );
      if (distinct.length > 0) {
        const shown = distinct
          .slice(0, REPORTED_FAILURES)
          .map(([key, examples]) => `✗ ${key}\n${examples.map(describeFailure).join("\n")}`);
        console.log(`fuzz failures:\n${shown.join("\n")}`);
      }

      // Every route of the app got requests (GET /healthz and the documentation routes take no input:
      // their paths get wrong methods).
      const uncovered = routes.filter((route) => !covered.includes(route));
      expect(uncovered, "routes the fuzz pass sent nothing to").toEqual([]);
      expect(
        [...REST_ROUTE_LABELS, TENCENT_ROUTE].filter((label) => !routes.includes(label)),
        "fuzzed routes the app no longer has",
      ).toEqual([]);

      expect(tally.sent).toBeGreaterThanOrEqual(FUZZ_RUNS);
      expect(tally.serverErrors, "5xx answers").toBe(0);
      expect(tally.changes, "requests that changed stored state").toBe(0);
      expect(final.detail === initial.detail, `stored state after the pass: ${countChanges(initial, final)}`).toBe(
        true,
      );
      expect(
        distinct.map(
          ([key, examples]) =>
            `${key} (${examples.length > 0 ? describeFailure(examples[0] as Failure).split("\n")[0] : ""})`,
        ),
        "distinct failures",
      ).toEqual([]);
    },
    FUZZ_TIMEOUT_MS,
  );
});
