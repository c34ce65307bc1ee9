import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipFiles } from "../helpers/zip";
import {
  executionSpec,
  putCode,
  putFiles,
  type RunningAgent,
  runExecution,
  sha256Of,
  startAgent,
} from "./agent-harness";
import { craftZip } from "./zip-craft";

const MiB = 1024 * 1024;
const text = (value: string) => new TextEncoder().encode(value);

describe("code package extraction", () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    agent = await startAgent();
  });
  afterAll(async () => {
    await agent.stop();
  });

  /** Uploads, expects a 400 with an error matching pattern, and checks nothing was left behind. */
  async function expectRefused(zip: Uint8Array, pattern: RegExp): Promise<void> {
    const before = readdirSync(agent.codeRoot);
    const answer = await putCode(agent, zip);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(pattern);
    expect(readdirSync(agent.codeRoot)).toEqual(before);
    expect(readdirSync(agent.sandbox)).toEqual(["code"]);
  }

  it("extracts a good package into root-owned read-only files (0644) and folders (0755)", async () => {
    const answer = await putCode(agent, zipFiles({ "index.js": "1", "lib/util.js": "2" }));
    expect(answer.status).toBe(201);
    const folder = join(agent.codeRoot, answer.sha256);
    expect(statSync(join(folder, "index.js")).mode & 0o777).toBe(0o644);
    expect(statSync(join(folder, "lib")).mode & 0o777).toBe(0o755);
    expect(statSync(folder).uid).toBe(process.getuid?.());
  });

  it("refuses an entry with a .. segment or an absolute path", async () => {
    await expectRefused(craftZip([{ name: "../escaped.js", data: text("x") }]), /\.\. segment/);
    await expectRefused(craftZip([{ name: "a/../../escaped.js", data: text("x") }]), /\.\. segment/);
    await expectRefused(craftZip([{ name: "/tmp/escaped.js", data: text("x") }]), /absolute path/);
  });

  it("refuses a symbolic link or a device entry", async () => {
    await expectRefused(
      craftZip([{ name: "link", data: text("/etc/passwd"), unixMode: 0o120777 }]),
      /not a regular file/,
    );
    await expectRefused(craftZip([{ name: "dev", data: text(""), unixMode: 0o020666 }]), /not a regular file/);
  });

  it("refuses more than 10,000 entries", async () => {
    const entries = Array.from({ length: 10_001 }, (_, n) => ({ name: `f${n}`, data: text("") }));
    await expectRefused(craftZip(entries), /10001 entries, over the limit of 10000/);
  });

  it("refuses a package that declares more than 1 GiB unpacked", async () => {
    // The declared size is refused before anything is inflated: a few real bytes suffice.
    const entry = { name: "bomb.bin", data: new Uint8Array(4 * MiB), method: 8 as const, declaredSize: 1025 * MiB };
    await expectRefused(craftZip([entry]), /over the limit of 1073741824/);
  });

  it("refuses a package whose entries lie about their size, and writes no more than they claim", async () => {
    // Declared 1 KiB each, 40 MiB of zeros each when inflated: the headers do not hold.
    const zeros = new Uint8Array(40 * MiB);
    const entries = Array.from({ length: 8 }, (_, n) => ({
      name: `lie${n}.bin`,
      data: zeros,
      method: 8 as const,
      declaredSize: 1024,
    }));
    await expectRefused(craftZip(entries), /not a valid zip/);
  });

  it("refuses bytes that are not a zip", async () => {
    await expectRefused(text("not a zip at all"), /not a valid zip/);
  });

  /** PUT /code naming the package's unpack limit, as the Worker does. */
  async function putWithLimit(zip: Uint8Array, limit: number) {
    const response = await agent.request(`/code/${sha256Of(zip)}`, {
      method: "PUT",
      headers: { "x-afp-max-unpacked-bytes": String(limit) },
      body: new Uint8Array(zip),
    });
    return { status: response.status, body: (await response.json()) as { error?: string } };
  }

  it("holds a package to the unpack limit the Worker names (an inline package's 256 MiB), never above its own", async () => {
    const entry = { name: "big.bin", data: new Uint8Array(2 * MiB) };
    const answer = await putWithLimit(craftZip([entry]), MiB);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/over the limit of 1048576/);
    // A limit above the agent's own 1 GiB is held to 1 GiB.
    const bomb = { name: "bomb.bin", data: new Uint8Array(4 * MiB), method: 8 as const, declaredSize: 1025 * MiB };
    const capped = await putWithLimit(craftZip([bomb]), 4096 * MiB);
    expect(capped.body.error).toMatch(/over the limit of 1073741824/);
    expect((await putWithLimit(craftZip([entry]), 4 * MiB)).status).toBe(201);
  });
});

describe("the code package cache's disk budget", () => {
  it("keeps the two most recently used packages, and the one a warm handler process runs", async () => {
    const agent = await startAgent();
    try {
      const inUse = await putFiles(agent, { "index.js": "exports.main_handler = async () => 'in use';" });
      const { end } = await runExecution(agent, executionSpec(inUse));
      expect(end.type).toBe("end");
      const shipped: string[] = [];
      for (let n = 0; n < 4; n += 1) shipped.push(await putFiles(agent, { "index.js": `module.exports = ${n};` }));
      const cached = readdirSync(agent.codeRoot).filter((name) => /^[0-9a-f]{64}$/.test(name));
      expect(cached.sort()).toEqual([inUse, shipped[2], shipped[3]].sort());
      // An evicted package is no longer announced as cached: the instance ships it again.
      expect((await agent.request(`/code/${shipped[0]}`)).status).toBe(404);
      expect(existsSync(join(agent.codeRoot, inUse))).toBe(true);
    } finally {
      await agent.stop();
    }
  });

  it("refuses a package the disk has no room for with 507, naming the space", async () => {
    const agent = await startAgent({ env: { AGENT_CODE_DISK_RESERVE_BYTES: String(2 ** 60) } });
    try {
      const answer = await putCode(agent, zipFiles({ "index.js": "1" }));
      expect(answer.status).toBe(507);
      expect(answer.body.error).toMatch(/not enough disk space in the container for the code package: \d+ bytes free/);
      expect(readdirSync(agent.codeRoot)).toEqual([]);
    } finally {
      await agent.stop();
    }
  });
});
