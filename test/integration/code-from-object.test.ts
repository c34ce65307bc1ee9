// Code packages from an R2 object (issue 13, SCF's Code.CosBucketName/CosObjectName): REST's
// `code: {bucket, key}` and the Tencent actions read a zip from a bucket the namespace owns
// (COS_TRIGGER_BUCKETS: afp-uploads=default in wrangler.toml), check it as an inline package is
// checked (from the object's tail only), and store it in CODE_BUCKET by SHA-256.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  checkObjectPackage,
  MAX_OBJECT_CODE_PACKAGE_BYTES,
  type ObjectCodeSource,
  UNPACK_LIMIT_METADATA,
  unpackLimitOfStored,
} from "../../worker/functions/code-from-object";
import { createFunctionSchema } from "../../worker/functions/model";
import { CODE_SWEEP_GRACE_MS, FunctionRegistry } from "../../worker/functions/registry";
import { FunctionVersions } from "../../worker/functions/versions";
import { codeBucketAccess } from "../../worker/triggers/code-buckets";
import { signedAction } from "../helpers/signed-action";
import { zipBase64, zipFiles } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const AUTH = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const BUCKET = "afp-uploads";
let counter = 0;

function uniqueName(prefix = "obj"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

function rest(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } });
}

function createFunction(name: string, code: Record<string, unknown>, namespace = "default"): Promise<Response> {
  return rest(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code }),
  });
}

const tc = signedAction;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Puts bytes into afp-uploads under a fresh key; answers the key. */
async function upload(bytes: Uint8Array | string): Promise<string> {
  const key = `packages/${crypto.randomUUID()}.zip`;
  await workerEnv.UPLOADS.put(key, bytes);
  return key;
}

/** A package larger than the first tail read (~64 KiB), so the directory is read with a second range. */
function largePackage(): Uint8Array {
  const padding = Array.from({ length: 200 * 1024 }, (_, index) => String.fromCharCode(97 + ((index * 7919) % 26)));
  return zipFiles({ "index.js": "exports.main_handler = async () => 'big';", "padding.txt": padding.join("") });
}

/** The error's code and message (its requestId differs per request). */
async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  const { code, message } = ((await response.json()) as { error: { code: string; message: string } }).error;
  return { code, message };
}

describe("creating a function from an R2 object", () => {
  it("reads the zip from the namespace's bucket and stores the same bytes in CODE_BUCKET by SHA-256", async () => {
    const bytes = largePackage();
    const key = await upload(bytes);
    const name = uniqueName();
    const response = await createFunction(name, { bucket: BUCKET, key });
    expect(response.status, await response.clone().text()).toBe(201);
    const body = (await response.json()) as { codeSha256: string; codeSize: number };
    expect(body.codeSha256).toBe(await sha256Hex(bytes));
    expect(body.codeSize).toBe(bytes.byteLength);
    const stored = await workerEnv.CODE_BUCKET.get(`code/default/${name}/${body.codeSha256}.zip`);
    expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
  });

  it("accepts SCF's Code.CosBucketName and Code.CosObjectName in CreateFunction", async () => {
    const bytes = zipFiles({ "index.js": "exports.main_handler = async () => 'tc';" });
    const key = await upload(bytes);
    const name = uniqueName("tco");
    const created = await tc("CreateFunction", {
      FunctionName: name,
      Runtime: "Nodejs18.15",
      Code: { CosBucketName: BUCKET, CosObjectName: `/${key}`, CosBucketRegion: "ap-guangzhou" },
    });
    expect(created.Error).toBeUndefined();
    const read = await tc("GetFunction", { FunctionName: name });
    expect(read.CodeSize).toBe(bytes.byteLength);
  });
});

describe("updating a function's code from an R2 object", () => {
  it("replaces the code through REST and through UpdateFunctionCode", async () => {
    const name = uniqueName();
    const inline = zipBase64({ "index.js": "exports.main_handler = async () => 1;" });
    expect((await createFunction(name, { zipFile: inline })).status).toBe(201);
    const second = zipFiles({ "index.js": "exports.main_handler = async () => 2;" });
    const updated = await rest(`/v1/namespaces/default/functions/${name}/code`, {
      method: "PUT",
      body: JSON.stringify({ bucket: BUCKET, key: await upload(second) }),
    });
    expect(updated.status, await updated.clone().text()).toBe(200);
    expect(((await updated.json()) as { codeSha256: string }).codeSha256).toBe(await sha256Hex(second));

    const third = largePackage();
    const answer = await tc("UpdateFunctionCode", {
      FunctionName: name,
      CosBucketName: BUCKET,
      CosObjectName: await upload(third),
    });
    expect(answer.Error).toBeUndefined();
    const row = await workerEnv.DB.prepare("SELECT code_sha256 AS sha FROM functions WHERE namespace = ? AND name = ?")
      .bind("default", name)
      .first<{ sha: string }>();
    expect(row?.sha).toBe(await sha256Hex(third));
  });
});

