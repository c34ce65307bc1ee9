// Issue 13, "Handlers and runtimes", end to end: a function created with SCF's runtime name
// Nodejs18.15 and a callback-style handler runs on the shipped Node.js engine in a real container,
// keeps reporting Nodejs18.15, and a runtime that is not shipped is refused listing the names.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { RUNTIME_NAMES } from "../../worker/contract/execution-spec";
import { ApiClient } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

const CALLBACK_HANDLER = `
exports.main_handler = (event, context, callback) => {
  if (event.fail) return setTimeout(() => callback(new Error("callback failure " + event.fail)), 50);
  console.log("runtime " + process.env.SCF_RUNTIME);
  setTimeout(() => {
    callback(null, {
      doubled: event.n * 2,
      region: context.tencentcloud_region,
      environment: JSON.parse(context.environment),
      runtime: process.env.SCF_RUNTIME,
      node: process.versions.node.split(".")[0],
    });
  }, 100);
};
`;

describe("a callback-style handler of an SCF Nodejs18.15 function", () => {
  let name: string;
  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "callback", {
      runtime: "Nodejs18.15",
      handler: "index.main_handler",
      files: { "index.js": CALLBACK_HANDLER },
      timeout: 30,
      environment: { TENCENTCLOUD_REGION: "ap-shanghai" },
    });
  });

  it("keeps and reports the runtime name it was created with", async () => {
    const { status, body } = await api.json<{ runtime: string }>(`/v1/namespaces/${NAMESPACE}/functions/${name}`);
    expect(status).toBe(200);
    expect(body.runtime).toBe("Nodejs18.15");
  });

  it("ends FINISHED with the result passed to the callback, run on the shipped Node.js", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { n: 21 });
    const done = await api.waitForEvent(requestId);
    expect(done.status, JSON.stringify(done)).toBe("FINISHED");
    expect(done.result).toEqual({
      doubled: 42,
      region: "ap-shanghai",
      environment: { TENCENTCLOUD_REGION: "ap-shanghai", SCF_NAMESPACE: NAMESPACE },
      runtime: "Nodejs18.15",
      node: "22",
    });
    const lines = (await api.logs(requestId)).map((record) => record.line);
    expect(lines).toContain("runtime Nodejs18.15");
  });

  it("ends FAILED with the error passed to the callback", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { fail: "row 9" });
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(430);
    expect(done.errorMessage).toContain("callback failure row 9");
  });

  it("refuses Php7 with 400 listing every supported runtime name", async () => {
    const created = await api.createFunction(NAMESPACE, {
      name: `php-${Date.now().toString(36)}`,
      runtime: "Php7",
      files: { "index.php": "<?php function main_handler($event, $context) { return 1; }" },
    });
    expect(created.status).toBe(400);
    const message = String((created.body as { error: { message: string } }).error.message);
    for (const runtime of RUNTIME_NAMES) expect(message).toContain(runtime);
  });
});
