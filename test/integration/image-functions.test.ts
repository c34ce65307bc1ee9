// Image functions (issue 13, SCF "image deployment"): created through REST (`image`) and Tencent
// (Code.ImageConfig), shown by GetFunction/ListFunctions, refused when the image is unknown or of
// another namespace (the same answer), malformed or oversized; code and image swap through the code
// update, versions freeze the image; and an image function's event runs in the image class with
// the image's start options and an image spec (fake runners: the Workers pool starts no container).
// CONTAINER_IMAGES here (vitest.config.ts): "flask-sample=*,team-image=team-a".
import { env, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImageExecutionSpec } from "../../worker/contract/execution-spec";
import { MAX_IMAGE_COMMAND_ITEM_CHARS, MAX_IMAGE_COMMAND_ITEMS } from "../../worker/contract/execution-spec";
import {
  imageNameOfUri,
  MAX_IMAGE_URI_CHARS,
  MAX_TENCENT_ARGS_CHARS,
  MAX_TENCENT_COMMAND_CHARS,
  parseContainerImages,
} from "../../worker/functions/images";
import type { FunctionSnapshot } from "../../worker/functions/model";
import {
  eventStub,
  instanceName,
  instanceStub,
  SLOT_CLASS_STRIDE,
  schedulerName,
  schedulerStub,
} from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventLogLines, eventView, uniqueFunction } from "../helpers/fake-dispatch";
import { functionSnapshot } from "../helpers/function-snapshot";
import { emptyPlatformCapacity } from "../helpers/platform-capacity";
import { signedAction } from "../helpers/signed-action";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const AUTH = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
const FLASK_URI = "ccr.ccs.tencentyun.com/my-team/flask-sample:v1";
/** The image class's slot numbers start here (shared/objects.ts IMAGE_CLASS_INDEX 3). */
const IMAGE_SLOT = 3 * SLOT_CLASS_STRIDE;

let counter = 0;
function uniqueName(prefix = "img"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } });
}

