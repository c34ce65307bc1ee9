import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipFiles } from "../helpers/zip";
import { putCode, type RunningAgent, startAgent } from "./agent-harness";
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

  it("refuses a package that declares more than 256 MiB unpacked", async () => {
    const zeros = new Uint8Array(260 * MiB);
    await expectRefused(craftZip([{ name: "bomb.bin", data: zeros, method: 8 }]), /over the limit of 268435456/);
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
});
