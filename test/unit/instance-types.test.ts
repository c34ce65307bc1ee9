import { describe, expect, it } from "vitest";
import { wrongSizeRefusal } from "../../worker/events/async-event-object";
import { logLimitClampLine } from "../../worker/events/event-log";
import { type EventState, publicEvent, transition } from "../../worker/events/event-machine";
import {
  AGENT_OVERHEAD_MB,
  DEFAULT_CONTAINER_SIZES,
  defaultLogLimitMb,
  defaultMaxConcurrency,
  effectiveLogLimitMb,
  functionMaxConcurrency,
  INSTANCE_TYPES,
  LOG_LIMIT_CAP_MB,
  logLimitProblem,
  maxConcurrencyProblem,
  parseContainerSizes,
  sizeForMemory,
} from "../../worker/functions/instance-types";
import { MAX_MEMORY_MB, MIN_MEMORY_MB } from "../../worker/functions/model";
import { clampedSpecOf } from "../../worker/instances/instance-execution";
import {
  classOfSlot,
  INSTANCE_CLASSES,
  instanceName,
  instanceTypeOfName,
  parseInstanceName,
  SLOT_CLASS_STRIDE,
  slotInClass,
} from "../../worker/shared/objects";
import { functionSnapshot } from "../helpers/function-snapshot";

const defaults = parseContainerSizes(undefined).sizes;
const typeOf = (memoryMb: number, sizes = defaults) => sizeForMemory(memoryMb, sizes).instanceType;

describe("compute sizes: memorySize to container class", () => {
  it("maps the default table: up to 512 MB basic, to 1536 standard-1, to 3072 standard-2", () => {
    expect(parseContainerSizes(undefined)).toEqual(parseContainerSizes(DEFAULT_CONTAINER_SIZES));
    expect([MIN_MEMORY_MB, 128, 512].map((mb) => typeOf(mb))).toEqual(["basic", "basic", "basic"]);
    expect([513, 1024, 1536].map((mb) => typeOf(mb))).toEqual(["standard-1", "standard-1", "standard-1"]);
    expect([1537, 2048, MAX_MEMORY_MB].map((mb) => typeOf(mb))).toEqual(["standard-2", "standard-2", "standard-2"]);
  });

  it("gives every size room for its largest memorySize plus the agent in its instance type", () => {
    for (const size of defaults) {
      expect(size.maxMemoryMb + AGENT_OVERHEAD_MB).toBeLessThanOrEqual(INSTANCE_TYPES[size.instanceType].memoryMib);
      expect(INSTANCE_CLASSES[size.classIndex]?.instanceType).toBe(size.instanceType);
    }
  });

  it("reads a valid CONTAINER_SIZES, spaces allowed, fewer classes allowed", () => {
    const reading = parseContainerSizes(" basic:256 , standard-2:3072 ");
    expect(reading.problem).toBeUndefined();
    expect(reading.sizes.map((size) => [size.instanceType, size.maxMemoryMb])).toEqual([
      ["basic", 256],
      ["standard-2", 3072],
    ]);
    expect(typeOf(512, reading.sizes)).toBe("standard-2");
    expect(parseContainerSizes("standard-1:3072").sizes.map((size) => size.instanceType)).toEqual(["standard-1"]);
  });

  it("runs functions of up to 128 MB on lite when CONTAINER_SIZES names it (the default never does)", () => {
    const reading = parseContainerSizes("lite:128,basic:512,standard-1:1536,standard-2:3072");
    expect(reading.problem).toBeUndefined();
    expect([MIN_MEMORY_MB, 128].map((mb) => typeOf(mb, reading.sizes))).toEqual(["lite", "lite"]);
    expect([129, 512].map((mb) => typeOf(mb, reading.sizes))).toEqual(["basic", "basic"]);
    const lite = reading.sizes[0];
    expect(lite && INSTANCE_CLASSES[lite.classIndex]?.className).toBe("InstanceContainerLite");
    expect(lite && lite.maxMemoryMb + AGENT_OVERHEAD_MB).toBeLessThanOrEqual(INSTANCE_TYPES.lite.memoryMib);
    expect(defaults.map((size) => size.instanceType)).not.toContain("lite");
  });

  it.each([
    ["garbage", "not <instance type>"],
    ["basic:512,standard-1:1536", "at least 3072"],
    ["standard-3:3072", "no container class"],
    ["image:128,standard-2:3072", "no container class"],
    ["lite:200,basic:512,standard-2:3072", "does not fit lite"],
    ["basic:1024,standard-2:3072", "does not fit basic"],
    ["standard-1:1536,basic:512,standard-2:3072", "ascend"],
    ["basic:512,basic:600,standard-2:3072", "named twice"],
    ["basic:32,standard-2:3072", "below the smallest"],
    ["basic:0512,standard-2:3072", "not <instance type>"],
    [`basic:512,${"x".repeat(300)}`, "longer than"],
  ])("refuses CONTAINER_SIZES %j (the default applies)", (text, problem) => {
    const reading = parseContainerSizes(text);
    expect(reading.problem).toContain(problem);
    expect(reading.sizes).toEqual(defaults);
  });
});

