// `npm run bench`: starts the platform (wrangler dev, real containers, --log-level warn) on a free
// port and prints one JSON object of figures. Throughput is compared with GET /healthz measured in
// the same run, because these machines are shared and noisy.
//
// Environment: BENCH_DURATION_S (load duration per route, default 8), BENCH_EVENTS (completion
// test size, default 1000), BENCH_WARM_SAMPLES (default 40), BENCH_COLD_SAMPLES (default 5).
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { ApiClient, TEST_CREDENTIALS, uniqueName } from "../test/helpers/api-client";
import { startPlatform } from "../test/helpers/platform";

const ROOT = resolve(import.meta.dirname, "..");
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const EVENT_COUNT = Number(process.env.BENCH_EVENTS ?? 1000);
const WARM_SAMPLES = Number(process.env.BENCH_WARM_SAMPLES ?? 40);
const COLD_SAMPLES = Number(process.env.BENCH_COLD_SAMPLES ?? 5);
const NAMESPACE = "bench";

const TRIVIAL_HANDLER = `exports.main_handler = async (event) => ({ handlerStartedAt: Date.now(), n: event.n ?? null });`;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[index] ?? Number.NaN) * 10) / 10;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
}

/** Runs the autocannon CLI (Node 22 from node_modules) and returns its JSON summary. */
function autocannon(args: string[]): Promise<AutocannonResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, "node_modules", "autocannon", "autocannon.js"), "--json", ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      resolvePromise(JSON.parse(out) as AutocannonResult);
    });
  });
}

async function createTrivial(api: ApiClient, options: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName("bench");
  const created = await api.createFunction(NAMESPACE, {
    name,
    runtime: "Nodejs22",
    files: { "index.js": TRIVIAL_HANDLER },
    timeout: 60,
    maxConcurrency: 10,
    qpsLimit: 100_000,
    ...options,
  });
  if (created.status !== 201) throw new Error(`create answered ${created.status}`);
  return name;
}

/** RequestId returned → handler started, for one invocation. */
async function dispatchLatency(api: ApiClient, name: string, n: number): Promise<number> {
  const requestId = await api.invoke(NAMESPACE, name, { n });
  const returnedAt = Date.now();
  const done = await api.waitForEvent(requestId, undefined, 120_000);
  if (done.status !== "FINISHED") throw new Error(`event ${requestId} ended ${done.status}`);
  return (done.result as { handlerStartedAt: number }).handlerStartedAt - returnedAt;
}

async function waitAllEnded(api: ApiClient, ids: string[], timeoutMs: number): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  let pending = [...ids];
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 25) {
      const slice = pending.slice(i, i + 25);
      const views = await Promise.all(slice.map((id) => api.event(id).catch(() => undefined)));
      views.forEach((view, index) => {
        const id = slice[index] as string;
        if (view && view.status !== "RUNNING") statuses.set(id, view.status);
        else still.push(id);
      });
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
  for (const id of pending) statuses.set(id, "LOST");
  return statuses;
}

