// The bench's issue-17 figures (scripts/bench.ts calls pipelineFigures; `BENCH_ONLY=pipeline npm run
// bench` runs them alone): per run, /healthz and invoke accept at 50 connections, 1,000 trivial events
// end to end at maxConcurrency 10 (with per-event costs from the diagnostics counters) and at 50,
// and Cloudflare Workflows' create→complete of as many trivial instances (the peer harness's
// workflows worker, copied into a temp dir and run with this repository's wrangler); BENCH_RUNS
// runs (default 3), each run's figures and the medians.
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ADMIN_HEADERS, type ApiClient } from "../test/helpers/api-client";

const ROOT = resolve(import.meta.dirname, "..");
/** Runs of the throughput parts (medians reported). */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Events (and Workflows instances) per completion run. */
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1000);
/** Seconds of each load (/healthz, invoke accept). */
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
/** The peer harness (read-only; copied before use). BENCH_PEERS=0 leaves Workflows out. */
const PEERS_DIR = process.env.BENCH_PEERS_DIR ?? resolve(ROOT, "..", "shared", "peers");
const PEERS = process.env.BENCH_PEERS !== "0";
/** BENCH_COSTS_ONLY=1: only the maxConcurrency 10 completion run and its per-event costs (once). */
const COSTS_ONLY = process.env.BENCH_COSTS_ONLY === "1";
/** Submissions in flight (both for the platform and for Workflows), and the poll round's width. */
const SUBMIT_CONCURRENCY = 50;
const POLL_WIDTH = 25;
const POLL_INTERVAL_MS = 500;
/** Namespaces of the completion runs (apart from the bench's others, so their containers do not count). */
const NAMESPACE_C10 = "bench-c10";
const NAMESPACE_C50 = "bench-c50";
const TRIVIAL_HANDLER = `exports.main_handler = async (event) => ({ n: event.n ?? null });`;

export interface LoadResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

export interface PipelineTools {
  api: ApiClient;
  baseUrl: string;
  autocannon(args: string[]): Promise<LoadResult>;
  log(message: string): void;
}

function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  const value =
    finite.length % 2 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
  return Math.round(value * 1000) / 1000;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Submits `count` jobs (SUBMIT_CONCURRENCY in flight) then polls until each is terminal. */
async function submitAndComplete(
  count: number,
  submit: (n: number) => Promise<string>,
  status: (id: string) => Promise<string | undefined>,
  terminal: (status: string) => boolean,
  timeoutMs: number,
): Promise<{ acceptAllMs: number; completeAllMs: number; statuses: Map<string, string>; polls: number }> {
  const startedAt = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i += SUBMIT_CONCURRENCY) {
    const batch = Math.min(SUBMIT_CONCURRENCY, count - i);
    ids.push(...(await Promise.all(Array.from({ length: batch }, (_, k) => submit(i + k)))));
  }
  const acceptAllMs = Date.now() - startedAt;
  const statuses = new Map<string, string>();
  let pending = ids;
  let polls = 0;
  while (pending.length > 0 && Date.now() - startedAt < timeoutMs) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += POLL_WIDTH) {
      const slice = pending.slice(i, i + POLL_WIDTH);
      polls += slice.length;
      const seen = await Promise.all(slice.map((id) => status(id).catch(() => undefined)));
      seen.forEach((value, index) => {
        const id = slice[index] as string;
        if (value !== undefined && terminal(value)) statuses.set(id, value);
        else still.push(id);
      });
    }
    pending = still;
    if (pending.length > 0) await sleep(POLL_INTERVAL_MS);
  }
  for (const id of pending) statuses.set(id, "LOST");
  return { acceptAllMs, completeAllMs: Date.now() - startedAt, statuses, polls };
}

type Counts = Record<string, unknown> & {
  durableObjectCalls: number;
  durableObjectCallsByMethod: Record<string, number>;
  storageWrites: number;
  storageSqlWrites: number;
  storageKvWriteCalls: number;
  storageKvKeysWritten: number;
  storageAlarmWrites: number;
  d1Statements: number;
  d1Calls: number;
  d1RowsWritten: number;
  installedAt: number | null;
};

async function costs(baseUrl: string): Promise<Counts> {
  const response = await fetch(`${baseUrl}/_diagnostics/costs`, { headers: ADMIN_HEADERS });
  if (!response.ok) throw new Error(`/_diagnostics/costs answered ${response.status}`);
  return (await response.json()) as Counts;
}

const COUNTED = [
  "durableObjectCalls",
  "storageWrites",
  "storageSqlWrites",
  "storageKvWriteCalls",
  "storageKvKeysWritten",
  "storageAlarmWrites",
  "d1Statements",
  "d1Calls",
  "d1RowsWritten",
] as const;

