// The event object's own storage: its state (a large result in SQL beside it), its payload, its
// dispatch watchdog and the index write it owes. The storage keys live here only.
import type { PendingIndexWrite } from "./event-index";
import type { EventState } from "./event-machine";
import type { StoredRetention } from "./event-retention";
import { utf8Length } from "./text-bounds";

const STATE_KEY = "state";
const PAYLOAD_KEY = "payload";
/** The wait before the latest re-enqueue of a queued event (see nextWatchdogDelay). */
const WATCHDOG_DELAY_KEY = "watchdogDelayMs";
/** When the dispatch watchdog of a queued event is due (the alarm may also wake for the index). */
const WATCHDOG_AT_KEY = "watchdogAt";
/** The index write this event still owes D1 (a PendingIndexWrite), absent when none is owed. */
const INDEX_PENDING_KEY = "indexPending";
/** The result-delivery handoff this ended event still owes its DeliveryObject (PendingDelivery). */
const DELIVERY_PENDING_KEY = "deliveryPending";
/** An ended event's retention: its namespace's settings at the end, archive retries (StoredRetention). */
const RETENTION_KEY = "retention";

/** A handoff to the DeliveryObject still owed: its failed tries so far and when it is next tried. */
export interface PendingDelivery {
  attempts: number;
  retryAt: number;
}

/**
 * Results larger than this (UTF-8 bytes of JSON, 16 KiB) are kept in the object's SQL table
 * `event_result` (as UTF-8 text) rather than inside the state value. A storage value is limited
 * (2 MB with SQLite-backed objects, 128 KiB with key-value ones), and the value serialiser stores a
 * string holding any non-Latin-1 character at 2 bytes per character: a result of MAX_RESULT_BYTES
 * inside the state could pass the limit and leave the event RUNNING. The state stays small.
 */
export const MAX_INLINE_RESULT_BYTES = 16 * 1024;

/** The state as stored: a large result lives in SQL, and the stored state says so. */
type StoredEventState = EventState & { resultInSql?: true };

/** What an event object finds in its storage when it starts. */
export interface LoadedEvent {
  state: EventState | undefined;
  pendingIndex: PendingIndexWrite | undefined;
  pendingDelivery: PendingDelivery | undefined;
  /** An ended event's stored retention (undefined: none stored). */
  retention: StoredRetention | undefined;
}

/** One event's Durable Object storage, read and written by its object only. */
export class EventStorage {
  /** True once `event_result` is known to exist (created at the first large result, not at acceptance). */
  private resultTable = false;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Creates `event_result` once, before its first use: a new event's object creates no table. */
  private resultSql(): SqlStorage {
    if (!this.resultTable) {
      this.storage.sql.exec("CREATE TABLE IF NOT EXISTS event_result (id INTEGER PRIMARY KEY, json TEXT NOT NULL)");
      this.resultTable = true;
    }
    return this.storage.sql;
  }

  /** The stored state (with its result, wherever that is stored), the owed writes and the retention: one read. */
  async load(): Promise<LoadedEvent> {
    const stored = await this.storage.get<unknown>([STATE_KEY, INDEX_PENDING_KEY, DELIVERY_PENDING_KEY, RETENTION_KEY]);
    const state = this.withResult(stored.get(STATE_KEY) as StoredEventState | undefined);
    const pendingIndex = stored.get(INDEX_PENDING_KEY) as PendingIndexWrite | undefined;
    const pendingDelivery = stored.get(DELIVERY_PENDING_KEY) as PendingDelivery | undefined;
    const retention = stored.get(RETENTION_KEY) as StoredRetention | undefined;
    return { state, pendingIndex, pendingDelivery, retention };
  }

  private withResult(stored: StoredEventState | undefined): EventState | undefined {
    if (!stored) return undefined;
    const { resultInSql, ...state } = stored;
    if (!resultInSql) return state;
    const row = this.resultSql().exec<{ json: string }>("SELECT json FROM event_result WHERE id = 1").toArray()[0];
    return row ? { ...state, result: row.json } : state;
  }

