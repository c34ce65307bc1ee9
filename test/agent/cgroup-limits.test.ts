import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AGENT_DIR } from "./agent-harness";

interface CgroupLimitsModule {
  cgroupLimitsApplied(root?: string): boolean;
  waitForCgroupLimits(required: boolean, waitMs: number, check: () => boolean): Promise<boolean>;
  oomKillCount(root?: string): number | undefined;
}

const limits = (await import(join(AGENT_DIR, "cgroup-limits.mjs"))) as CgroupLimitsModule;

/** A fake cgroup v1 tree with the given memory limit and pids cap. */
function cgroupV1(memory: string, pids: string): string {
  const root = mkdtempSync(join(tmpdir(), "afp-cgroup-"));
  mkdirSync(join(root, "memory"));
  mkdirSync(join(root, "pids"));
  writeFileSync(join(root, "memory", "memory.limit_in_bytes"), `${memory}\n`);
  writeFileSync(join(root, "pids", "pids.max"), `${pids}\n`);
  return root;
}

describe("the container's cgroup caps before a handler runs", () => {
  it("sees caps only when both memory and processes are limited (cgroup v1 and v2)", () => {
    expect(limits.cgroupLimitsApplied(cgroupV1("402653184", "512"))).toBe(true);
    expect(limits.cgroupLimitsApplied(cgroupV1("9223372036854771712", "512"))).toBe(false);
    expect(limits.cgroupLimitsApplied(cgroupV1("402653184", "max"))).toBe(false);
    const v2 = mkdtempSync(join(tmpdir(), "afp-cgroup-"));
    writeFileSync(join(v2, "memory.max"), "max\n");
    writeFileSync(join(v2, "pids.max"), "512\n");
    expect(limits.cgroupLimitsApplied(v2)).toBe(false);
    writeFileSync(join(v2, "memory.max"), "402653184\n");
    expect(limits.cgroupLimitsApplied(v2)).toBe(true);
    expect(limits.cgroupLimitsApplied(mkdtempSync(join(tmpdir(), "afp-cgroup-")))).toBe(false);
  });

  it("waits for caps applied a moment after start, and refuses when they never come", async () => {
    let checks = 0;
    expect(await limits.waitForCgroupLimits(true, 2_000, () => ++checks >= 3)).toBe(true);
    expect(await limits.waitForCgroupLimits(true, 200, () => false)).toBe(false);
    expect(await limits.waitForCgroupLimits(false, 200, () => false)).toBe(true);
  });
});

describe("the container's OOM kill count (434 for a process the kernel killed)", () => {
  it("reads oom_kill from cgroup v2's memory.events, else v1's memory.oom_control, else nothing", () => {
    const v2 = mkdtempSync(join(tmpdir(), "afp-cgroup-"));
    writeFileSync(join(v2, "memory.events"), "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n");
    expect(limits.oomKillCount(v2)).toBe(2);
    const v1 = mkdtempSync(join(tmpdir(), "afp-cgroup-"));
    mkdirSync(join(v1, "memory"));
    writeFileSync(join(v1, "memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");
    expect(limits.oomKillCount(v1)).toBe(5);
    expect(limits.oomKillCount(mkdtempSync(join(tmpdir(), "afp-cgroup-")))).toBeUndefined();
  });
});
