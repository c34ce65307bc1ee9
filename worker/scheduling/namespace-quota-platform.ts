// The namespace quota's side of the platform-wide capacity: the units its containers hold in the
// PlatformCapacityObject. An unreachable platform grants nothing and loses no lease here.
import { namespaceOfScheduler, platformCapacityStub } from "../shared/objects";
import type { SqlSettings } from "../shared/sql-settings";
import type { PlatformCapacityObject, UnitGrant } from "./platform-capacity-object";

/** Settings key of the namespace this quota object serves (learnt from its instances' names). */
const NAMESPACE_KEY = "namespace";

/** Calls from one namespace's quota object to the platform's capacity object. */
export class PlatformExchange {
  private stub: DurableObjectStub<PlatformCapacityObject> | undefined;

  /** @param env The object's env, read when the stub is first made (so that a replaced env is seen). */
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: () => Pick<Env, "PLATFORM_CAPACITY">,
    private readonly settings: SqlSettings,
  ) {}

  /** Platform units for new containers; an unreachable platform grants nothing (the events wait). */
  async acquire(instances: string[]): Promise<Set<string>> {
    if (instances.length === 0) return new Set();
    const namespace = this.namespace(instances[0] ?? "");
    const answer: UnitGrant = await this.platform()
      .acquire(namespace, instances)
      .catch((error: unknown) => {
        console.warn("platform capacity unreachable; events wait", namespace, String(error));
        return { granted: [], refused: instances };
      });
    return new Set(answer.granted);
  }

  /** Moves a destroyed container's platform unit to a new slot of this namespace. */
  async transfer(from: string, to: string): Promise<Set<string>> {
    const answer = await this.platform()
      .transfer(this.namespace(to), from, to)
      .catch((error: unknown) => {
        console.warn("platform capacity unreachable; events wait", to, String(error));
        return { granted: false };
      });
    return new Set(answer.granted ? [to] : []);
  }

  /** Gives destroyed containers' platform units back; a failure is logged (the sync reclaims). */
  async release(instances: string[]): Promise<void> {
    await this.platform()
      .release(instances)
      .catch((error: unknown) => console.warn("releasing platform units failed", instances.join(","), String(error)));
  }

  /** Tells the platform which containers this namespace holds (drops units of lost releases). */
  async sync(instances: string[]): Promise<void> {
    const namespace = this.settings.get(NAMESPACE_KEY);
    if (!namespace) return;
    await this.platform()
      .sync(namespace, instances)
      .catch((error: unknown) => console.warn("platform capacity sync failed", namespace, String(error)));
  }

  /**
   * Asks the platform, in the background, to reclaim `wanted` idle containers of other namespaces
   * for the scheduler's namespace; a failure is logged.
   */
  reclaimFor(scheduler: string, wanted: number): void {
    this.ctx.waitUntil(
      this.platform()
        .reclaim(namespaceOfScheduler(scheduler), wanted)
        .catch((error: unknown) => console.warn("asking the platform to reclaim failed", String(error))),
    );
  }

  /** The namespace an instance name belongs to (remembered for the sync). */
  private namespace(instance: string): string {
    const namespace = namespaceOfScheduler(instance);
    if (this.settings.get(NAMESPACE_KEY) !== namespace) this.settings.set(NAMESPACE_KEY, namespace);
    return namespace;
  }

  /** The platform-wide capacity object; one stub, so that calls arrive in the order sent. */
  private platform() {
    this.stub ??= platformCapacityStub(this.env());
    return this.stub;
  }
}