async function main(): Promise<void> {
  log("starting the platform");
  const platform = await startPlatform({
    env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
  });
  const api = new ApiClient(platform.baseUrl);
  const figures: Record<string, unknown> = { machine: { cores: (await import("node:os")).cpus().length } };
  try {
    // Unloaded: one connection at a fixed low rate, so each request meets an idle platform (every
    // accepted event also runs, on a warm container, between two requests).
    const fn = await createTrivial(api, { maxConcurrency: 2 });
    await dispatchLatency(api, fn, -1);
    const invokeUrl = `${platform.baseUrl}/v1/namespaces/${NAMESPACE}/functions/${fn}/invocations`;
    const auth = `authorization=${api.authorization}`;
    const rate = "10";
    const unloadedSeconds = String(Math.max(5, DURATION_S));
    log(`unloaded latency at 1 connection, ${rate} req/s: /healthz and invoke`);
    const healthOne = await autocannon(["-c", "1", "-R", rate, "-d", unloadedSeconds, `${platform.baseUrl}/healthz`]);
    const acceptOne = await autocannon([
      "-c",
      "1",
      "-R",
      rate,
      "-d",
      unloadedSeconds,
      "-m",
      "POST",
      "-H",
      auth,
      "-H",
      "content-type=application/json",
      "-b",
      '{"n":1}',
      invokeUrl,
    ]);
    figures.unloadedLatencyMs = {
      requestsPerSecond: Number(rate),
      healthz: { p50: healthOne.latency.p50, p99: healthOne.latency.p99 },
      invokeAccept: { p50: acceptOne.latency.p50, p99: acceptOne.latency.p99, non2xx: acceptOne.non2xx },
    };

    log("draining the events of the latency run");
    await new Promise((r) => setTimeout(r, 2_000));

    log(`warm dispatch latency (${WARM_SAMPLES} sequential events)`);
    const warmFn = await createTrivial(api, { maxConcurrency: 1 });
    await dispatchLatency(api, warmFn, -1);
    const warm: number[] = [];
    for (let i = 0; i < WARM_SAMPLES; i++) warm.push(await dispatchLatency(api, warmFn, i));
    figures.warmDispatchMs = { p50: percentile(warm, 50), p99: percentile(warm, 99), samples: warm.length };

    log(`cold start (${COLD_SAMPLES} new functions)`);
    const cold: number[] = [];
    for (let i = 0; i < COLD_SAMPLES; i++) cold.push(await dispatchLatency(api, await createTrivial(api), i));
    figures.coldStartMs = { p50: percentile(cold, 50), max: Math.max(...cold), samples: cold.length };

    log(`${EVENT_COUNT} trivial events at concurrency 10`);
    const batchFn = await createTrivial(api, { maxConcurrency: 10 });
    const startedAt = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < EVENT_COUNT; i += 50) {
      const count = Math.min(50, EVENT_COUNT - i);
      ids.push(
        ...(await Promise.all(Array.from({ length: count }, (_, k) => api.invoke(NAMESPACE, batchFn, { n: i + k })))),
      );
    }
    const acceptedAt = Date.now();
    const statuses = await waitAllEnded(api, ids, 15 * 60_000);
    const completedAt = Date.now();
    const finished = [...statuses.values()].filter((status) => status === "FINISHED").length;
    figures.completion = {
      events: EVENT_COUNT,
      concurrency: 10,
      acceptAllMs: acceptedAt - startedAt,
      completeAllMs: completedAt - startedAt,
      eventsPerSecond: Math.round((EVENT_COUNT / ((completedAt - startedAt) / 1000)) * 10) / 10,
      finished,
      lost: [...statuses.values()].filter((status) => status === "LOST").length,
      notFinished: EVENT_COUNT - finished,
    };

    log(`throughput at 50 connections, ${DURATION_S} s each: /healthz then invoke`);
    const healthLoad = await autocannon(["-c", "50", "-d", String(DURATION_S), `${platform.baseUrl}/healthz`]);
    const loadFn = await createTrivial(api, { maxConcurrency: 10 });
    const acceptLoad = await autocannon([
      "-c",
      "50",
      "-d",
      String(DURATION_S),
      "-m",
      "POST",
      "-H",
      auth,
      "-H",
      "content-type=application/json",
      "-b",
      '{"n":2}',
      `${platform.baseUrl}/v1/namespaces/${NAMESPACE}/functions/${loadFn}/invocations`,
    ]);
    figures.throughputRps = {
      healthz: Math.round(healthLoad.requests.average),
      invokeAccept: Math.round(acceptLoad.requests.average),
      ratio: Math.round((acceptLoad.requests.average / healthLoad.requests.average) * 1000) / 1000,
      invokeNon2xx: acceptLoad.non2xx,
      invokeErrors: acceptLoad.errors,
    };
  } finally {
    await platform.stop();
  }
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

main().catch((error: unknown) => {
  log(String(error instanceof Error ? error.stack : error));
  process.exit(1);
});