describe("instance names carry the container class", () => {
  it("keeps basic names as they were and suffixes the others with their instance type", () => {
    expect(instanceName("ns/fn", 0)).toBe("ns/fn#0");
    expect(instanceName("ns/fn", 7)).toBe("ns/fn#7");
    expect(instanceName("ns/fn", slotInClass(1, 3))).toBe("ns/fn#3@standard-1");
    expect(instanceName("ns/fn", slotInClass(2, 0))).toBe("ns/fn#0@standard-2");
    expect(instanceName("ns/fn", slotInClass(4, 2))).toBe("ns/fn#2@lite");
  });

  it("reads every name back to its slot and class", () => {
    for (const slot of [0, 5, slotInClass(1, 0), slotInClass(1, 999), slotInClass(2, 42), slotInClass(4, 7)]) {
      const name = instanceName("default/my-fn", slot);
      expect(parseInstanceName(name)).toEqual({ schedulerName: "default/my-fn", slot });
      expect(instanceTypeOfName(name)).toBe(INSTANCE_CLASSES[classOfSlot(slot)]?.instanceType);
    }
  });

  it("refuses names that are no instance slot, and reads them as the first class", () => {
    for (const name of ["health-probe", "ns/fn#", "ns/fn#01", "ns/fn#1@basic", "ns/fn#1@standard-9", "ns/fn#1234567"]) {
      expect(parseInstanceName(name)).toBeUndefined();
      expect(instanceTypeOfName(name)).toBe("basic");
    }
    expect(classOfSlot(SLOT_CLASS_STRIDE * 99)).toBe(0);
  });
});

describe("log limit against the size's disk", () => {
  it("lets basic keep 1 GiB and refuses more, naming both settings and the way out", () => {
    expect(logLimitProblem(LOG_LIMIT_CAP_MB.basic, 128, defaults)).toBeUndefined();
    const problem = logLimitProblem(2048, 128, defaults);
    expect(problem).toContain("logLimitMb: 2048 MiB");
    expect(problem).toContain("memorySize 128 MB");
    expect(problem).toContain("basic");
    expect(problem).toContain("raise memorySize above 512 MB");
    expect(logLimitProblem(3072, 1024, defaults)).toBeUndefined();
  });

  it("lets lite keep 512 MiB and clamps a function of the default 1 GiB there", () => {
    const withLite = parseContainerSizes("lite:128,basic:512,standard-1:1536,standard-2:3072").sizes;
    expect(logLimitProblem(512, 128, withLite)).toBeUndefined();
    expect(logLimitProblem(1024, 128, withLite)).toContain(
      "raise memorySize above 128 MB (basic keeps up to 1024 MiB)",
    );
    expect(effectiveLogLimitMb(undefined, "lite")).toEqual({ limitMb: 512, clamped: true, configuredMb: 1024 });
    // A function created without logLimitMb gets what its size keeps: 512 on lite, 1024 elsewhere.
    expect(defaultLogLimitMb(128, withLite)).toBe(512);
    expect(defaultLogLimitMb(129, withLite)).toBe(1024);
    expect(defaultLogLimitMb(128, defaults)).toBe(1024);
  });
});

describe("concurrency knobs", () => {
  const env = (max?: string, def?: string) =>
    ({ FUNCTION_MAX_CONCURRENCY: max, DEFAULT_MAX_CONCURRENCY: def }) as unknown as Env;

  it("defaults to 50 and 10, reads valid values", () => {
    expect(functionMaxConcurrency(env())).toBe(50);
    expect(defaultMaxConcurrency(env())).toBe(10);
    expect(functionMaxConcurrency(env("200"))).toBe(200);
    expect(defaultMaxConcurrency(env("200", "20"))).toBe(20);
  });

  it("falls back to the default on malformed or out-of-range values", () => {
    for (const bad of ["0", "-1", "1001", "abc", "5.5", ""]) expect(functionMaxConcurrency(env(bad))).toBe(50);
    expect(defaultMaxConcurrency(env("50", "nope"))).toBe(10);
  });

  it("never defaults above the bound", () => {
    expect(defaultMaxConcurrency(env("4", "10"))).toBe(4);
  });

  it("refuses a maxConcurrency above the bound, naming the configured bound", () => {
    expect(maxConcurrencyProblem(50, env())).toBeUndefined();
    expect(maxConcurrencyProblem(51, env())).toBe(
      "maxConcurrency: at most 50 on this platform (FUNCTION_MAX_CONCURRENCY), got 51",
    );
    expect(maxConcurrencyProblem(6, env("5"))).toContain("at most 5");
  });
});

