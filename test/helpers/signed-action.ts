// A Tencent Cloud API action signed with the development pair and sent to the Worker under test,
// for integration tests in the Workers pool (cloudflare:test's SELF and env).
import { env, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { referenceSignedHeaders } from "./tc3-reference";

const workerEnv: Env = env;
let signed = 0;

/** The action's `Response` (each call a distinct timestamp, so the replay ledger never refuses it). */
export async function signedAction(action: string, payload: Record<string, unknown>) {
  signed += 1;
  const body = JSON.stringify(payload);
  const headers = await referenceSignedHeaders({
    secretId: String(workerEnv.DEV_SECRET_ID),
    secretKey: String(workerEnv.DEV_SECRET_KEY),
    timestamp: Math.floor(Date.now() / 1000) - (signed % 200),
    host: "platform.test",
    action,
    body,
  });
  const response = await SELF.fetch("https://platform.test/", { method: "POST", headers, body });
  expect(response.status).toBe(200);
  return (
    (await response.json()) as { Response: Record<string, unknown> & { Error?: { Code: string; Message: string } } }
  ).Response;
}
