// Diagnostics holds: tests force a terminate race window by pausing an execution at a named point.
// Inert unless DIAGNOSTICS_ENABLED is "true" (never in a deployment: see the diagnostics routes).

/**
 * Where a diagnostics hold pauses an execution: `starting` before the hand-over (the agent has not
 * been asked to run the handler), `ending` after the handler's end record arrived but before the
 * outcome is reported to the event.
 */
export type HoldPhase = "starting" | "ending";
/** Storage key prefix of a diagnostics hold; the RequestId it holds follows. */
const HOLD_KEY_PREFIX = "diagnosticHold:";
/** How often a held execution checks whether its hold was released. */
const HOLD_POLL_MS = 100;
/**
 * Longest a hold pauses one execution (60 s): a forgotten hold cannot wedge an instance, and the
 * pause stays below the event's own start backstop (START_TIMEOUT_MS, 120 s).
 */
export const HOLD_MAX_MS = 60_000;

/**
 * A diagnostics hold as stored: where it pauses, when an execution reached it, and when it was
 * released (the paused execution deletes it as it goes on).
 */
interface HoldRecord {
  phase: HoldPhase;
  reachedAt?: number;
  releasedAt?: number;
}

/**
 * A diagnostics hold as the route reports it: `phase` is null once no hold is left (never set, or
 * its execution went on after the release); `held` is true while an execution is paused at it.
 */
export interface HoldStatus {
  requestId: string;
  phase: HoldPhase | null;
  held: boolean;
}

/** The diagnostics holds of one instance, kept in its Durable Object's storage. */
export class DiagnosticHolds {
  constructor(
    private readonly storage: DurableObjectStorage,
    /** True when holds may act (read on every call: the instance's env says so). */
    private readonly enabled: () => boolean,
  ) {}

  /**
   * The next execution of requestId pauses at `phase` until release (or HOLD_MAX_MS). Refused
   * unless holds are enabled.
   */
  async set(requestId: string, phase: HoldPhase): Promise<HoldStatus> {
    if (!this.enabled()) throw new Error("diagnostics holds are disabled");
    const record: HoldRecord = { phase };
    await this.storage.put(HOLD_KEY_PREFIX + requestId, record);
    return { requestId, phase, held: false };
  }

  /** The hold set for requestId, and whether an execution is paused at it. */
  async status(requestId: string): Promise<HoldStatus> {
    const record = this.enabled() ? await this.storage.get<HoldRecord>(HOLD_KEY_PREFIX + requestId) : undefined;
    return {
      requestId,
      phase: record?.phase ?? null,
      held: record?.reachedAt !== undefined && record.releasedAt === undefined,
    };
  }

  /**
   * Releases the hold of requestId. A hold no execution reached is removed; a paused execution goes
   * on within HOLD_POLL_MS and then removes it (status answers phase null).
   */
  async release(requestId: string): Promise<{ released: boolean }> {
    if (!this.enabled()) return { released: false };
    const key = HOLD_KEY_PREFIX + requestId;
    const record = await this.storage.get<HoldRecord>(key);
    if (!record) return { released: false };
    if (record.reachedAt === undefined) await this.storage.delete(key);
    else await this.storage.put(key, { ...record, releasedAt: Date.now() } satisfies HoldRecord);
    return { released: true };
  }

  /**
   * A hold point: pauses the execution of requestId while a hold for `phase` is set and not
   * released (at most HOLD_MAX_MS), then removes the hold. Does nothing, and reads nothing, unless
   * holds are enabled.
   */
  async pauseAt(requestId: string, phase: HoldPhase): Promise<void> {
    if (!this.enabled()) return;
    const key = HOLD_KEY_PREFIX + requestId;
    const record = await this.storage.get<HoldRecord>(key);
    if (record?.phase !== phase) return;
    await this.storage.put(key, { ...record, reachedAt: Date.now() } satisfies HoldRecord);
    const giveUpAt = Date.now() + HOLD_MAX_MS;
    for (;;) {
      const now = await this.storage.get<HoldRecord>(key);
      if (!now || now.releasedAt !== undefined) break;
      if (Date.now() >= giveUpAt) {
        console.warn("diagnostics hold not released in time; going on", requestId, phase);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
    await this.storage.delete(key);
  }
}