/** A queued event of default/sized with the snapshot's overrides. */
function queuedEvent(overrides: Parameters<typeof functionSnapshot>[2] = {}): EventState {
  return {
    requestId: "7f1d2a1e-0000-4000-8000-000000000013",
    namespace: "default",
    functionName: "sized",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "sized", overrides),
    phase: "queued",
    version: 1,
    invokedAt: 1_000,
  };
}

/** The event after a claim by instanceId. */
function claimedBy(state: EventState, instanceId: string): EventState {
  const result = transition(state, { type: "claim", instanceId, at: 2_000 });
  if (!result.ok) throw new Error(result.message);
  return result.value.state;
}

describe("the instance type an event reports", () => {
  it("is recorded at the claim, from the claiming instance's container class", () => {
    const large = claimedBy(queuedEvent({ memoryMb: 2048 }), "default/sized#0@standard-2");
    expect(large.instanceType).toBe("standard-2");
    expect(publicEvent(large).instanceType).toBe("standard-2");
    expect(publicEvent(claimedBy(queuedEvent(), "default/sized#3")).instanceType).toBe("basic");
  });

  it("is null for an event claimed before compute sizes (its class then ran another type), not guessed from the id", () => {
    const old: EventState = { ...queuedEvent(), phase: "finished", instanceId: "default/sized#0", claimedAt: 2_000 };
    expect(publicEvent(old).instanceType).toBeNull();
    expect(publicEvent(queuedEvent()).instanceType).toBeNull();
  });
});

describe("a claim from a slot of the wrong container class", () => {
  it("is refused with the event's memorySize, and allowed from the class its memorySize runs in", () => {
    expect(wrongSizeRefusal("default/sized#0", 128, defaults)).toBeUndefined();
    expect(wrongSizeRefusal("default/sized#4@standard-2", 3072, defaults)).toBeUndefined();
    expect(wrongSizeRefusal("default/sized#0", 3072, defaults)).toMatchObject({
      ok: false,
      code: "WRONG_SIZE",
      memoryMb: 3072,
      message: expect.stringContaining("runs in standard-2, not in basic"),
    });
    expect(wrongSizeRefusal("default/sized#0@standard-2", 128, defaults)).toMatchObject({ code: "WRONG_SIZE" });
  });
});

describe("the log limit of an execution in its container class", () => {
  const claim = (logLimitMb: number | undefined, memoryMb = 128) => ({
    payload: "{}",
    requestId: "7f1d2a1e-0000-4000-8000-000000000013",
    namespace: "default",
    function: functionSnapshot("default", "sized", { memoryMb, ...(logLimitMb ? { logLimitMb } : {}) }),
  });
  const MIB = 1024 * 1024;

  it("clamps a logLimitMb above the class's disk cap (accepted under other sizes) to that cap", () => {
    expect(effectiveLogLimitMb(3072, "basic")).toEqual({ limitMb: 1024, clamped: true, configuredMb: 3072 });
    expect(effectiveLogLimitMb(undefined, "basic")).toEqual({ limitMb: 1024, clamped: false, configuredMb: 1024 });
    expect(clampedSpecOf(claim(3072), "basic").logLimitBytes).toBe(1024 * MIB);
    expect(clampedSpecOf(claim(2048), "standard-1").logLimitBytes).toBe(2048 * MIB);
    expect(clampedSpecOf(claim(3072, 2048), "standard-2").logLimitBytes).toBe(3072 * MIB);
    expect(clampedSpecOf(claim(16), "basic").logLimitBytes).toBe(16 * MIB);
  });

  it("says so in a [PLATFORM] line after START, only when it clamps and the class is recorded", () => {
    const clamped = claimedBy(queuedEvent({ logLimitMb: 3072 }), "default/sized#0");
    expect(logLimitClampLine(clamped)).toBe(
      "[PLATFORM] Log limit: logLimitMb 3072 MiB does not fit the disk of instance type basic (memorySize 128 MB); this execution keeps at most 1024 MiB of log",
    );
    expect(logLimitClampLine(claimedBy(queuedEvent({ logLimitMb: 1024 }), "default/sized#0"))).toBeUndefined();
    const fits = claimedBy(queuedEvent({ logLimitMb: 3072, memoryMb: 1024 }), "default/sized#0@standard-1");
    expect(logLimitClampLine(fits)).toBeUndefined();
    const old: EventState = { ...queuedEvent({ logLimitMb: 3072 }), instanceId: "default/sized#0" };
    expect(logLimitClampLine(old)).toBeUndefined();
  });
});