function difference(after: Counts, before: Counts): Counts {
  const out = { ...after, durableObjectCallsByMethod: {} as Record<string, number> };
  for (const key of COUNTED) out[key] = after[key] - before[key];
  for (const [method, n] of Object.entries(after.durableObjectCallsByMethod)) {
    const delta = n - (before.durableObjectCallsByMethod[method] ?? 0);
    if (delta !== 0) out.durableObjectCallsByMethod[method] = delta;
  }
  return out;
}

/** Counters once they stop moving (the pipeline's trailing work: index, release, alarms), at most 30 s. */
async function settledCosts(baseUrl: string): Promise<Counts> {
  let last = await costs(baseUrl);
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const now = await costs(baseUrl);
    if (COUNTED.every((key) => now[key] === last[key])) return now;
    last = now;
  }
  return last;
}

/** What one status poll (GET /v1/events/:id of an ended event) costs, to subtract the bench's own polls. */
async function pollCost(api: ApiClient, baseUrl: string, ids: string[]): Promise<Counts> {
  const sample = ids.slice(0, 50);
  const before = await settledCosts(baseUrl);
  for (const id of sample) await api.event(id);
  const after = await costs(baseUrl);
  const delta = difference(after, before);
  for (const key of COUNTED) delta[key] = delta[key] / sample.length;
  for (const method of Object.keys(delta.durableObjectCallsByMethod))
    delta.durableObjectCallsByMethod[method] = (delta.durableObjectCallsByMethod[method] ?? 0) / sample.length;
  return delta;
}

/**
 * Calls only a status read makes (GET /v1/events/:id of a queued event asks its scheduler why): the
 * bench's own polls, left out of the per-event costs whatever their number.
 */
const STATUS_READ_METHODS = ["SCHEDULER.queuedReason"];

/** The counted costs of a run divided per event, the bench's own status polls taken out. */
function perEvent(run: Counts, polls: number, perPoll: Counts, events: number): Record<string, unknown> {
  const figures: Record<string, unknown> = {};
  const statusReads = STATUS_READ_METHODS.reduce(
    (sum, method) => sum + (run.durableObjectCallsByMethod[method] ?? 0),
    0,
  );
  for (const key of COUNTED) {
    const reads = key === "durableObjectCalls" ? statusReads : 0;
    figures[key] = round((run[key] - reads - polls * perPoll[key]) / events, 2);
  }
  const byMethod: Record<string, number> = {};
  for (const [method, n] of Object.entries(run.durableObjectCallsByMethod)) {
    if (STATUS_READ_METHODS.includes(method)) continue;
    const value = round((n - polls * (perPoll.durableObjectCallsByMethod[method] ?? 0)) / events, 2);
    if (value !== 0) byMethod[method] = value;
  }
  figures.statusReadCallsLeftOut = statusReads;
  figures.durableObjectCallsByMethod = Object.fromEntries(Object.entries(byMethod).sort((a, b) => b[1] - a[1]));
  return figures;
}

/** The completion runs' functions, made once and kept warm from run to run (by namespace). */
const completionFunctions = new Map<string, string>();

async function createTrivial(api: ApiClient, namespace: string, maxConcurrency: number): Promise<string> {
  return api.createUniqueFunction(namespace, "bench", {
    runtime: "Nodejs22",
    files: { "index.js": TRIVIAL_HANDLER },
    timeout: 60,
    maxConcurrency,
    qpsLimit: 100_000,
  });
}

