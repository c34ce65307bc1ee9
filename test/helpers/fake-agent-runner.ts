// A fake container and runtime agent for InstanceContainer in the Workers test pool (which starts
// no containers): installed through the instance's test seam (installAgentRunnersForTests), one
// FakeAgentRunner per instance. A test drives each execution by hand (log lines, its end) and can
// kill the container under it.
import { env } from "cloudflare:test";
import type { AgentHealth, AgentRecord, ExecutionOutcome, ExecutionSpec } from "../../worker/contract/agent-contract";
import type { StartedExecution } from "../../worker/instances/agent-client";
import { type AgentApi, type AgentRunner, installAgentRunnersForTests } from "../../worker/instances/agent-runner";
import { instanceClassOf, parseInstanceName } from "../../worker/shared/objects";

/** How often waitFor reads its condition again, and how many times at most (2.5 s and more: a test times out at 5 s). */
const WAIT_POLL_MS = 10;
const WAIT_MAX_POLLS = 250;
/** How often an open fake stream looks for new records (its reader's own timer: no promise crosses requests). */
const STREAM_POLL_MS = 5;
const encoder = new TextEncoder();

/** One execution the fake agent runs: its records so far, and the streams reading them. */
export class FakeExecution {
  private readonly records: AgentRecord[] = [];
  private broken: Error | undefined;
  /** Times the instance asked the agent to signal this execution's handler. */
  signals = 0;

  constructor(readonly spec: ExecutionSpec) {
    this.records.push({ type: "started", seq: 1, ts: Date.now() });
  }

  get requestId(): string {
    return this.spec.requestId;
  }

  /** True once the end record is written. */
  get ended(): boolean {
    return this.records.some((record) => record.type === "end");
  }

  private get nextSeq(): number {
    return this.records.length + 1;
  }

  /** The handler prints a line. */
  log(line: string, stream: "stdout" | "stderr" = "stdout"): void {
    this.records.push({ type: "log", seq: this.nextSeq, ts: Date.now(), stream, line });
  }

  /** The execution ends with this outcome (the agent's end record). */
  end(outcome: ExecutionOutcome): void {
    this.records.push({ type: "end", seq: this.nextSeq, ts: Date.now(), outcome, durationMs: 1 });
  }

  /** Every open stream fails (the connection to the container is gone). */
  breakStreams(reason: Error): void {
    this.broken = reason;
  }

  /**
   * The NDJSON stream of the records after seq `after`, then of each new one as it is written,
   * until the end record (or a break, or the reader's abort). Polled from the reader's side.
   */
  stream(after: number, signal?: AbortSignal): ReadableStream<Uint8Array> {
    let next = after;
    const broken = () => this.broken;
    const records = this.records;
    let cancelled = false;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (;;) {
          if (cancelled) return;
          const failure = broken();
          if (failure) {
            controller.error(failure);
            return;
          }
          if (signal?.aborted) {
            controller.error(signal.reason);
            return;
          }
          const record = records.find((candidate) => "seq" in candidate && candidate.seq > next);
          if (record && "seq" in record) {
            next = record.seq;
            controller.enqueue(encoder.encode(`${JSON.stringify(record)}\n`));
            if (record.type === "end") controller.close();
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, STREAM_POLL_MS));
        }
      },
      cancel() {
        cancelled = true;
      },
    });
  }
}

/** A fake container with a fake agent: what InstanceContainer drives through its AgentRunner. */
export class FakeAgentRunner implements AgentRunner {
  running = false;
  /** Containers started, and destroyed, by the instance. */
  starts = 0;
  destroys = 0;
  /** The deployment's images (ctx.container.images of the image class); a test may remove one. */
  images: Record<string, string> = {
    "flask-sample": "cloudflare-dev/flask-sample:test",
    "team-image": "cloudflare-dev/team-image:test",
  };
  /** The options of the last start (image and instance type for the image class). */
  lastStartOptions: ContainerStartupOptions | undefined;
  /** Executions the agent was asked to run, by RequestId. */
  readonly executions = new Map<string, FakeExecution>();
  /** Signal numbers sent to the container's init. */
  readonly containerSignals: number[] = [];
  /** Health requests the agent answered (or refused). */
  healthChecks = 0;
  /** The next this many startExecution calls fail as a lost connection would (the container runs on). */
  failStarts = 0;
  private bootId = "";
  private startedAt = 0;
  private stopped: (() => void) | undefined;

  start(options: ContainerStartupOptions): void {
    this.starts += 1;
    this.lastStartOptions = options;
    this.running = true;
    this.bootId = `fake-boot-${this.starts}`;
    this.startedAt = Date.now();
  }

