// The event object's duty to the D1 event index: the row write it owes, kept in its storage until
// D1 has the row, and retried by its alarm.

import {
  afterFailedIndexWrite,
  indexEntryOf,
  logsIndexFailure,
  newPendingIndexWrite,
  type PendingIndexWrite,
  writeIndexEntries,
} from "./event-index";
import type { EventIndexEntry } from "./event-index-entry";
import { EVENT_INDEX_RETENTION_MS } from "./event-list";
import type { EventState } from "./event-machine";
import type { EventStorage } from "./event-storage";

/**
 * The index write one event owes (at most one: a newer debt replaces an older one, and the write
 * always carries the current state). `rearm` sets the event's alarm again after the debt or its
 * retry time changed.
 */
export class EventIndexDuty {
  private pending: PendingIndexWrite | undefined;

  /**
   * @param dbOf The D1 database holding a namespace's index (indexDatabaseOf).
   * @param sendRow Hands a row to the dispatch queue's consumer, which writes it in a batch
   * (sendIndexRow); used by flush with `viaQueue` (the end's write). Absent: every write goes to D1.
   */
  constructor(
    private readonly storage: EventStorage,
    private readonly dbOf: (namespace: string) => D1Database,
    private readonly rearm: () => Promise<void>,
    private readonly sendRow?: (entry: EventIndexEntry) => Promise<void>,
  ) {}

  /** Takes over the debt found in storage when the object starts. */
  restore(pending: PendingIndexWrite | undefined): void {
    this.pending = pending;
  }

  /** The owed write, if any. */
  get owed(): PendingIndexWrite | undefined {
    return this.pending;
  }

  /** When the owed write is next tried (undefined when none is owed). */
  get retryAt(): number | undefined {
    return this.pending?.retryAt;
  }

  /**
   * A write owed from now on for `version`, held in memory: the caller persists it in the same
   * write as the state that made it owed, then calls flush().
   */
  owe(version: number, now: number): PendingIndexWrite {
    this.pending = newPendingIndexWrite(version, now);
    return this.pending;
  }

  /**
   * A write owed for `version` because of a progress report: due at `dueAt` (see
   * progressIndexDueAt), not tried now; the caller persists it with the state and re-arms the alarm,
   * which writes the then-current state. An owed write keeps its attempts.
   */
  oweAt(version: number, dueAt: number): PendingIndexWrite {
    this.pending = { version, attempts: this.pending?.attempts ?? 0, retryAt: dueAt };
    return this.pending;
  }

  /**
   * The index may lack the row of `state` (the dispatch consumer's write of it failed): the event
   * takes the write over, persisted at once, and its alarm retries it until D1 has the row.
   */
  async takeOver(state: EventState): Promise<void> {
    // A new debt object even when one is owed: a row sent on the queue that comes back here (its
    // consumer met D1 refusing) may be handed back before its own send has answered, and that send
    // must then not settle this debt (see flush).
    this.pending = newPendingIndexWrite(Math.max(state.version, this.pending?.version ?? 0), Date.now());
    await this.storage.savePendingIndex(this.pending);
    await this.rearm();
  }

  /** Forgets the debt without writing (the event is being deleted). */
  forget(): void {
    this.pending = undefined;
  }

  /**
   * Writes the owed index row (the current state's entry: the versioned upsert never lets it
   * replace a newer row) and forgets the debt once D1 has it. A failure is logged (see
   * logsIndexFailure) and retried by the alarm with backoff; it is never given up while the row
   * could be listed. D1's errors never escape from here.
   *
   * `viaQueue` (the end's write, on the pipeline's path): the row is sent to the function's
   * dispatch queue instead, and the debt is forgotten once the queue has it. Its consumer writes
   * the rows of a delivery in one statement, and when D1 refuses them hands each row back to its
   * event (owesIndexRow), whose alarm then writes it here, to D1. A failed send stays owed, and the
   * alarm's retry writes to D1 as well.
   */
  async flush(state: EventState | undefined, viaQueue = false): Promise<void> {
    const owed = this.pending;
    if (!state || !owed) return;
    if (state.invokedAt < Date.now() - EVENT_INDEX_RETENTION_MS) {
      // The index keeps no row past EVENT_INDEX_RETENTION_MS from the start: it would be purged.
      console.warn("event index write dropped: the row is past the index's retention", state.requestId);
      return this.settle(owed.version);
    }
    const entry = indexEntryOf(state);
    const queued = viaQueue && this.sendRow !== undefined;
    try {
      if (queued && this.sendRow) await this.sendRow(entry);
      else await writeIndexEntries(this.dbOf(entry.namespace), [entry]);
    } catch (error) {
      // Another call may have replaced the debt while D1 answered: count the failure on the newest.
      const failed = afterFailedIndexWrite(this.pending ?? owed, Date.now());
      this.pending = failed;
      await this.storage.savePendingIndex(failed);
      await this.rearm();
      if (logsIndexFailure(failed.attempts)) {
        console.warn(
          `event index write failed (attempt ${failed.attempts}); retrying in ${failed.retryAt - Date.now()} ms`,
          state.requestId,
          String(error),
        );
      }
      return;
    }
    // Sent on the queue, but handed back meanwhile (takeOver): the debt stays, the alarm writes D1.
    if (queued && this.pending !== owed) return;
    return this.settle(entry.version);
  }

  /** D1 has the row at `version`: the debt is forgotten unless a newer one was owed meanwhile. */
  private async settle(version: number): Promise<void> {
    if (!this.pending || this.pending.version > version) return;
    this.pending = undefined;
    await this.storage.deletePendingIndex();
    await this.rearm();
  }
}