/** EVENTS trivial events of a warm function of `maxConcurrency`, accepted then ended; costs when asked. */
async function completion(tools: PipelineTools, namespace: string, maxConcurrency: number, withCosts: boolean) {
  const { api, baseUrl } = tools;
  const fn = completionFunctions.get(namespace) ?? (await createTrivial(api, namespace, maxConcurrency));
  completionFunctions.set(namespace, fn);
  // Warm: every slot's container started before timing (as many events as slots, at once).
  const warm = await Promise.all(Array.from({ length: maxConcurrency }, (_, n) => api.invoke(namespace, fn, { n })));
  for (const id of warm) await api.waitForEvent(id, undefined, 180_000);
  const before = withCosts ? await settledCosts(baseUrl) : undefined;
  const run = await submitAndComplete(
    EVENTS,
    (n) => api.invoke(namespace, fn, { n }),
    async (id) => (await api.event(id)).status,
    (status) => status !== "RUNNING",
    15 * 60_000,
  );
  const finished = [...run.statuses.values()].filter((status) => status === "FINISHED").length;
  const figures: Record<string, unknown> = {
    events: EVENTS,
    maxConcurrency,
    acceptAllMs: run.acceptAllMs,
    completeAllMs: run.completeAllMs,
    eventsPerSecond: round(EVENTS / (run.completeAllMs / 1000)),
    finished,
    lost: [...run.statuses.values()].filter((status) => status === "LOST").length,
    statuses: Object.fromEntries(
      [...new Set(run.statuses.values())].map((status) => [
        status,
        [...run.statuses.values()].filter((value) => value === status).length,
      ]),
    ),
  };
  if (before) {
    const after = await settledCosts(baseUrl);
    const perPoll = await pollCost(api, baseUrl, [...run.statuses.keys()]);
    figures.costPerEvent = perEvent(difference(after, before), run.polls, perPoll, EVENTS);
    figures.costNote = `counted from the first accept to the last trailing write; the bench's ${run.polls} status polls subtracted at their measured cost, its scheduler reads (queuedReason) left out`;
  }
  return figures;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** The peer harness's Workflows worker under this repository's wrangler dev, from a temp copy. */
async function startWorkflows(
  log: (message: string) => void,
): Promise<{ url: string; stop(): Promise<void> } | string> {
  if (!PEERS) return "left out (BENCH_PEERS=0)";
  const source = join(PEERS_DIR, "workflows");
  if (!existsSync(join(source, "wrangler.jsonc"))) return `no peer harness at ${source}`;
  const dir = mkdtempSync(join(tmpdir(), "bench-workflows-"));
  cpSync(source, join(dir, "workflows"), {
    recursive: true,
    filter: (path) => !path.includes(`${join("workflows", ".wrangler")}`) && !path.endsWith(".log"),
  });
  // hono and wrangler resolve from this repository's node_modules (no install).
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const port = await freePort();
  const inspector = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"),
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspector),
      "--persist-to",
      join(dir, "state"),
      "--log-level",
      "warn",
      "--show-interactive-dev-session=false",
    ],
    {
      cwd: join(dir, "workflows"),
      detached: true,
      stdio: "ignore",
      // As the peer harness runs it: wrangler's local trace store and explorer off.
      env: { ...process.env, X_LOCAL_OBSERVABILITY: "false", X_LOCAL_EXPLORER: "false" },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // gone already
      }
      for (let i = 0; i < 50 && child.exitCode === null; i++) await sleep(100);
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) {
      await fetch(`${url}/create`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      log(`Workflows peer on ${url}`);
      return { url, stop };
    }
    if (child.exitCode !== null) break;
    await sleep(500);
  }
  await stop();
  return "the Workflows peer did not start";
}

const WORKFLOW_TERMINAL = new Set(["complete", "errored", "terminated"]);

async function workflowsCompletion(url: string): Promise<Record<string, unknown>> {
  const run = await submitAndComplete(
    EVENTS,
    async (n) => {
      const response = await fetch(`${url}/create`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ seq: n }),
      });
      return ((await response.json()) as { id: string }).id;
    },
    async (id) => ((await (await fetch(`${url}/status/${id}`)).json()) as { status: string }).status,
    (status) => WORKFLOW_TERMINAL.has(status),
    10 * 60_000,
  );
  return {
    instances: EVENTS,
    acceptAllMs: run.acceptAllMs,
    completeAllMs: run.completeAllMs,
    instancesPerSecond: round(EVENTS / (run.completeAllMs / 1000)),
    complete: [...run.statuses.values()].filter((status) => status === "complete").length,
  };
}

/** Waits until no event of the namespace is RUNNING (the accept load's backlog), at most 10 min. */
async function drain(api: ApiClient, namespace: string, fn: string): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    const listed = await api.json<{ total: number }>(
      `/v1/namespaces/${namespace}/functions/${fn}/events?statuses=RUNNING&limit=1`,
    );
    if (listed.status === 200 && listed.body.total === 0) return;
    await sleep(2000);
  }
}

/** /healthz and invoke accept at 50 connections, DURATION_S each. */
async function acceptLoad(tools: PipelineTools): Promise<Record<string, number>> {
  const { api, baseUrl, autocannon } = tools;
  const health = await autocannon(["-c", "50", "-d", String(DURATION_S), `${baseUrl}/healthz`]);
  const fn = await createTrivial(api, "bench", 10);
  await api.waitForEvent(await api.invoke("bench", fn, { n: -1 }));
  const accept = await autocannon([
    "-c",
    "50",
    "-d",
    String(DURATION_S),
    "-m",
    "POST",
    "-H",
    `authorization=${api.authorization}`,
    "-H",
    "content-type=application/json",
    "-b",
    '{"n":2}',
    `${baseUrl}/v1/namespaces/bench/functions/${fn}/invocations`,
  ]);
  // The load's backlog is ended at once (a bulk termination), not run: the next part meets an idle platform.
  tools.log("terminating the accept load's queued events, then draining");
  const bulk = await api.json<{ jobId: string }>("/v1/namespaces/bench/bulk-terminations", {
    method: "POST",
    body: JSON.stringify({ functionName: fn }),
  });
  for (let i = 0; bulk.status === 202 && i < 600; i++) {
    const job = await api.json<{ status: string }>(`/v1/namespaces/bench/bulk-terminations/${bulk.body.jobId}`);
    if (job.body.status !== "RUNNING") break;
    await sleep(500);
  }
  await drain(api, "bench", fn);
  return {
    healthz: Math.round(health.requests.average),
    invokeAccept: Math.round(accept.requests.average),
    ratio: round(accept.requests.average / health.requests.average, 3),
    invokeNon2xx: accept.non2xx,
    invokeErrors: accept.errors,
  };
}