  monitor(): Promise<unknown> {
    return new Promise<void>((resolve) => {
      this.stopped = resolve;
    });
  }

  async destroy(): Promise<void> {
    if (this.running) this.destroys += 1;
    this.stop(new Error("the container was destroyed"));
  }

  signal(signo: number): void {
    this.containerSignals.push(signo);
  }

  /** The container dies by itself: it stops running and every open stream breaks. */
  die(): void {
    this.stop(new Error("network connection lost: the container exited"));
  }

  private stop(reason: Error): void {
    this.running = false;
    for (const execution of this.executions.values()) {
      if (!execution.ended) execution.breakStreams(reason);
    }
    this.stopped?.();
    this.stopped = undefined;
  }

  /** The container's running execution (not ended), if any. */
  private busyWith(): FakeExecution | undefined {
    return [...this.executions.values()].find((execution) => !execution.ended);
  }

  private requireRunning(): void {
    if (!this.running) throw new Error("network connection lost: the container is not running");
  }

  agent(_token: string): AgentApi {
    const health = async (): Promise<AgentHealth> => {
      this.healthChecks += 1;
      this.requireRunning();
      const busy = this.busyWith();
      return {
        ok: true,
        bootId: this.bootId,
        pid: 7,
        parentPid: 1,
        startedAt: this.startedAt,
        uptimeMs: Date.now() - this.startedAt,
        signalsReceived: [],
        busy: busy !== undefined,
        requestId: busy?.requestId ?? null,
        stopping: false,
      };
    };
    return {
      health,
      waitUntilReady: health,
      hasCode: async () => {
        this.requireRunning();
        return true;
      },
      putCode: async () => this.requireRunning(),
      startExecution: async (spec: ExecutionSpec): Promise<StartedExecution> => {
        this.requireRunning();
        if (this.failStarts > 0) {
          this.failStarts -= 1;
          throw new Error("network connection lost: the agent did not answer");
        }
        const existing = this.executions.get(spec.requestId);
        if (existing) return { fresh: false, records: existing.stream(0) };
        const execution = new FakeExecution(spec);
        this.executions.set(spec.requestId, execution);
        return { fresh: true, records: execution.stream(0) };
      },
      openStream: async (requestId: string, after: number, signal: AbortSignal) => {
        this.requireRunning();
        const execution = this.executions.get(requestId);
        if (!execution) throw new Error("agent stream answered 404");
        return execution.stream(after, signal);
      },
      signal: async (requestId: string) => {
        this.requireRunning();
        const execution = this.executions.get(requestId);
        if (!execution || execution.ended) return { delivered: false };
        execution.signals += 1;
        return { delivered: true };
      },
    };
  }
}

/**
 * Installs fake runners for every InstanceContainer (until uninstall): one per instance, made on
 * its first use. `of(name)` gives the fake of the instance of that name.
 */
export function installFakeRunners() {
  const runners = new Map<string, FakeAgentRunner>();
  const runnerOf = (durableObjectId: string): FakeAgentRunner => {
    let runner = runners.get(durableObjectId);
    if (!runner) {
      runner = new FakeAgentRunner();
      runners.set(durableObjectId, runner);
    }
    return runner;
  };
  installAgentRunnersForTests(runnerOf);
  return {
    /** The fake of the instance named `schedulerName#slot` (in the container class its name says). */
    of: (instanceName: string) => {
      const parsed = parseInstanceName(instanceName);
      const binding = instanceClassOf(parsed ? parsed.slot : 0).binding;
      return runnerOf(env[binding].idFromName(instanceName).toString());
    },
    uninstall: () => installAgentRunnersForTests(undefined),
  };
}

/** Waits until the instance's fake agent runs an execution of requestId, and answers it. */
export async function executionOn(runner: FakeAgentRunner, requestId: string): Promise<FakeExecution> {
  await waitFor(() => runner.executions.has(requestId), `the execution of ${requestId} to reach the agent`);
  const execution = runner.executions.get(requestId);
  if (!execution) throw new Error(`no execution of ${requestId}`);
  return execution;
}

/**
 * Waits until `done` holds (polled every WAIT_POLL_MS, counted rather than timed: a test may fake
 * Date), and fails naming what it waited for when it does not within WAIT_MAX_POLLS polls.
 */
export async function waitFor(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let poll = 0; poll < WAIT_MAX_POLLS; poll++) {
    if (await done()) return;
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
  throw new Error(`timed out waiting for ${what}`);
}