describe("code objects are refused clearly", () => {
  it("refuses another namespace's bucket with the same answer whether the object exists or not", async () => {
    const key = await upload(zipFiles({ "index.js": "exports.main_handler = async () => 1;" }));
    const existing = await createFunction(uniqueName(), { bucket: BUCKET, key }, "obj-stranger");
    const missing = await createFunction(uniqueName(), { bucket: BUCKET, key: "packages/none.zip" }, "obj-stranger");
    expect(existing.status).toBe(400);
    const [one, other] = [await errorOf(existing), await errorOf(missing)];
    expect(one.code).toBe("INVALID_PARAMETER");
    expect(one.message).toContain("COS_TRIGGER_BUCKETS: none");
    expect(other).toEqual(one);
    const count = await workerEnv.DB.prepare(
      "SELECT COUNT(*) AS n FROM functions WHERE namespace = 'obj-stranger'",
    ).first<{ n: number }>();
    expect(count?.n).toBe(0);
  });

  it("refuses the platform's own buckets and unbound ones, in REST and in the Tencent actions", async () => {
    for (const bucket of ["afp-code", "afp-logs", "not-bound-anywhere"]) {
      const response = await createFunction(uniqueName(), { bucket, key: "x.zip" });
      expect(response.status, bucket).toBe(400);
      expect((await errorOf(response)).message).toContain("COS_TRIGGER_BUCKETS: afp-uploads");
    }
    const answer = await tc("CreateFunction", {
      FunctionName: uniqueName("tco"),
      Runtime: "Nodejs22",
      Code: { CosBucketName: "afp-code", CosObjectName: "x.zip" },
    });
    expect(answer.Error?.Code).toBe("InvalidParameterValue");
  });

  it("refuses a missing object as CODE_OBJECT_NOT_FOUND (InvalidParameterValue.CosObjectName)", async () => {
    const response = await createFunction(uniqueName(), { bucket: BUCKET, key: "packages/never-uploaded.zip" });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe("CODE_OBJECT_NOT_FOUND");
    expect(error.message).toContain("packages/never-uploaded.zip");
    const name = uniqueName("tco");
    expect((await createFunction(name, { zipFile: zipBase64({ "index.js": "1" }) })).status).toBe(201);
    const answer = await tc("UpdateFunctionCode", {
      FunctionName: name,
      Code: { CosBucketName: BUCKET, CosObjectName: "packages/never-uploaded.zip" },
    });
    expect(answer.Error?.Code).toBe("InvalidParameterValue.CosObjectName");
  });

  it("refuses an object that is not a zip with the inline package's error", async () => {
    const text = "this is not a zip archive";
    const fromObject = await createFunction(uniqueName(), { bucket: BUCKET, key: await upload(text) });
    const inline = await createFunction(uniqueName(), { zipFile: btoa(text) });
    expect(fromObject.status).toBe(400);
    expect(await errorOf(fromObject)).toEqual(await errorOf(inline));
  });

  it("applies the inline packages' zip checks to an object (an entry escaping the code folder)", async () => {
    const escaping = zipFiles({ "../escape.js": "x", "index.js": "1" });
    const response = await createFunction(uniqueName(), { bucket: BUCKET, key: await upload(escaping) });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("'..' path segments are not allowed");
  });

  it("refuses an object over the size bound, naming it, from its size alone", async () => {
    const key = await upload(largePackage());
    const source: ObjectCodeSource = { bucket: workerEnv.UPLOADS, bucketName: BUCKET, key };
    await expect(checkObjectPackage(source, { maxBytes: 1024 })).rejects.toMatchObject({
      code: "PAYLOAD_TOO_LARGE",
      message: expect.stringContaining("over the limit of 1024 bytes"),
    });
    expect(MAX_OBJECT_CODE_PACKAGE_BYTES).toBe(500 * 1024 * 1024);
    await expect(checkObjectPackage(source, { maxUncompressedBytes: 1024 })).rejects.toMatchObject({
      code: "INVALID_PARAMETER",
      message: expect.stringContaining("more than 1024 bytes"),
    });
  });

  it("refuses code that names both an inline zip and an object, or an object without its key", async () => {
    const zipFile = zipBase64({ "index.js": "1" });
    for (const code of [{ zipFile, bucket: BUCKET, key: "a.zip" }, { bucket: BUCKET }, { key: "a.zip" }, {}]) {
      const response = await createFunction(uniqueName(), code);
      expect(response.status, JSON.stringify(code)).toBe(400);
    }
    const bad = await createFunction(uniqueName(), { bucket: "Not_A_Bucket", key: "a.zip" });
    expect((await errorOf(bad)).message).toContain("code.bucket");
    const long = await createFunction(uniqueName(), { bucket: BUCKET, key: "k".repeat(1025) });
    expect(long.status).toBe(400);
  });

  it("gives a namespace only the buckets COS_TRIGGER_BUCKETS gives it", () => {
    const access = codeBucketAccess({ ...workerEnv, COS_TRIGGER_BUCKETS: "afp-uploads=team-a|team-b" });
    expect(access.bucketFor("team-b", BUCKET, "team-b/a.zip")).toBe(workerEnv.UPLOADS);
    expect(() => access.bucketFor("default", BUCKET, "default/a.zip")).toThrow(/COS_TRIGGER_BUCKETS: none/);
    const open = codeBucketAccess({ ...workerEnv, COS_TRIGGER_BUCKETS: "afp-uploads=*,afp-code=*" });
    expect(open.bucketFor("anyone", BUCKET, "anyone/a.zip")).toBe(workerEnv.UPLOADS);
    expect(() => open.bucketFor("anyone", "afp-code", "anyone/a.zip")).toThrow(
      /COS_TRIGGER_BUCKETS: afp-uploads \(keys under anyone\/\)/,
    );
  });

  it("lets a namespace read a shared bucket only under its own key prefix, a bucket of its own anywhere", () => {
    const shared = codeBucketAccess({ ...workerEnv, COS_TRIGGER_BUCKETS: "afp-uploads=team-a|team-b" });
    const refusal = (namespace: string, bucket: string, key: string) => {
      try {
        shared.bucketFor(namespace, bucket, key);
      } catch (error) {
        return (error as Error).message;
      }
      return "read";
    };
    expect(refusal("team-a", BUCKET, "team-a/pkg.zip")).toBe("read");
    // Another namespace's objects, or objects of no namespace, are refused as an unknown bucket is.
    const unknown = refusal("team-a", "not-bound-anywhere", "team-a/pkg.zip");
    expect(unknown).toContain("keys under team-a/");
    for (const key of ["team-b/pkg.zip", "packages/pkg.zip", "team-a-other/pkg.zip"]) {
      expect(refusal("team-a", BUCKET, key), key).toBe(unknown);
    }
    const everyone = codeBucketAccess({ ...workerEnv, COS_TRIGGER_BUCKETS: "afp-uploads=*" });
    expect(() => everyone.bucketFor("team-a", BUCKET, "team-b/pkg.zip")).toThrow(/keys under team-a\//);
    const single = codeBucketAccess({ ...workerEnv, COS_TRIGGER_BUCKETS: "afp-uploads=team-a" });
    expect(single.bucketFor("team-a", BUCKET, "anything/pkg.zip")).toBe(workerEnv.UPLOADS);
  });

  it("refuses a key of more than 1,024 UTF-8 bytes as a bad parameter, never a 500", async () => {
    const key = "é".repeat(600); // 600 characters, 1,200 bytes
    const response = await createFunction(uniqueName(), { bucket: BUCKET, key });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("1024 bytes");
    const answer = await tc("CreateFunction", {
      FunctionName: uniqueName("tco"),
      Runtime: "Nodejs22",
      Code: { CosBucketName: BUCKET, CosObjectName: key },
    });
    expect(answer.Error?.Code).toMatch(/^InvalidParameterValue/);
  });
});

describe("storing code packages from objects", () => {
  it("leaves no function when the copy into the code bucket fails, answers a platform error, and the retry works", async () => {
    const bytes = zipFiles({ "index.js": "exports.main_handler = async () => 'copy';" });
    const key = await upload(bytes);
    const name = uniqueName("copy");
    const failing = new Proxy(workerEnv.CODE_BUCKET, {
      get(target, property) {
        if (property === "put") return () => Promise.reject(new Error("R2 internal error (10001)"));
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const registry = new FunctionRegistry({ ...workerEnv, CODE_BUCKET: failing }, codeBucketAccess(workerEnv));
    const input = createFunctionSchema.parse({ name, runtime: "Nodejs22", code: { bucket: BUCKET, key } });
    await expect(registry.create("default", input)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    const row = await workerEnv.DB.prepare("SELECT 1 FROM functions WHERE namespace = 'default' AND name = ?")
      .bind(name)
      .first();
    expect(row).toBeNull();
    const retried = await createFunction(name, { bucket: BUCKET, key });
    expect(retried.status, await retried.clone().text()).toBe(201);
  });

  it("refuses a taken name before reading the object", async () => {
    const name = uniqueName("taken");
    expect((await createFunction(name, { zipFile: zipBase64({ "index.js": "1" }) })).status).toBe(201);
    const again = await createFunction(name, { bucket: BUCKET, key: "packages/never-uploaded.zip" });
    expect(again.status).toBe(409);
    expect((await errorOf(again)).code).toBe("FUNCTION_EXISTS");
  });

  it("names each stored package's unpack limit: 256 MiB inline, 1 GiB from an object", async () => {
    const inlineName = uniqueName("limit");
    const inline = await createFunction(inlineName, { zipFile: zipBase64({ "index.js": "1" }) });
    const inlineSha = ((await inline.json()) as { codeSha256: string }).codeSha256;
    const inlineObject = await workerEnv.CODE_BUCKET.head(`code/default/${inlineName}/${inlineSha}.zip`);
    expect(inlineObject?.customMetadata?.[UNPACK_LIMIT_METADATA]).toBe(String(256 * 1024 * 1024));
    const objectName = uniqueName("limit");
    const fromObject = await createFunction(objectName, { bucket: BUCKET, key: await upload(largePackage()) });
    const objectSha = ((await fromObject.json()) as { codeSha256: string }).codeSha256;
    const stored = await workerEnv.CODE_BUCKET.head(`code/default/${objectName}/${objectSha}.zip`);
    expect(stored?.customMetadata?.[UNPACK_LIMIT_METADATA]).toBe(String(1024 * 1024 * 1024));
    expect(unpackLimitOfStored({ size: 10 })).toBe(256 * 1024 * 1024);
    expect(unpackLimitOfStored({ size: 30 * 1024 * 1024 })).toBe(1024 * 1024 * 1024);
  });

  it("deletes superseded packages that no published version uses, once they are older than the grace", async () => {
    const name = uniqueName("sweep");
    const packageKeys = async () =>
      (await workerEnv.CODE_BUCKET.list({ prefix: `code/default/${name}/` })).objects
        .map((object) => object.key)
        .sort();
    const put = async (files: Record<string, string>) => {
      const response = await rest(`/v1/namespaces/default/functions/${name}/code`, {
        method: "PUT",
        body: JSON.stringify({ bucket: BUCKET, key: await upload(zipFiles(files)) }),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { codeKey?: string; codeSha256: string }).codeSha256;
    };
    const keyOf = (sha: string) => `code/default/${name}/${sha}.zip`;
    const first = await createFunction(name, { zipFile: zipBase64({ "index.js": "1" }) });
    const firstSha = ((await first.json()) as { codeSha256: string }).codeSha256;
    await new FunctionVersions(workerEnv).publish("default", name, { description: "" });
    const second = await put({ "index.js": "2" });
    const third = await put({ "index.js": "3" });
    // Within the grace nothing goes (a concurrent update may not have written its row yet).
    expect(await packageKeys()).toEqual([keyOf(firstSha), keyOf(second), keyOf(third)].sort());
    const registry = new FunctionRegistry(workerEnv);
    expect(await registry.sweepCode("default", name, 0)).toBe(1);
    // The published version's package and $LATEST's stay; the unused second goes.
    expect(await packageKeys()).toEqual([keyOf(firstSha), keyOf(third)].sort());
    expect(CODE_SWEEP_GRACE_MS).toBe(15 * 60_000);
  });
});