/**
 * BENCH_RUNS runs of: accept load (with its /healthz baseline), EVENTS trivial events at
 * maxConcurrency 10 (costs counted) and 50, and Workflows' create→complete of EVENTS instances; each
 * run's end-to-end rates as ratios of that run's accept rate, then the medians.
 */
export async function pipelineFigures(tools: PipelineTools): Promise<Record<string, unknown>> {
  if (COSTS_ONLY) {
    tools.log(`costs only: ${EVENTS} events at maxConcurrency 10`);
    return { costsOnly: await completion(tools, NAMESPACE_C10, 10, true) };
  }
  const workflows = await startWorkflows(tools.log);
  const runs: PipelineRun[] = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      const label = `pipeline run ${r + 1}/${RUNS}`;
      tools.log(`${label}: /healthz and invoke accept at 50 connections`);
      const throughput = await acceptLoad(tools);
      tools.log(`${label}: ${EVENTS} events at maxConcurrency 10 (costs counted)`);
      const c10 = await completion(tools, NAMESPACE_C10, 10, true);
      tools.log(`${label}: ${EVENTS} events at maxConcurrency 50`);
      const c50 = await completion(tools, NAMESPACE_C50, 50, false);
      let peer: Record<string, unknown> | string = typeof workflows === "string" ? workflows : "";
      if (typeof workflows !== "string") {
        tools.log(`${label}: Workflows create→complete of ${EVENTS} instances`);
        peer = await workflowsCompletion(workflows.url);
      }
      const accept = throughput.invokeAccept as number;
      const wf = typeof peer === "string" ? Number.NaN : Number(peer.instancesPerSecond);
      const run: PipelineRun = {
        throughputRps: throughput,
        completionC10: c10,
        completionC50: c50,
        workflows: peer,
        ratios: {
          c10ToAccept: round(Number(c10.eventsPerSecond) / accept, 3),
          c50ToAccept: round(Number(c50.eventsPerSecond) / accept, 3),
          c10ToWorkflows: round(Number(c10.eventsPerSecond) / wf, 3),
          c50ToWorkflows: round(Number(c50.eventsPerSecond) / wf, 3),
        },
      };
      // The whole run at once on stderr: a long bench cut short still leaves its finished runs.
      tools.log(`${label}: ${JSON.stringify(run)}`);
      runs.push(run);
    }
  } finally {
    if (typeof workflows !== "string") await workflows.stop();
  }
  const pick = (value: (run: PipelineRun) => unknown) => median(runs.map((run) => Number(value(run))));
  const costPerEvent: Record<string, number> = {};
  for (const key of COUNTED)
    costPerEvent[key] = pick((run) => (run.completionC10.costPerEvent as Record<string, number>)[key]);
  return {
    runs: runs.length,
    medians: {
      healthzRps: pick((run) => run.throughputRps.healthz),
      invokeAcceptRps: pick((run) => run.throughputRps.invokeAccept),
      acceptToHealthz: pick((run) => run.throughputRps.ratio),
      c10EventsPerSecond: pick((run) => run.completionC10.eventsPerSecond),
      c50EventsPerSecond: pick((run) => run.completionC50.eventsPerSecond),
      workflowsInstancesPerSecond: pick((run) =>
        typeof run.workflows === "string" ? Number.NaN : run.workflows.instancesPerSecond,
      ),
      c10ToAccept: pick((run) => run.ratios.c10ToAccept),
      c50ToAccept: pick((run) => run.ratios.c50ToAccept),
      c10ToWorkflows: pick((run) => run.ratios.c10ToWorkflows),
      c50ToWorkflows: pick((run) => run.ratios.c50ToWorkflows),
      costPerEvent,
    },
    each: runs,
  };
}

/** One run's figures. */
interface PipelineRun {
  throughputRps: Record<string, number>;
  completionC10: Record<string, unknown>;
  completionC50: Record<string, unknown>;
  workflows: Record<string, unknown> | string;
  ratios: Record<string, number>;
}
