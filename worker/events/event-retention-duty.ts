// The ended event's retention, applied by its object: armed with its namespace's settings when it
// ends (this isolate's cached ones, or D1 if it answers within END_SETTINGS_WAIT_MS; otherwise a
// provisional shortest retention, looked at again then), re-read when the deletion is due (a longer
// retention set since re-arms it), and, with the archive on, the archive written before the storage
// goes. Each archive try is counted (stored) before it starts, so a try that kills the object
// (memory) counts too; after MAX_ARCHIVE_ATTEMPTS tries, or MAX_ARCHIVE_OVERDUE_MS past the due
// time, the event is deleted without its archive, with an error logged.
import { writeArchive } from "./event-archive";
import type { LogPage } from "./event-log-store";
import type { EventState, PublicEvent } from "./event-machine";
import {
  archiveRetryDelay,
  DEFAULT_NAMESPACE_SETTINGS,
  MAX_ARCHIVE_ATTEMPTS,
  MAX_ARCHIVE_OVERDUE_MS,
  type NamespaceSettings,
  readNamespaceSettings,
  retentionAtEnd,
  retentionDueAt,
  type StoredRetention,
  storedRetentionOf,
} from "./event-retention";
import type { EventStorage } from "./event-storage";

/** What the archive reads of the event: its public view and its stored log. */
export interface ArchiveSource {
  view: () => PublicEvent;
  page: (after: number, limit: number) => Promise<LogPage>;
  lastSeq: () => number;
}

/** The settings a stored retention was armed with. */
function settingsOf(stored: StoredRetention | undefined): NamespaceSettings {
  // Provisional (its namespace's settings were unknown at the end): the defaults.
  if (!stored || stored.provisional) return DEFAULT_NAMESPACE_SETTINGS;
  return { retentionHours: stored.retentionMs / 3_600_000, archive: stored.archive };
}

/** One ended event's retention (see the file comment). */
export class EventRetentionDuty {
  private stored: StoredRetention | undefined;

  constructor(
    private readonly storage: EventStorage,
    private readonly env: Pick<Env, "DB" | "ARCHIVE_BUCKET">,
  ) {}

  /** The stored retention found when the object starts. */
  restore(stored: StoredRetention | undefined): void {
    this.stored = stored;
  }

  /** When the ended event is deleted (or its archive tried again). */
  dueAt(endedAt: number): number {
    return retentionDueAt(endedAt, this.stored);
  }

  /**
   * The event ended: its namespace's settings now, from this isolate's cache or D1 within
   * END_SETTINGS_WAIT_MS (the end never waits longer on D1; see retentionAtEnd).
   */
  async onEnd(state: EventState): Promise<void> {
    this.stored = await retentionAtEnd(this.env.DB, state.namespace);
    await this.storage.saveRetention(this.stored);
  }

  /** Diagnostics: the deletion is due now, whatever the retention. */
  async force(now: number): Promise<void> {
    this.stored = { ...(this.stored ?? storedRetentionOf(DEFAULT_NAMESPACE_SETTINGS)), forcedAt: now };
    await this.storage.saveRetention(this.stored);
  }

  /**
   * The deletion is due by the stored retention: true when the storage may go now. The namespace's
   * settings are read again (from D1; the stored ones when it cannot answer): a longer retention
   * set since moves the deletion (false, the caller re-arms). With the archive on, the archive is
   * written first: each try is stored (and the alarm set for its retry) before it starts; a failed
   * or lost try is retried (false) until MAX_ARCHIVE_ATTEMPTS tries or MAX_ARCHIVE_OVERDUE_MS past
   * the due time, then given up with an error logged (true): an event's storage is never kept forever.
   */
  async readyToDelete(state: EventState, now: number, source: ArchiveSource): Promise<boolean> {
    const before = this.stored;
    let settings: NamespaceSettings;
    try {
      settings = await readNamespaceSettings(this.env.DB, state.namespace);
    } catch (error) {
      console.warn("namespace settings unreadable at deletion; the stored retention applies", String(error));
      settings = settingsOf(before);
    }
    const { provisional: _provisional, ...kept } = before ?? storedRetentionOf(DEFAULT_NAMESPACE_SETTINGS);
    const current: StoredRetention = { ...kept, ...storedRetentionOf(settings) };
    this.stored = current;
    const endedAt = state.endedAt ?? now;
    if (current.forcedAt === undefined && now < retentionDueAt(endedAt, current)) {
      await this.storage.saveRetention(current);
      return false;
    }
    if (!current.archive) return true;
    const tried = current.archiveAttempts ?? 0;
    const dueSince = current.forcedAt ?? endedAt + current.retentionMs;
    if (tried >= MAX_ARCHIVE_ATTEMPTS || now - dueSince > MAX_ARCHIVE_OVERDUE_MS) {
      console.error(
        `event archive not written after ${tried} tries (due since ${new Date(dueSince).toISOString()}); the event is deleted without its archive`,
        state.requestId,
      );
      return true;
    }
    // The try is counted before the archive is built: one that kills the object counts too.
    const attempts = tried + 1;
    const retryAt = now + archiveRetryDelay(attempts);
    // A forced deletion stays forced, at the retry.
    this.stored = {
      ...current,
      archiveAttempts: attempts,
      retryAt,
      ...(current.forcedAt !== undefined ? { forcedAt: retryAt } : {}),
    };
    await this.storage.saveRetention(this.stored);
    // And the alarm set for the retry now: were the object to die building the archive, it wakes then.
    await this.storage.setAlarm(retryAt);
    try {
      await writeArchive(this.env.ARCHIVE_BUCKET, source.view(), source.page, source.lastSeq(), now);
      return true;
    } catch (error) {
      console.warn(
        `event archive failed (attempt ${attempts}); the deletion waits and retries`,
        state.requestId,
        String(error),
      );
      return false;
    }
  }
}
