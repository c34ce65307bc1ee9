// The bench's per-event cost counters (worker/shared/cost-counters.ts, issue 17): off, the runtime's
// methods are left untouched; on, Durable Object calls, D1 statements and Durable Object storage
// writes made through the runtime's own objects are counted, each at its one place.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { costCounts, installCostCounters, resetCostCounts } from "../../worker/shared/cost-counters";
import { bulkTerminationStub } from "../../worker/shared/objects";

describe("cost counters", () => {
  it("installs nothing while diagnostics are off", () => {
    const statementPrototype = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as { run: unknown };
    const run = statementPrototype.run;
    installCostCounters({ ...env, DIAGNOSTICS_ENABLED: "false" });
    expect(statementPrototype.run).toBe(run);
    expect(costCounts().installedAt).toBeNull();
  });

  it("counts D1 statements one by one, a batch as its statements in one call", async () => {
    installCostCounters({ ...env, DIAGNOSTICS_ENABLED: "true" });
    resetCostCounts();
    await env.DB.prepare("SELECT 1").first();
    await env.DB.batch([env.DB.prepare("SELECT 1"), env.DB.prepare("SELECT 2"), env.DB.prepare("SELECT 3")]);
    const counts = costCounts();
    expect(counts.d1Statements).toBe(4);
    expect(counts.d1Calls).toBe(2);
  });

  it("counts Durable Object calls by binding and method, and that object's storage writes", async () => {
    const on = { ...env, DIAGNOSTICS_ENABLED: "true" };
    installCostCounters(on);
    const stub = bulkTerminationStub(env, `cost-counters-${crypto.randomUUID()}`);
    await runInDurableObject(stub, (_instance, state) => {
      installCostCounters(on, state.storage);
      resetCostCounts();
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS counted (n INTEGER)");
      state.storage.sql.exec("INSERT INTO counted (n) VALUES (1), (2)");
      state.storage.sql.exec("SELECT n FROM counted").toArray();
      return state.storage.put({ a: 1, b: 2 });
    });
    let counts = costCounts();
    expect(counts.storageSqlSchema).toBe(1);
    expect(counts.storageSqlWrites).toBe(1);
    expect(counts.storageKvWriteCalls).toBe(1);
    expect(counts.storageKvKeysWritten).toBe(2);
    expect(counts.storageWrites).toBe(2);

    resetCostCounts();
    await bulkTerminationStub(env, `cost-counters-${crypto.randomUUID()}`).get("no-such-job");
    counts = costCounts();
    expect(counts.durableObjectCalls).toBe(1);
    expect(counts.durableObjectCallsByBinding).toEqual({ BULK_TERMINATION: 1 });
    expect(counts.durableObjectCallsByMethod).toEqual({ "BULK_TERMINATION.get": 1 });
  });
});