  /**
   * Stores a new event (state, payload, watchdog time) and arms the alarm for its watchdog, without
   * awaiting: the writes coalesce into one, and the output gate holds the caller's answer (and any
   * message it sends) until they are durable. Were the write to fail, the caller's answer is an error.
   */
  storeAccepted(state: EventState, payload: string, watchdogAt: number): void {
    void this.storage.put({ [STATE_KEY]: state, [PAYLOAD_KEY]: payload, [WATCHDOG_AT_KEY]: watchdogAt });
    void this.storage.setAlarm(watchdogAt);
  }

  /**
   * Persists the state, with the index write it makes owed (if any) in the same write: a crash
   * after it cannot lose the index update. A result over MAX_INLINE_RESULT_BYTES goes to SQL, beside
   * it (in the same implicit transaction: nothing is awaited in between).
   */
  async saveState(
    state: EventState,
    pendingIndex?: PendingIndexWrite,
    pendingDelivery?: PendingDelivery,
  ): Promise<void> {
    const { result, ...rest } = state;
    const index: Record<string, PendingIndexWrite | PendingDelivery> = {
      ...(pendingIndex ? { [INDEX_PENDING_KEY]: pendingIndex } : {}),
      ...(pendingDelivery ? { [DELIVERY_PENDING_KEY]: pendingDelivery } : {}),
    };
    if (result === undefined || utf8Length(result) <= MAX_INLINE_RESULT_BYTES) {
      await this.storage.put<EventState | PendingIndexWrite | PendingDelivery>({ [STATE_KEY]: state, ...index });
      return;
    }
    this.resultSql().exec(
      "INSERT INTO event_result (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json",
      result,
    );
    const stored: StoredEventState = { ...rest, resultInSql: true };
    await this.storage.put<StoredEventState | PendingIndexWrite | PendingDelivery>({ [STATE_KEY]: stored, ...index });
  }

  /** The event's payload, as JSON text. */
  payload(): Promise<string | undefined> {
    return this.storage.get<string>(PAYLOAD_KEY);
  }

  /** When the dispatch watchdog of the queued event is due. */
  watchdogAt(): Promise<number | undefined> {
    return this.storage.get<number>(WATCHDOG_AT_KEY);
  }

  /** The wait before the latest re-enqueue (undefined before the first). */
  watchdogDelay(): Promise<number | undefined> {
    return this.storage.get<number>(WATCHDOG_DELAY_KEY);
  }

  /** Records a re-enqueue: its wait, and when the watchdog is next due. */
  async scheduleWatchdog(delayMs: number, at: number): Promise<void> {
    await this.storage.put({ [WATCHDOG_DELAY_KEY]: delayMs, [WATCHDOG_AT_KEY]: at });
  }

  /** Persists the owed index write alone (its state is already stored). */
  async savePendingIndex(pending: PendingIndexWrite): Promise<void> {
    await this.storage.put(INDEX_PENDING_KEY, pending);
  }

  /** Forgets the owed index write: D1 has the row. */
  async deletePendingIndex(): Promise<void> {
    await this.storage.delete(INDEX_PENDING_KEY);
  }

  /** Persists the owed delivery handoff alone (its state is already stored). */
  async savePendingDelivery(pending: PendingDelivery): Promise<void> {
    await this.storage.put(DELIVERY_PENDING_KEY, pending);
  }

  /** Forgets the owed delivery handoff: the DeliveryObject has it. */
  async deletePendingDelivery(): Promise<void> {
    await this.storage.delete(DELIVERY_PENDING_KEY);
  }

  /** Stores the ended event's retention. */
  async saveRetention(retention: StoredRetention): Promise<void> {
    await this.storage.put(RETENTION_KEY, retention);
  }

  /** Sets the object's one alarm. */
  async setAlarm(at: number): Promise<void> {
    await this.storage.setAlarm(at);
  }

  /** Deletes the alarm and everything stored: the event no longer exists. */
  async deleteEverything(): Promise<void> {
    await this.storage.deleteAlarm();
    await this.storage.deleteAll();
  }
}
