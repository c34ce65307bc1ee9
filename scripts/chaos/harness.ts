// What every chaos scenario shares: the platform, the counting handler, bulk invocation, waiting
// for terminal statuses, reading the list, Docker, and the figures each scenario reports.
import { execFileSync } from "node:child_process";
import { type ApiClient, type EventView, TEST_CREDENTIALS } from "../../test/helpers/api-client";
import { type RunningPlatform, startPlatform } from "../../test/helpers/platform";

/** Credentials every chaos platform is started with. */
export const CREDENTIALS = { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey };
/** The namespace chaos functions live in. */
export const NAMESPACE = "chaos";
/** Invocations in flight at once while a scenario fills the platform. */
const INVOKE_CONCURRENCY = 16;
/** Event reads in flight at once while waiting for terminal statuses. */
const READ_CONCURRENCY = 16;
/** Pause between two rounds of reading the events that have not ended, in ms. */
const POLL_INTERVAL_MS = 500;
/** Events per page of the REST list (its maximum). */
const LIST_PAGE = 100;
/** Retries of one request answered 429 or not answered at all. */
const MAX_REQUEST_RETRIES = 20;

/** Logs progress to standard error (standard output carries only the JSON figures). */
export function log(message: string): void {
  process.stderr.write(`[chaos] ${message}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a platform for one scenario: its own state folder unless one is given (a restart). */
export function startChaosPlatform(
  options: { vars?: Record<string, string>; stateDir?: string; port?: number } = {},
): Promise<RunningPlatform> {
  return startPlatform({
    env: CREDENTIALS,
    ...options,
    vars: { DIAGNOSTICS_ENABLED: "true", ...options.vars },
  });
}

/**
 * The chaos handler (Node.js): reports its run to the external counter first (the event fails if
 * the counter cannot be reached), prints the short id of its container's network sidecar (its
 * hostname), then works for event.runMs and returns.
 */
export const COUNTING_HANDLER = `
const http = require("http");
const os = require("os");
function report(requestId) {
  return new Promise((resolve, reject) => {
    const request = http.request(process.env.CHAOS_COUNTER_URL + "/run/" + requestId, { method: "POST", timeout: 10000 }, (response) => {
      response.resume();
      response.on("end", resolve);
    });
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("the run counter did not answer")));
    request.end();
  });
}
exports.main_handler = async (event, context) => {
  await report(context.request_id);
  console.log("sidecar " + os.hostname());
  if (event.runMs) await new Promise((resolve) => setTimeout(resolve, event.runMs));
  return { ok: true };
};
`;

/** Creates a counting function and returns its name. */
export function createCountingFunction(
  api: ApiClient,
  counterUrl: string,
  prefix: string,
  options: { timeout?: number; maxConcurrency?: number } = {},
): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, prefix, {
    runtime: "Nodejs22",
    files: { "index.js": COUNTING_HANDLER },
    timeout: options.timeout ?? 300,
    maxConcurrency: options.maxConcurrency ?? 10,
    qpsLimit: 1000,
    environment: { CHAOS_COUNTER_URL: counterUrl },
  });
}

/** Sends a request again while it answers 429 or does not connect (a platform restarting). */
export async function patientRequest(api: ApiClient, path: string, init: RequestInit = {}): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await api.request(path, init);
      if (response.status !== 429 || attempt >= MAX_REQUEST_RETRIES) return response;
      await response.body?.cancel();
      await sleep(Math.max(1, Number(response.headers.get("retry-after") ?? "1")) * 1000);
    } catch (error) {
      if (attempt >= MAX_REQUEST_RETRIES) throw error;
      await sleep(1000);
    }
  }
}

/** One invocation's answer: accepted with a RequestId, or refused with its status and body. */
export type InvokeAnswer =
  | { accepted: true; requestId: string; at: number }
  | { accepted: false; status: number; body: string; at: number };

/** Invokes a function once; any answer is returned, a connection failure throws. */
export async function invokeOnce(api: ApiClient, functionName: string, event: unknown): Promise<InvokeAnswer> {
  const response = await api.request(`/v1/namespaces/${NAMESPACE}/functions/${functionName}/invocations`, {
    method: "POST",
    body: JSON.stringify(event),
  });
  const body = await response.text();
  const at = Date.now();
  if (response.status === 202)
    return { accepted: true, requestId: (JSON.parse(body) as { requestId: string }).requestId, at };
  return { accepted: false, status: response.status, body: body.slice(0, 500), at };
}

/** Invokes a function count times, INVOKE_CONCURRENCY at once; every invocation must be accepted. */
export async function invokeMany(
  api: ApiClient,
  functionName: string,
  count: number,
  event: (index: number) => unknown,
): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(INVOKE_CONCURRENCY, count) }, async () => {
      while (next < count) {
        const index = next++;
        for (let attempt = 0; ; attempt++) {
          const answer = await invokeOnce(api, functionName, event(index));
          if (answer.accepted) {
            ids[index] = answer.requestId;
            break;
          }
          if (answer.status !== 429 || attempt >= MAX_REQUEST_RETRIES)
            throw new Error(`invoke answered ${answer.status}: ${answer.body}`);
          await sleep(1000);
        }
        if ((index + 1) % 1000 === 0) log(`  invoked ${index + 1}/${count}`);
      }
    }),
  );
  return ids;
}

/** Reads one event; undefined when the platform does not answer it (or answers 404: lost). */
async function readEvent(api: ApiClient, requestId: string): Promise<EventView | undefined> {
  try {
    const response = await patientRequest(api, `/v1/events/${requestId}`);
    if (response.status !== 200) {
      await response.body?.cancel();
      return undefined;
    }
    return (await response.json()) as EventView;
  } catch {
    return undefined;
  }
}

/**
 * Polls every event until it is terminal or the deadline passes. Returns the last view of each
 * (undefined: never read, which counts as lost).
 */
export async function waitTerminal(
  api: ApiClient,
  ids: string[],
  timeoutMs: number,
): Promise<Map<string, EventView | undefined>> {
  const views = new Map<string, EventView | undefined>(ids.map((id) => [id, undefined]));
  const deadline = Date.now() + timeoutMs;
  let pending = [...ids];
  let lastLogged = 0;
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(READ_CONCURRENCY, pending.length) }, async () => {
        while (next < pending.length) {
          const id = pending[next++] as string;
          const view = await readEvent(api, id);
          if (view) views.set(id, view);
          if (!view || view.status === "RUNNING") still.push(id);
        }
      }),
    );
    pending = still;
    if (Date.now() - lastLogged > 15_000) {
      log(`  ${ids.length - pending.length}/${ids.length} events terminal`);
      lastLogged = Date.now();
    }
    if (pending.length > 0) await sleep(POLL_INTERVAL_MS);
  }
  return views;
}

/** Every row of a function's REST event list (the D1 index), by RequestId. */
export async function listRows(api: ApiClient, functionName: string): Promise<Map<string, { status: string }>> {
  const rows = new Map<string, { status: string }>();
  for (let offset = 0; ; offset += LIST_PAGE) {
    const response = await patientRequest(
      api,
      `/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?limit=${LIST_PAGE}&offset=${offset}&order=ASC`,
    );
    if (response.status !== 200)
      throw new Error(`the event list answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { total: number; events: { requestId: string; status: string }[] };
    for (const row of page.events) rows.set(row.requestId, { status: row.status });
    if (page.events.length < LIST_PAGE || offset + LIST_PAGE >= page.total) return rows;
  }
}