async function create(body: Record<string, unknown>, namespace = "default"): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions`, { method: "POST", body: JSON.stringify(body) });
}

async function createdJson(body: Record<string, unknown>, namespace = "default"): Promise<Record<string, unknown>> {
  const response = await create(body, namespace);
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as Record<string, unknown>;
}

async function refusal(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

/** A Tencent action, signed with the dev key (each call its own timestamp). */
const tc = signedAction;

async function tcOk(action: string, payload: Record<string, unknown>) {
  const answer = await tc(action, payload);
  expect(answer.Error, `${action} ${JSON.stringify(answer.Error)}`).toBeUndefined();
  return answer;
}

/** The Tencent error code of an action expected to fail. */
async function tcCode(action: string, payload: Record<string, unknown>): Promise<string> {
  const answer = await tc(action, payload);
  return answer.Error?.Code ?? "";
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

describe("CONTAINER_IMAGES and ImageUri", () => {
  it("reads names and their namespaces, skipping a malformed entry", () => {
    const { images, problems } = parseContainerImages("flask-sample=*, team-image=team-a|team-b,Bad=x,runtime=*,x=a b");
    expect(images.get("flask-sample")).toBe("*");
    expect([...(images.get("team-image") as Set<string>)].sort()).toEqual(["team-a", "team-b"]);
    expect(images.has("Bad") || images.has("runtime") || images.has("x")).toBe(false);
    expect(problems).toHaveLength(3);
  });

  it("names an image by its last path segment's repository, tag and digest left off", () => {
    expect(imageNameOfUri("ccr.ccs.tencentyun.com/ns/flask-sample:v1@sha256:abc")).toBe("flask-sample");
    expect(imageNameOfUri("registry:5000/a/b/flask-sample")).toBe("flask-sample");
    expect(imageNameOfUri("flask-sample")).toBe("flask-sample");
  });
});

describe("creating an image function", () => {
  it("through REST: runtime CustomImage, the image shown, no code package, codeSha256 of the image's JSON", async () => {
    const name = uniqueName();
    const body = await createdJson({ name, image: { uri: FLASK_URI, command: ["python3"], args: ["-u", "app.py"] } });
    const image = {
      name: "flask-sample",
      uri: FLASK_URI,
      type: "personal",
      command: ["python3"],
      args: ["-u", "app.py"],
    };
    expect(body).toMatchObject({ name, runtime: "CustomImage", codeSize: 0, image });
    expect(body.codeSha256).toBe(await sha256Hex(JSON.stringify(image)));
    const stored = await env.CODE_BUCKET.list({ prefix: `code/default/${name}/` });
    expect(stored.objects).toHaveLength(0);
    const read = (await (await call(`/v1/namespaces/default/functions/${name}`)).json()) as Record<string, unknown>;
    expect(read.image).toEqual(image);
  });

  it("through Tencent: GetFunction and ListFunctions show Runtime CustomImage and the ImageConfig", async () => {
    const name = uniqueName();
    await tcOk("CreateFunction", {
      FunctionName: name,
      Code: {
        ImageConfig: {
          ImageType: "enterprise",
          ImageUri: `${FLASK_URI}@sha256:${"a".repeat(64)}`,
          RegistryId: "tcr-123",
          Command: "python3",
          Args: "-u  app.py",
          ImagePort: 9000,
          ContainerImageAccelerate: true,
        },
      },
    });
    const got = await tcOk("GetFunction", { FunctionName: name });
    expect(got).toMatchObject({
      Runtime: "CustomImage",
      CodeSize: 0,
      ImageConfig: {
        ImageType: "enterprise",
        ImageUri: `${FLASK_URI}@sha256:${"a".repeat(64)}`,
        RegistryId: "tcr-123",
        Command: "python3",
        Args: "-u app.py",
        ImagePort: 9000,
        ContainerImageAccelerate: true,
      },
    });
    const listed = await tcOk("ListFunctions", { Limit: 100 });
    const entry = (listed.Functions as { FunctionName: string; ImageConfig?: unknown }[]).find(
      (fn) => fn.FunctionName === name,
    );
    expect(entry?.ImageConfig).toMatchObject({ ImageType: "enterprise", Command: "python3" });
    // A code function has no ImageConfig.
    const code = uniqueName("code");
    await tcOk("CreateFunction", { FunctionName: code, Runtime: "Nodejs22", Code: { ZipFile: ZIP } });
    expect((await tcOk("GetFunction", { FunctionName: code })).ImageConfig).toBeUndefined();
  });

  it("refuses an unknown image and an image of another namespace with the same answer", async () => {
    const unknown = await refusal(
      await create({ name: uniqueName(), image: { uri: "ccr.ccs.tencentyun.com/x/nope:1" } }),
    );
    const foreign = await refusal(
      await create({ name: uniqueName(), image: { uri: "ccr.ccs.tencentyun.com/x/team-image" } }),
    );
    expect(unknown).toMatchObject({ status: 400, code: "INVALID_PARAMETER" });
    expect(foreign).toMatchObject({ status: 400, code: "INVALID_PARAMETER" });
    expect(foreign.message.replace("team-image", "nope")).toBe(unknown.message);
    expect(unknown.message).toContain("registered: flask-sample");
    expect(unknown.message).not.toContain("team-image");
    // In its own namespace the image is there.
    const own = await createdJson({ name: uniqueName(), image: { uri: "team-image" } }, "team-a");
    expect(own.image).toMatchObject({ name: "team-image" });

    const tcUnknown = await tc("CreateFunction", {
      FunctionName: uniqueName(),
      Code: { ImageConfig: { ImageType: "personal", ImageUri: "x/nope" } },
    });
    const tcForeign = await tc("CreateFunction", {
      FunctionName: uniqueName(),
      Code: { ImageConfig: { ImageType: "personal", ImageUri: "x/team-image" } },
    });
    expect(tcUnknown.Error?.Code).toBe("InvalidParameterValue.ImageUri");
    expect(tcForeign.Error?.Code).toBe("InvalidParameterValue.ImageUri");
    expect(tcForeign.Error?.Message.replace("team-image", "nope")).toBe(tcUnknown.Error?.Message);
  });

  it("refuses malformed ImageConfig fields with each field's code, and stores nothing", async () => {
    const cases: [Record<string, unknown> | unknown, string][] = [
      [{ ImageUri: FLASK_URI }, "InvalidParameterValue.ImageType"],
      [{ ImageType: "public", ImageUri: FLASK_URI }, "InvalidParameterValue.ImageType"],
      [{ ImageType: "personal" }, "InvalidParameterValue.ImageUri"],
      [{ ImageType: "personal", ImageUri: "has space/flask-sample" }, "InvalidParameterValue.ImageUri"],
      [{ ImageType: "personal", ImageUri: 7 }, "InvalidParameterValue.ImageUri"],
      [{ ImageType: "personal", ImageUri: FLASK_URI, ImagePort: -1 }, "InvalidParameterValue.ImagePort"],
      [{ ImageType: "personal", ImageUri: FLASK_URI, ImagePort: 8080 }, "InvalidParameterValue.ImagePort"],
      [{ ImageType: "personal", ImageUri: FLASK_URI, Command: ["python3"] }, "InvalidParameterValue.Command"],
      [{ ImageType: "personal", ImageUri: FLASK_URI, Args: "a\u0000b" }, "InvalidParameterValue.Args"],
      [
        { ImageType: "personal", ImageUri: FLASK_URI, ContainerImageAccelerate: "yes" },
        "InvalidParameterValue.ContainerImageAccelerate",
      ],
      ["not an object", "InvalidParameterValue.ImageConfig"],
    ];
    for (const [config, code] of cases) {
      const name = uniqueName("bad");
      expect(
        await tcCode("CreateFunction", { FunctionName: name, Code: { ImageConfig: config } }),
        JSON.stringify(config),
      ).toBe(code);
      expect((await call(`/v1/namespaces/default/functions/${name}`)).status).toBe(404);
    }
    const image = { ImageType: "personal", ImageUri: FLASK_URI };
    expect(
      await tcCode("CreateFunction", { FunctionName: uniqueName(), Runtime: "Nodejs22", Code: { ImageConfig: image } }),
    ).toBe("InvalidParameterValue.Runtime");
    expect(await tcCode("CreateFunction", { FunctionName: uniqueName(), Code: { ZipFile: ZIP } })).toBe(
      "MissingParameter",
    );
  });

  it("refuses an oversized ImageUri, Command, Args and command list (REST and Tencent)", async () => {
    const long = `${"a".repeat(MAX_IMAGE_URI_CHARS - "flask-sample".length)}/flask-sample`;
    const base = { ImageType: "personal", ImageUri: FLASK_URI };
    const tencent: [Record<string, unknown>, string][] = [
      [{ ...base, ImageUri: long }, "InvalidParameterValue.ImageUri"],
      [{ ...base, Command: "p".repeat(MAX_TENCENT_COMMAND_CHARS + 1) }, "InvalidParameterValue.Command"],
      [{ ...base, Args: "a".repeat(MAX_TENCENT_ARGS_CHARS + 1) }, "InvalidParameterValue.Args"],
      [
        { ...base, Args: Array.from({ length: MAX_IMAGE_COMMAND_ITEMS + 1 }, () => "x").join(" ") },
        "InvalidParameterValue.Args",
      ],
      [{ ...base, RegistryId: "r".repeat(129) }, "InvalidParameterValue.RegistryId"],
    ];
    for (const [config, code] of tencent) {
      expect(await tcCode("CreateFunction", { FunctionName: uniqueName(), Code: { ImageConfig: config } })).toBe(code);
    }
    // At the bounds it is taken.
    const fits = `${"a".repeat(MAX_IMAGE_URI_CHARS - "/flask-sample".length)}/flask-sample`;
    expect(fits.length).toBe(MAX_IMAGE_URI_CHARS);
    await tcOk("CreateFunction", { FunctionName: uniqueName(), Code: { ImageConfig: { ...base, ImageUri: fits } } });

    const rest: Record<string, unknown>[] = [
      { uri: long },
      { uri: "" },
      { uri: FLASK_URI, command: [] },
      { uri: FLASK_URI, command: [""] },
      { uri: FLASK_URI, command: Array.from({ length: MAX_IMAGE_COMMAND_ITEMS + 1 }, () => "x") },
      { uri: FLASK_URI, command: ["p"], args: Array.from({ length: MAX_IMAGE_COMMAND_ITEMS }, () => "x") },
      { uri: FLASK_URI, command: ["x".repeat(MAX_IMAGE_COMMAND_ITEM_CHARS + 1)] },
      { uri: FLASK_URI, args: ["a\u0000b"] },
      { uri: FLASK_URI, command: "python3" },
      { uri: FLASK_URI, unknownField: 1 },
      { uri: FLASK_URI, type: "public" },
    ];
    for (const image of rest) {
      const answer = await refusal(await create({ name: uniqueName(), image }));
      expect(answer, JSON.stringify(image).slice(0, 80)).toMatchObject({ status: 400, code: "INVALID_PARAMETER" });
    }
  });

  it("takes exactly one of code and image, and CustomImage only with an image", async () => {
    const both = await refusal(
      await create({ name: uniqueName(), runtime: "Nodejs22", code: { zipFile: ZIP }, image: { uri: FLASK_URI } }),
    );
    expect(both).toMatchObject({ status: 400, code: "INVALID_PARAMETER" });
    expect(both.message).toMatch(/exactly one/);
    expect((await refusal(await create({ name: uniqueName(), runtime: "Nodejs22" }))).status).toBe(400);
    const customWithCode = await refusal(
      await create({ name: uniqueName(), runtime: "CustomImage", code: { zipFile: ZIP } }),
    );
    expect(customWithCode).toMatchObject({ status: 400 });
    expect(customWithCode.message).toMatch(/implied by image/);
    expect(
      (await refusal(await create({ name: uniqueName(), runtime: "Nodejs22", image: { uri: FLASK_URI } }))).status,
    ).toBe(400);
    expect(
      await tcCode("CreateFunction", {
        FunctionName: uniqueName(),
        Code: { ZipFile: ZIP, ImageConfig: { ImageType: "personal", ImageUri: FLASK_URI } },
      }),
    ).toBe("InvalidParameterValue.Code");
  });
});

describe("updating between code and image", () => {
  it("turns a code function into an image function and back (REST), its runtime following", async () => {
    const name = uniqueName();
    await createdJson({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const path = `/v1/namespaces/default/functions/${name}`;
    const toImage = await call(`${path}/code`, { method: "PUT", body: JSON.stringify({ image: { uri: FLASK_URI } }) });
    expect(toImage.status).toBe(200);
    expect(await toImage.json()).toMatchObject({
      runtime: "CustomImage",
      codeSize: 0,
      image: { name: "flask-sample" },
    });

    // Its runtime is CustomImage: a code runtime comes only with code.
    const patched = await call(path, { method: "PATCH", body: JSON.stringify({ runtime: "Python3.11" }) });
    expect((await refusal(patched)).status).toBe(400);
    const noRuntime = await call(`${path}/code`, { method: "PUT", body: JSON.stringify({ zipFile: ZIP }) });
    expect(await refusal(noRuntime)).toMatchObject({ status: 400, code: "INVALID_PARAMETER" });
    const both = await call(`${path}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: ZIP, image: { uri: FLASK_URI } }),
    });
    expect((await refusal(both)).status).toBe(400);

    const toCode = await call(`${path}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: ZIP, runtime: "Nodejs22" }),
    });
    expect(toCode.status).toBe(200);
    const code = (await toCode.json()) as Record<string, unknown>;
    expect(code).toMatchObject({ runtime: "Nodejs22", image: null });
    expect(await env.CODE_BUCKET.head(`code/default/${name}/${code.codeSha256 as string}.zip`)).not.toBeNull();
    // A code function cannot be made CustomImage by configuration.
    const custom = await call(path, { method: "PATCH", body: JSON.stringify({ runtime: "CustomImage" }) });
    expect((await refusal(custom)).status).toBe(400);
  });

  it("takes Code.ImageConfig in UpdateFunctionCode, and refuses it beside a package or another namespace's image", async () => {
    const name = uniqueName();
    await tcOk("CreateFunction", { FunctionName: name, Runtime: "Nodejs22", Code: { ZipFile: ZIP } });
    const image = { ImageType: "personal", ImageUri: FLASK_URI, Command: "python3 -u", Args: "app.py" };
    expect(await tcCode("UpdateFunctionCode", { FunctionName: name, ZipFile: ZIP, Code: { ImageConfig: image } })).toBe(
      "InvalidParameterValue.Code",
    );
    expect(
      await tcCode("UpdateFunctionCode", {
        FunctionName: name,
        Code: { ImageConfig: { ...image, ImageUri: "team-image" } },
      }),
    ).toBe("InvalidParameterValue.ImageUri");
    await tcOk("UpdateFunctionCode", { FunctionName: name, Code: { ImageConfig: image } });
    expect(await tcOk("GetFunction", { FunctionName: name })).toMatchObject({
      Runtime: "CustomImage",
      ImageConfig: { Command: "python3 -u", Args: "app.py" },
    });
    // Back to code: the runtime must be named (an image function's is CustomImage).
    expect(await tcCode("UpdateFunctionCode", { FunctionName: name, ZipFile: ZIP })).toMatch(/^InvalidParameterValue/);
    await tcOk("UpdateFunctionCode", { FunctionName: name, ZipFile: ZIP, Runtime: "Nodejs22" });
    const back = await tcOk("GetFunction", { FunctionName: name });
    expect(back.Runtime).toBe("Nodejs22");
    expect(back.ImageConfig).toBeUndefined();
  });

  it("freezes the image in a published version, which keeps it after $LATEST turns to code", async () => {
    const name = uniqueName();
    await createdJson({ name, image: { uri: FLASK_URI, command: ["python3", "app.py"] } });
    const published = await call(`/v1/namespaces/default/functions/${name}/versions`, {
      method: "POST",
      body: JSON.stringify({ description: "image" }),
    });
    expect(published.status, await published.clone().text()).toBe(201);
    await call(`/v1/namespaces/default/functions/${name}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: ZIP, runtime: "Nodejs22" }),
    });
    const v1 = await tcOk("GetFunction", { FunctionName: name, Qualifier: "1" });
    expect(v1).toMatchObject({
      Runtime: "CustomImage",
      ImageConfig: { ImageUri: FLASK_URI, Command: "python3 app.py" },
    });
    const latest = await tcOk("GetFunction", { FunctionName: name });
    expect(latest.Runtime).toBe("Nodejs22");
    expect(latest.ImageConfig).toBeUndefined();
  });
});

