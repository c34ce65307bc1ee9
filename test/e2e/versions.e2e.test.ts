// Versions and aliases end to end through the official tencentcloud-sdk-nodejs-scf client (issue
// 12's done-when): publishing a version, pointing $DEFAULT at it and changing $LATEST afterwards
// runs the published code; $LATEST runs the new code; each event records the version it ran.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient as Client, scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";

const baseUrl = inject("baseUrl");
const admin = new ApiClient(baseUrl);

/** A handler returning which code it is and the version its context names. */
function handlerOf(code: string): string {
  return `exports.main_handler = async (event, context) => {
  console.log("running ${code} as version " + context.function_version);
  return { code: "${code}", version: context.function_version };
};`;
}

async function createKey(namespaces: string[]): Promise<{ secretId: string; secretKey: string }> {
  const { status, body } = await admin.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "versions e2e" }),
  });
  expect(status).toBe(201);
  return body;
}

async function finished(client: Client, requestId: string): Promise<void> {
  const status = await pollUntil(
    () => client.GetAsyncEventStatus({ InvokeRequestId: requestId }),
    (answer) => answer.Result?.Status !== "RUNNING",
    60_000,
  );
  expect(status.Result?.Status).toBe("FINISHED");
}

describe("versions and aliases through the official SDK", () => {
  const namespace = `ver${Math.random().toString(36).slice(2, 8)}`;
  let client: Client;
  beforeAll(async () => {
    const key = await createKey([namespace]);
    client = scfClient(baseUrl, key.secretId, key.secretKey);
  });

  it("runs the published version through $DEFAULT after $LATEST changed, and $LATEST's new code when asked", async () => {
    const name = uniqueName("ver");
    await client.CreateFunction({
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": handlerOf("v1") }) },
      Timeout: 30,
      AsyncRunEnable: "TRUE",
    });
    const published = await client.PublishVersion({ FunctionName: name, Namespace: namespace, Description: "v1" });
    expect(published.FunctionVersion).toBe("1");
    await client.UpdateAlias({ FunctionName: name, Namespace: namespace, Name: "$DEFAULT", FunctionVersion: "1" });
    await client.UpdateFunctionCode({
      FunctionName: name,
      Namespace: namespace,
      ZipFile: zipBase64({ "index.js": handlerOf("v2") }),
    });
    const alias = await client.GetAlias({ FunctionName: name, Namespace: namespace, Name: "$DEFAULT" });
    expect(alias.FunctionVersion).toBe("1");
    const versions = await client.ListVersionByFunction({ FunctionName: name, Namespace: namespace });
    expect(versions.FunctionVersion).toEqual(["$LATEST", "1"]);

    // No Qualifier: $DEFAULT, which now routes to version 1 (the code published before the update).
    const viaDefault = (
      await client.Invoke({ FunctionName: name, Namespace: namespace, InvocationType: "Event", ClientContext: "{}" })
    ).Result?.FunctionRequestId as string;
    await finished(client, viaDefault);
    expect((await admin.event(viaDefault)).result).toEqual({ code: "v1", version: "1" });

    const viaLatest = (
      await client.Invoke({
        FunctionName: name,
        Namespace: namespace,
        InvocationType: "Event",
        Qualifier: "$LATEST",
        ClientContext: "{}",
      })
    ).Result?.FunctionRequestId as string;
    await finished(client, viaLatest);
    expect((await admin.event(viaLatest)).result).toEqual({ code: "v2", version: "$LATEST" });

    // The events record the version each ran; the list filters on it.
    const listed = await pollUntil(
      () => client.ListAsyncEvents({ FunctionName: name, Namespace: namespace }),
      (answer) => answer.TotalCount === 2,
    );
    const qualifiers = Object.fromEntries(
      (listed.EventList ?? []).map((event) => [event.InvokeRequestId, event.Qualifier]),
    );
    expect(qualifiers).toEqual({ [viaDefault]: "1", [viaLatest]: "$LATEST" });
    const versionOne = await client.ListAsyncEvents({ FunctionName: name, Namespace: namespace, Qualifier: "1" });
    expect(versionOne.EventList?.map((event) => event.InvokeRequestId)).toEqual([viaDefault]);

    // The published version is refused deletion while $DEFAULT routes to it. (Its parameters are
    // those of the list above: the SDK does not sign the action, so the same body signed in the
    // same second is the same signature, refused as an action swap; the next second signs anew.)
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(
      await sdkError(client.DeleteFunctionVersion({ FunctionName: name, Namespace: namespace, Qualifier: "1" })),
    ).toBe("FailedOperation.DeleteFunctionVersion");
    expect(
      await sdkError(
        client.Invoke({ FunctionName: name, Namespace: namespace, InvocationType: "Event", Qualifier: "9" }),
      ),
    ).toBe("ResourceNotFound.Qualifier");
  });
});
