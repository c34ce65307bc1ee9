import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { START_TIMEOUT_MS } from "../../worker/events/async-event-object";
import { CAPACITY_RETRY_MS, CAPACITY_WAIT_MS, isCapacityError } from "../../worker/instances/instance-container";
import {
  DEFAULT_PLATFORM_MAX_CONTAINERS,
  parsePlatformMaxContainers,
  UNIT_SYNC_MIN_AGE_MS,
} from "../../worker/scheduling/platform-capacity-object";
import { PLATFORM_CAPACITY_NAME } from "../../worker/shared/objects";

/** PLATFORM_MAX_CONTAINERS of this test run (wrangler.toml). */
const CAP = DEFAULT_PLATFORM_MAX_CONTAINERS;

function platform() {
  return env.PLATFORM_CAPACITY.get(env.PLATFORM_CAPACITY.idFromName(PLATFORM_CAPACITY_NAME));
}

function quota(namespace: string) {
  return env.NAMESPACE_QUOTA.get(env.NAMESPACE_QUOTA.idFromName(namespace));
}

function uniqueNamespace(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

/** Instance names `namespace/filler#0..count-1`: containers of a namespace no quota object knows. */
function fillerInstances(namespace: string, count: number): string[] {
  return Array.from({ length: count }, (_, slot) => `${namespace}/filler#${slot}`);
}

beforeEach(async () => {
  await runInDurableObject(platform(), async (_object, state) => {
    state.storage.sql.exec("DELETE FROM units");
    state.storage.sql.exec("DELETE FROM waiters");
  });
});

describe("PLATFORM_MAX_CONTAINERS", () => {
  it("accepts a whole number from 1 up and falls back to max_instances (50) otherwise", () => {
    expect(parsePlatformMaxContainers("3")).toBe(3);
    expect(parsePlatformMaxContainers(" 10000 ")).toBe(10_000);
    for (const invalid of [undefined, "", "0", "-1", "2.5", "many", "10001", 7]) {
      expect(parsePlatformMaxContainers(invalid)).toBe(DEFAULT_PLATFORM_MAX_CONTAINERS);
    }
  });

  it("is set in wrangler.toml to max_instances (50), and above the per-namespace cap", () => {
    expect(env.PLATFORM_MAX_CONTAINERS).toBe("50");
    expect(Number(env.NAMESPACE_MAX_CONTAINERS)).toBeLessThan(Number(env.PLATFORM_MAX_CONTAINERS));
  });
});

describe("PlatformCapacityObject", () => {
  it("grants one unit per container up to the cap, refuses the rest and records the namespace as waiting", async () => {
    const namespace = uniqueNamespace("full");
    const instances = fillerInstances(namespace, CAP + 2);
    const answer = await platform().acquire(namespace, instances);
    expect(answer.granted).toEqual(instances.slice(0, CAP));
    expect(answer.refused).toEqual(instances.slice(CAP));
    expect(await platform().snapshot()).toMatchObject({ limit: CAP, total: CAP, waiting: [namespace] });
    // A container that holds a unit already is granted again without counting twice.
    expect((await platform().acquire(namespace, [instances[0] ?? ""])).granted).toEqual([instances[0]]);
    expect((await platform().snapshot()).total).toBe(CAP);
  });

  it("frees a unit when its container goes, and moves one from a destroyed container to its replacement", async () => {
    const namespace = uniqueNamespace("move");
    const instances = fillerInstances(namespace, CAP);
    await platform().acquire(namespace, instances);
    expect((await platform().transfer(namespace, instances[0] ?? "", `${namespace}/other#0`)).granted).toBe(true);
    expect((await platform().snapshot()).total).toBe(CAP);
    expect((await platform().acquire(namespace, [`${namespace}/other#1`])).refused).toHaveLength(1);
    expect(await platform().release([instances[1] ?? ""])).toEqual({ released: 1 });
    expect((await platform().acquire(namespace, [`${namespace}/other#1`])).granted).toHaveLength(1);
  });

  it("refuses malformed calls and stores nothing", async () => {
    expect(await platform().acquire("ns", "nope" as unknown as string[])).toEqual({ granted: [], refused: [] });
    expect(await platform().acquire("ns", [""])).toEqual({ granted: [], refused: [] });
    expect(await platform().release([42 as unknown as string])).toEqual({ released: 0 });
    expect((await platform().snapshot()).total).toBe(0);
  });

  it("drops on sync the units of containers the namespace no longer leases, once old enough", async () => {
    const namespace = uniqueNamespace("sync");
    const [kept, lost, young] = fillerInstances(namespace, 3) as [string, string, string];
    await platform().acquire(namespace, [kept, lost, young]);
    await runInDurableObject(platform(), async (_object, state) => {
      state.storage.sql.exec(
        "UPDATE units SET acquired_at = ? WHERE instance IN (?, ?)",
        Date.now() - UNIT_SYNC_MIN_AGE_MS - 1,
        kept,
        lost,
      );
    });
    expect(await platform().sync(namespace, [kept])).toEqual({ dropped: 1 });
    expect((await platform().snapshot()).byNamespace[namespace]).toBe(2);
  });
});

describe("namespace quotas under the platform-wide cap", () => {
  it("never grants a namespace a new container past the platform's cap, even under its own cap: the event waits", async () => {
    const filler = uniqueNamespace("filler");
    await platform().acquire(filler, fillerInstances(filler, CAP - 1));
    const namespace = uniqueNamespace("late");
    const answer = await quota(namespace).acquire(
      `${namespace}/fn`,
      [
        { requestId: "a", slot: 0 },
        { requestId: "b", slot: 1 },
      ],
      25,
    );
    expect(answer).toEqual({ granted: ["a"], refused: ["b"] });
    const leases = (await quota(namespace).snapshot()).leases.map((lease) => lease.instance);
    expect(leases).toEqual([`${namespace}/fn#0`]);
    expect(await platform().snapshot()).toMatchObject({ total: CAP, waiting: [namespace] });
  });

  it("gives the room of a destroyed container to the waiting namespace, which then starts its event", async () => {
    const filler = uniqueNamespace("filler");
    const fillers = fillerInstances(filler, CAP);
    await platform().acquire(filler, fillers);
    const namespace = uniqueNamespace("wait");
    const scheduler = `${namespace}/fn`;
    expect((await quota(namespace).acquire(scheduler, [{ requestId: "a", slot: 0 }], 25)).refused).toEqual(["a"]);
    await platform().release([fillers[0] ?? ""]);
    // The platform woke the namespace (it left the line); its next acquire is granted.
    await expect.poll(async () => (await platform().snapshot()).waiting).toEqual([]);
    expect((await quota(namespace).acquire(scheduler, [{ requestId: "a", slot: 0 }], 25)).granted).toEqual(["a"]);
  });

  it("swaps the namespace's own idle container when the platform is full, keeping the platform's count", async () => {
    const namespace = uniqueNamespace("swap");
    const scheduler = `${namespace}/fn`;
    expect((await quota(namespace).acquire(scheduler, [{ requestId: "a", slot: 0 }], 25)).granted).toEqual(["a"]);
    await quota(namespace).markIdle(scheduler, 0, "a");
    const filler = uniqueNamespace("filler");
    await platform().acquire(filler, fillerInstances(filler, CAP - 1));
    const answer = await quota(namespace).acquire(scheduler, [{ requestId: "b", slot: 1 }], 25);
    expect(answer.granted).toEqual(["b"]);
    expect((await quota(namespace).snapshot()).leases.map((lease) => lease.instance)).toEqual([`${scheduler}#1`]);
    const snapshot = await platform().snapshot();
    expect(snapshot.total).toBe(CAP);
    expect(snapshot.byNamespace[namespace]).toBe(1);
  });

  it("reclaims an idle container of another namespace for a namespace with none when the platform is full", async () => {
    const holder = uniqueNamespace("holder");
    const holderScheduler = `${holder}/fn`;
    expect((await quota(holder).acquire(holderScheduler, [{ requestId: "h", slot: 0 }], 25)).granted).toEqual(["h"]);
    await quota(holder).markIdle(holderScheduler, 0, "h");
    const filler = uniqueNamespace("filler");
    await platform().acquire(filler, fillerInstances(filler, CAP - 1));
    const namespace = uniqueNamespace("needy");
    const scheduler = `${namespace}/fn`;
    expect((await quota(namespace).acquire(scheduler, [{ requestId: "n", slot: 0 }], 25)).refused).toEqual(["n"]);
    // The holder's idle container is given back (its instance holds no event), freeing the room.
    await expect.poll(async () => (await quota(holder).snapshot()).leases).toEqual([]);
    await expect.poll(async () => (await platform().snapshot()).byNamespace[holder]).toBeUndefined();
    expect((await quota(namespace).acquire(scheduler, [{ requestId: "n", slot: 0 }], 25)).granted).toEqual(["n"]);
  });

  it("never reclaims a busy container: with every container busy the namespace waits", async () => {
    const holder = uniqueNamespace("busy");
    expect((await quota(holder).acquire(`${holder}/fn`, [{ requestId: "h", slot: 0 }], 25)).granted).toEqual(["h"]);
    const filler = uniqueNamespace("filler");
    await platform().acquire(filler, fillerInstances(filler, CAP - 1));
    const namespace = uniqueNamespace("needy");
    expect((await quota(namespace).acquire(`${namespace}/fn`, [{ requestId: "n", slot: 0 }], 25)).refused).toEqual([
      "n",
    ]);
    expect(await quota(holder).yieldIdle(5)).toEqual({ yielded: 0 });
    expect((await quota(holder).snapshot()).leases).toHaveLength(1);
  });

  it("gives the platform unit back when a namespace's lease goes (container destroyed), and its audit syncs lost ones", async () => {
    const namespace = uniqueNamespace("release");
    const scheduler = `${namespace}/fn`;
    await quota(namespace).acquire(scheduler, [{ requestId: "a", slot: 0 }], 25);
    expect((await platform().snapshot()).byNamespace[namespace]).toBe(1);
    await quota(namespace).releaseInstance(`${scheduler}#0`, "a");
    expect((await platform().snapshot()).byNamespace[namespace]).toBeUndefined();

    // A unit whose release was lost: the namespace's audit alarm drops it.
    await platform().acquire(namespace, [`${scheduler}#7`]);
    await runInDurableObject(platform(), async (_object, state) => {
      state.storage.sql.exec("UPDATE units SET acquired_at = ?", Date.now() - UNIT_SYNC_MIN_AGE_MS - 1);
    });
    // Set in the future and run here: an alarm due now could fire by itself while the snapshot is
    // read, and runDurableObjectAlarm would then find none to run (this test failed that way).
    await runInDurableObject(quota(namespace), async (_object, state) => {
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(quota(namespace))).toBe(true);
    expect((await platform().snapshot()).byNamespace[namespace]).toBeUndefined();
  });
});

describe("a container start Cloudflare refuses for capacity", () => {
  it("is recognised in each of Cloudflare's wordings, and other start errors are not", () => {
    expect(
      isCapacityError(new Error("there is no container instance that can be provided to this durable object")),
    ).toBe(true);
    expect(
      isCapacityError(
        new Error("There is no container instance that can be provided to this Durable Object, try again later"),
      ),
    ).toBe(true);
    expect(
      isCapacityError(
        "Maximum number of running container instances exceeded. Try again later, or try configuring a higher value for max_instances",
      ),
    ).toBe(true);
    expect(isCapacityError(new Error("you are requesting too many containers per second"))).toBe(true);
    expect(isCapacityError(new Error("the container is not listening"))).toBe(false);
    expect(isCapacityError(new Error("agent did not become ready"))).toBe(false);
  });

  it("is waited out for less than the event's start timeout, so the event stays waiting rather than failing at once", () => {
    expect(CAPACITY_WAIT_MS + CAPACITY_RETRY_MS).toBeLessThan(START_TIMEOUT_MS);
    expect(CAPACITY_RETRY_MS).toBeGreaterThan(0);
  });
});