/**
 * Waits until the list shows every event with its own terminal status, or the deadline passes.
 * Returns the RequestIds missing from the list and those whose row is stale (another status).
 */
export async function waitListConverged(
  api: ApiClient,
  byFunction: Map<string, string[]>,
  views: Map<string, EventView | undefined>,
  timeoutMs: number,
): Promise<{ missing: string[]; stale: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing: string[] = [];
    const stale: string[] = [];
    for (const [functionName, ids] of byFunction) {
      const rows = await listRows(api, functionName);
      for (const id of ids) {
        const row = rows.get(id);
        if (!row) missing.push(id);
        else if (row.status !== views.get(id)?.status) stale.push(id);
      }
    }
    if ((missing.length === 0 && stale.length === 0) || Date.now() >= deadline) return { missing, stale };
    await sleep(2_000);
  }
}

/** The sidecar id an event's handler printed (COUNTING_HANDLER), waiting for it. */
export async function sidecarOf(api: ApiClient, requestId: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = (await api.logs(requestId)).find((record) => record.line.startsWith("sidecar "));
    if (line) return line.line.slice("sidecar ".length);
    await sleep(100);
  }
  throw new Error(`event ${requestId} never printed its sidecar`);
}

/** Runs the Docker client and returns its standard output. */
export function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The function container that shares a sidecar's namespaces: its name without `-proxy`. */
export function functionContainerOf(sidecarId: string): string {
  return docker("inspect", "--format", "{{.Name}}", sidecarId)
    .trim()
    .replace(/^\//, "")
    .replace(/-proxy$/, "");
}

/** The workerd run (`workerd-<run>-...`) of a container. */
export function workerdRunOf(container: string): string {
  const name = docker("inspect", "--format", "{{.Name}}", container).trim();
  const run = /^\/workerd-([0-9a-f]{16})-/.exec(name)?.[1];
  if (!run) throw new Error(`container ${container} is not workerd's: ${name}`);
  return run;
}

/** Ids of every container (running or stopped) of one workerd run. */
export function containersOfRun(run: string): string[] {
  return docker("ps", "--all", "--quiet", "--filter", `name=^/workerd-${run}-`).split("\n").filter(Boolean);
}

/** Milliseconds from the fault to each event's end (events that ended before the fault are left out). */
export function timesToTerminal(views: Iterable<EventView | undefined>, faultAt: number): number[] {
  const times: number[] = [];
  for (const view of views) {
    if (!view?.endedAt || view.status === "RUNNING") continue;
    const ms = Date.parse(view.endedAt) - faultAt;
    if (ms >= 0) times.push(ms);
  }
  return times;
}

/** The p-th percentile (nearest rank) of a list, or null when it is empty. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

/** Median, p95 and max of a list of durations in ms (null when empty). */
export function distribution(values: number[]): { median: number | null; p95: number | null; max: number | null } {
  return { median: percentile(values, 50), p95: percentile(values, 95), max: percentile(values, 100) };
}

/** One expectation of a scenario and whether it held. */
export interface Expectation {
  name: string;
  pass: boolean;
  detail?: unknown;
}

/** The figures every scenario reports (a scenario may add its own). */
export interface ScenarioFields {
  scenario: string;
  accepted: number;
  terminal: number;
  lost: number;
  runTwice: number;
  statuses: Record<string, number>;
  timeToTerminalAfterFaultMs: { median: number | null; p95: number | null; max: number | null };
  expectations: Expectation[];
}

/** The figures one scenario prints: its fields, whether every expectation held, and its duration. */
export type ScenarioReport = ScenarioFields & { pass: boolean; durationMs: number } & Record<string, unknown>;

/**
 * The common figures of a scenario from the final views and the external counter: accepted,
 * terminal, lost (never terminal or unreadable), run twice (counted more than once), statuses.
 */
export function commonFigures(
  ids: string[],
  views: Map<string, EventView | undefined>,
  runs: Map<string, number>,
): { accepted: number; terminal: number; lost: number; runTwice: number; statuses: Record<string, number> } {
  const statuses: Record<string, number> = {};
  let terminal = 0;
  for (const id of ids) {
    const status = views.get(id)?.status ?? "UNREADABLE";
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status !== "RUNNING" && status !== "UNREADABLE") terminal++;
  }
  const runTwice = ids.filter((id) => (runs.get(id) ?? 0) > 1).length;
  return { accepted: ids.length, terminal, lost: ids.length - terminal, runTwice, statuses };
}