describe("running an image function's event", () => {
  let fakes: ReturnType<typeof installFakeRunners>;

  beforeEach(async () => {
    fakes = installFakeRunners();
    await emptyPlatformCapacity();
  });

  afterEach(() => fakes.uninstall());

  const flask = {
    name: "flask-sample",
    uri: FLASK_URI,
    type: "personal" as const,
    command: ["python3"],
    args: ["-u", "app.py"],
  };

  /** An image function of its own namespace (memorySize 2048: its Cloudflare type is standard-2). */
  function imageFunction(overrides: Partial<FunctionSnapshot> = {}) {
    return uniqueFunction("image", {
      runtime: "CustomImage",
      codeSha256: "b".repeat(64),
      codeKey: "",
      memoryMb: 2048,
      image: flask,
      ...overrides,
    });
  }

  it("runs in the image class with the image and its memorySize's instance type, sending an image spec", async () => {
    const { snapshot, scheduler } = imageFunction();
    const event = await acceptedEvent(snapshot, { n: 1 });
    await schedulerStub(env, scheduler).submit([event.message]);
    const instance = instanceName(scheduler, IMAGE_SLOT);
    expect(instance).toBe(`${scheduler}#0@image`);
    const runner = fakes.of(instance);
    const execution = await executionOn(runner, event.requestId);
    expect(runner.lastStartOptions).toMatchObject({
      image: "cloudflare-dev/flask-sample:test",
      instance: "standard-2",
    });
    const spec = execution.spec as ImageExecutionSpec;
    expect(spec).toMatchObject({
      runtime: "CustomImage",
      image: { name: "flask-sample", command: ["python3", "-u", "app.py"] },
      event: { n: 1 },
      memoryLimitMb: 2048,
    });
    expect("codeSha256" in spec || "handler" in spec).toBe(false);
    execution.end({ kind: "returned", result: "END" });
    await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
    expect(await eventView(event.requestId)).toMatchObject({ instanceId: instance, instanceType: "standard-2" });
    expect((await instanceStub(env, instance).status()).instanceType).toBe("image");
  });

  it("reuses the warm container for the same image, and starts a fresh one for another image", async () => {
    // In team-a, the namespace team-image is open to (CONTAINER_IMAGES).
    const snapshot = functionSnapshot("team-a", `fn${crypto.randomUUID().slice(0, 8)}`, {
      runtime: "CustomImage",
      codeSha256: "b".repeat(64),
      codeKey: "",
      memoryMb: 128,
      image: flask,
    });
    const scheduler = schedulerName("team-a", snapshot.name);
    const runner = fakes.of(instanceName(scheduler, IMAGE_SLOT));
    for (const [index, image] of [flask, flask, { ...flask, name: "team-image" }].entries()) {
      const event = await acceptedEvent({ ...snapshot, image }, {});
      await schedulerStub(env, scheduler).submit([event.message]);
      const execution = await executionOn(runner, event.requestId);
      execution.end({ kind: "returned", result: index });
      await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
      await waitFor(async () => (await schedulerStub(env, scheduler).stats()).busy === 0, "the slot to be released");
    }
    expect(runner.starts).toBe(2);
    expect(runner.lastStartOptions).toMatchObject({ image: "cloudflare-dev/team-image:test", instance: "basic" });
  });

  it("fails the event at once, naming the remedy, when the deployment lacks the image (no container started)", async () => {
    const { snapshot, scheduler } = imageFunction({ image: { ...flask, name: "gone-image" } });
    const event = await acceptedEvent(snapshot, {});
    await schedulerStub(env, scheduler).submit([event.message]);
    await waitFor(async () => (await eventView(event.requestId)).status === "FAILED", "the event to fail");
    const view = await eventView(event.requestId);
    expect(JSON.stringify(view)).toContain('image \\"gone-image\\" is not in this deployment');
    expect(fakes.of(instanceName(scheduler, IMAGE_SLOT)).starts).toBe(0);
    const lines = await eventLogLines(event.requestId);
    expect(lines.join("\n")).toContain("gone-image");
  });

  it("fails the event of an image no longer open to its function's namespace (CONTAINER_IMAGES changed since the function was made)", async () => {
    // team-image is open to team-a only: a function of another namespace holding it (made before an
    // operator took that namespace off the image) does not run it.
    const { snapshot, scheduler } = imageFunction({ image: { ...flask, name: "team-image" } });
    const event = await acceptedEvent(snapshot, {});
    await schedulerStub(env, scheduler).submit([event.message]);
    await waitFor(async () => (await eventView(event.requestId)).status === "FAILED", "the event to fail");
    expect(JSON.stringify(await eventView(event.requestId))).toContain(
      `image \\"team-image\\" is not in this deployment for namespace \\"${snapshot.namespace}\\"`,
    );
    expect(fakes.of(instanceName(scheduler, IMAGE_SLOT)).starts).toBe(0);
  });

  it("never runs a code function's event in the image class, nor an image function's in a code class", async () => {
    const code = uniqueFunction("code", { memoryMb: 128 });
    const event = await acceptedEvent(code.snapshot, {});
    await schedulerStub(env, code.scheduler).submit([event.message]);
    const execution = await executionOn(fakes.of(instanceName(code.scheduler, 0)), event.requestId);
    expect(execution.spec.runtime).not.toBe("CustomImage");
    expect(fakes.of(instanceName(code.scheduler, IMAGE_SLOT)).starts).toBe(0);
    execution.end({ kind: "returned", result: "ok" });
    await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");

    // An image event's claim from a basic slot is refused: it stays queued for the image class.
    const image = imageFunction({ memoryMb: 128 });
    const imageEvent = await acceptedEvent(image.snapshot, {});
    const claim = await eventStub(env, imageEvent.requestId).claim(instanceName(image.scheduler, 0));
    expect(claim).toMatchObject({ ok: false, code: "WRONG_SIZE", image: true });
    // Nothing changed: still queued (RUNNING to SCF's clients), claimed by no instance.
    expect(await eventView(imageEvent.requestId)).toMatchObject({ status: "RUNNING", instanceId: null });
  });
});
