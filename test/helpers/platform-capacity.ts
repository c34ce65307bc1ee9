// The platform-wide container count (PlatformCapacityObject) is one object shared by every test of
// a run: tests that start containers (fake or real) empty it first, and tests that need more slots
// than the configured caps raise them in the objects that read them.
import { env, runInDurableObject } from "cloudflare:test";
import { platformCapacityStub, schedulerStub } from "../../worker/shared/objects";

/** Empties the platform's container count (units held and waiters), after raising `raised` in it. */
export async function emptyPlatformCapacity(raised: Partial<Env> = {}): Promise<void> {
  await runInDurableObject(platformCapacityStub(env), async (object, state) => {
    const holder = object as unknown as { env: Env };
    holder.env = { ...holder.env, ...raised };
    state.storage.sql.exec("DELETE FROM units");
    state.storage.sql.exec("DELETE FROM waiters");
  });
}

/** Raises `raised` in each named scheduler and in the platform's count, and empties the latter. */
export async function raiseContainerCaps(schedulerNames: string[], raised: Partial<Env>): Promise<void> {
  for (const name of schedulerNames) {
    await runInDurableObject(schedulerStub(env, name), async (object) => {
      const holder = object as unknown as { env: Env };
      holder.env = { ...holder.env, ...raised };
    });
  }
  await emptyPlatformCapacity(raised);
}
