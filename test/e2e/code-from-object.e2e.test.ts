// Code packages from an R2 object end to end (issue 13, SCF's Code.CosBucketName/CosObjectName):
// a zip is uploaded into afp-uploads as a user would locally (`wrangler r2 object put --local`
// into the platform's state folder), the function is created from it (the official SDK, and REST),
// and it runs in a real container. The second package carries ~60 MB of incompressible padding,
// so the object is read, stored and shipped to the container streaming.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";
import { craftZip } from "../agent/zip-craft";
import { ApiClient, TEST_CREDENTIALS, uniqueName } from "../helpers/api-client";
import { scfClient } from "../helpers/scf-client";

const baseUrl = inject("baseUrl");
const stateDir = inject("stateDir");
const api = new ApiClient(baseUrl);
const run = promisify(execFile);
/** The bucket wrangler.toml binds as UPLOADS and COS_TRIGGER_BUCKETS gives namespace default. */
const BUCKET = "afp-uploads";
/** Incompressible padding of the large package (bytes): well past the 20 MiB inline limit. */
const PADDING_BYTES = 60 * 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), "afp-code-object-"));
const encoder = new TextEncoder();

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Puts a file into the local afp-uploads bucket, as the README tells users to. */
async function uploadLocally(bytes: Uint8Array): Promise<string> {
  const key = `packages/${uniqueName("pkg")}.zip`;
  const file = join(scratch, key.replaceAll("/", "_"));
  writeFileSync(file, bytes);
  await run(
    "npx",
    [
      "wrangler",
      "r2",
      "object",
      "put",
      `${BUCKET}/${key}`,
      "--file",
      file,
      "--local",
      "--persist-to",
      join(stateDir, "wrangler"),
    ],
    { timeout: 120_000, maxBuffer: 1024 * 1024 },
  );
  return key;
}

describe("code packages from an R2 object", () => {
  it("creates a function from an uploaded zip through the official SDK and runs it", async () => {
    const handler = "exports.main_handler = async (event) => ({ fromObject: true, got: event.n });";
    const key = await uploadLocally(craftZip([{ name: "index.js", data: encoder.encode(handler) }]));
    const sdk = scfClient(baseUrl, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey);
    const name = uniqueName("cobj");
    await sdk.CreateFunction({
      FunctionName: name,
      Namespace: "default",
      Runtime: "Nodejs18.15",
      Handler: "index.main_handler",
      Code: { CosBucketName: BUCKET, CosObjectName: key },
      Timeout: 30,
      AsyncRunEnable: "TRUE",
    });
    const requestId = await api.invoke("default", name, { n: 7 });
    const event = await api.waitForEvent(requestId);
    expect(event.status, JSON.stringify(event)).toBe("FINISHED");
    expect(event.result).toEqual({ fromObject: true, got: 7 });
  });

  it("streams a ~60 MB package from the object to the container and runs it", async () => {
    const handler = `const { statSync } = require("node:fs");
exports.main_handler = async () => ({ padding: statSync(__dirname + "/padding.bin").size });`;
    const zip = craftZip([
      { name: "index.js", data: encoder.encode(handler) },
      { name: "padding.bin", data: randomBytes(PADDING_BYTES) },
    ]);
    const key = await uploadLocally(zip);
    const name = uniqueName("cbig");
    const created = await api.json<{ codeSize: number }>("/v1/namespaces/default/functions", {
      method: "POST",
      body: JSON.stringify({ name, runtime: "Nodejs22", timeout: 60, code: { bucket: BUCKET, key } }),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.codeSize).toBe(zip.byteLength);
    const requestId = await api.invoke("default", name, {});
    const event = await api.waitForEvent(requestId, undefined, 110_000);
    expect(event.status, JSON.stringify(event)).toBe("FINISHED");
    expect(event.result).toEqual({ padding: PADDING_BYTES });
  }, 180_000);
});