/** Most events listed by RequestId in a report's samples. */
const MAX_SAMPLES = 10;

/**
 * Why events did not finish: how many ended with each status, code and message, and a few of them
 * by RequestId (for the platform's log), with the handler's runs as the external counter saw them.
 */
export function unfinished(
  ids: string[],
  views: Map<string, EventView | undefined>,
  runs: Map<string, number>,
): { reasons: Record<string, number>; samples: unknown[] } {
  const reasons: Record<string, number> = {};
  const samples: unknown[] = [];
  for (const id of ids) {
    const view = views.get(id);
    if (view?.status === "FINISHED") continue;
    const reason =
      `${view?.status ?? "UNREADABLE"} ${view?.statusCode ?? ""} ${view?.errorMessage ?? view?.phase ?? ""}`.trim();
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    if (samples.length < MAX_SAMPLES)
      samples.push({
        requestId: id,
        reason,
        invokedAt: view?.invokedAt,
        endedAt: view?.endedAt,
        runs: runs.get(id) ?? 0,
      });
  }
  return { reasons, samples };
}

/** Finishes a report: pass is true when every expectation held. */
export function report(fields: ScenarioFields & Record<string, unknown>, startedAt: number): ScenarioReport {
  return {
    ...fields,
    pass: fields.expectations.every((expectation) => expectation.pass),
    durationMs: Date.now() - startedAt,
  };
}
