// DeliveryObject: one per ended event (named by its RequestId) that has a destination for its end.
// It owns the delivery from the event's handoff on: it stores the end record, sends it to each
// destination (webhook, queue) with retries on its alarm, keeps the attempt log and deletes
// everything when the event itself is deleted (its namespace's retention after the end: the event
// calls expire), at the latest MAX_RETENTION_MS after the end.
import { DurableObject } from "cloudflare:workers";
import { decryptSecret } from "../auth/credential-store";
import { allowsHttpWebhooks, destinationQueue, webhookSecretContext } from "../functions/destinations";
import { type DestinationKind, webhookUrlProblem } from "../functions/model";
import {
  type AttemptLog,
  DELIVERY_ATTEMPT_TIMEOUT_MS,
  DELIVERY_ID_HEADER,
  type DeliveryAttempt,
  type DeliveryHandoff,
  deliveryBody,
  deliverySignature,
  type EndRecordType,
  logAttempt,
  MAX_ATTEMPT_ERROR_CHARS,
  MAX_QUEUE_MESSAGE_BYTES,
  MAX_RESPONSE_BODY_READ_BYTES,
  nextAttemptAt,
  retryBaseOf,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from "./delivery";
import { MAX_RETENTION_MS } from "./event-retention";

/** A delivery's state: being tried, acknowledged, or given up. */
export type DeliveryState = "pending" | "delivered" | "failed";

/** One delivery as stored: one destination of the event's end. */
interface StoredDelivery extends AttemptLog {
  destination: "webhook" | "queue";
  kind: DestinationKind;
  deliveryId: string;
  state: DeliveryState;
  nextAttemptAt: number | null;
  url?: string;
  secretEncrypted?: string;
  queue?: string;
}

/** What the handoff stores besides the deliveries (the record lives in SQL: it may be large). */
interface DeliveryHeader {
  requestId: string;
  namespace: string;
  functionName: string;
  type: EndRecordType;
  endedAt: number;
}

/** One delivery as GET /v1/events/{requestId}/deliveries shows it. */
export interface PublicDelivery {
  destination: "webhook" | "queue";
  kind: DestinationKind;
  deliveryId: string;
  state: DeliveryState;
  attempts: DeliveryAttempt[];
  /** Attempts made in all (the log keeps the first MAX_LOGGED_ATTEMPTS). */
  attemptCount: number;
  nextAttemptAt: string | null;
}

const HEADER_KEY = "header";
const DELIVERIES_KEY = "deliveries";

/** How a webhook request is sent: fetch, or what a test installed (installDeliveryFetchForTests). */
type DeliveryFetch = (request: Request) => Promise<Response>;
let testFetch: DeliveryFetch | undefined;

/**
 * Test seam: while installed, every DeliveryObject sends its webhook requests through `fetcher`
 * instead of the network (the Workers test pool has no receiver). Only test code calls this; pass
 * undefined to uninstall.
 */
export function installDeliveryFetchForTests(fetcher: DeliveryFetch | undefined): void {
  testFetch = fetcher;
}

/** Reads at most MAX_RESPONSE_BODY_READ_BYTES of an answer's body, then cancels the rest. */
async function drainBounded(response: Response): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  let read = 0;
  try {
    while (read <= MAX_RESPONSE_BODY_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** The outcome of one attempt. */
interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  /** A failure no retry can mend (a refused URL, a record over the queue's limit): `failed` at once. */
  permanent?: boolean;
}

const RECORD_TABLE_SQL = "CREATE TABLE IF NOT EXISTS delivery_record (id INTEGER PRIMARY KEY, json TEXT NOT NULL)";

function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, MAX_ATTEMPT_ERROR_CHARS);
}

// Nothing is written before a handoff: a view of an event without delivery (or of an unknown id)
// leaves no storage behind, so the record's table is created by handOver, not the constructor.
/** The delivery of one event's end record to its destinations. */
export class DeliveryObject extends DurableObject<Env> {
  /**
   * Takes the delivery over from the event (idempotent: a repeated handoff changes nothing) and
   * arms the alarm for the first attempts.
   */
  async handOver(handoff: DeliveryHandoff): Promise<{ deliveries: number }> {
    const existing = await this.ctx.storage.get<StoredDelivery[]>(DELIVERIES_KEY);
    if (existing) return { deliveries: existing.length };
    const now = Date.now();
    const fresh = (destination: "webhook" | "queue"): StoredDelivery => ({
      destination,
      kind: handoff.kind,
      deliveryId: crypto.randomUUID(),
      state: "pending",
      nextAttemptAt: now,
      attempts: [],
      attemptCount: 0,
    });
    const deliveries: StoredDelivery[] = [];
    const { webhook, queue } = handoff.destination;
    if (webhook) deliveries.push({ ...fresh("webhook"), url: webhook.url, secretEncrypted: webhook.secretEncrypted });
    if (queue !== undefined) deliveries.push({ ...fresh("queue"), queue });
    const header: DeliveryHeader = {
      requestId: handoff.requestId,
      namespace: handoff.namespace,
      functionName: handoff.functionName,
      type: handoff.type,
      endedAt: handoff.endedAt,
    };
    this.ctx.storage.sql.exec(RECORD_TABLE_SQL);
    this.ctx.storage.sql.exec(
      "INSERT INTO delivery_record (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json",
      handoff.recordJson,
    );
    await this.ctx.storage.put<DeliveryHeader | StoredDelivery[]>({
      [HEADER_KEY]: header,
      [DELIVERIES_KEY]: deliveries,
    });
    await this.ctx.storage.setAlarm(now);
    return { deliveries: deliveries.length };
  }

  /** The event is deleted: the deliveries and their log go too (pending ones are no longer sent). */
  async expire(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** The deliveries and their logs ([] when the event had none). Reads only: it writes nothing. */
  async view(): Promise<PublicDelivery[]> {
    const deliveries = (await this.ctx.storage.get<StoredDelivery[]>(DELIVERIES_KEY)) ?? [];
    return deliveries.map((delivery) => ({
      destination: delivery.destination,
      kind: delivery.kind,
      deliveryId: delivery.deliveryId,
      state: delivery.state,
      attempts: delivery.attempts,
      attemptCount: delivery.attemptCount,
      nextAttemptAt: delivery.nextAttemptAt !== null ? new Date(delivery.nextAttemptAt).toISOString() : null,
    }));
  }

  /**
   * Sends every due delivery once, then re-arms for the next due one, or at least for the expiry
   * (the cleanup). An attempt that throws is logged as a failed attempt with its error.
   */
  override async alarm(): Promise<void> {
    const header = await this.ctx.storage.get<DeliveryHeader>(HEADER_KEY);
    const deliveries = await this.ctx.storage.get<StoredDelivery[]>(DELIVERIES_KEY);
    if (!header || !deliveries) {
      // Nothing was handed over (or it is half-written): nothing to send, nothing to keep.
      await this.ctx.storage.deleteAll();
      return;
    }
    // The event deletes it (expire) by its namespace's retention; this is the backstop.
    const expiresAt = header.endedAt + MAX_RETENTION_MS;
    if (Date.now() >= expiresAt) {
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      return;
    }
    let recordJson: string | undefined;
    try {
      recordJson = this.ctx.storage.sql
        .exec<{ json: string }>("SELECT json FROM delivery_record WHERE id = 1")
        .toArray()[0]?.json;
    } catch (error) {
      console.error("result delivery record unreadable", header.requestId, errorText(error));
    }
    const baseMs = retryBaseOf((this.env as unknown as Record<string, unknown>).DELIVERY_RETRY_BASE_MS);
    const updated: StoredDelivery[] = [];
    for (const delivery of deliveries) {
      const due =
        delivery.state === "pending" && delivery.nextAttemptAt !== null && delivery.nextAttemptAt <= Date.now();
      updated.push(due ? await this.attempt(header, recordJson, delivery, baseMs) : delivery);
      // Each attempt's log is stored as soon as it is known.
      await this.ctx.storage.put(DELIVERIES_KEY, [...updated, ...deliveries.slice(updated.length)]);
    }
    const next = updated
      .filter((delivery) => delivery.state === "pending" && delivery.nextAttemptAt !== null)
      .map((delivery) => delivery.nextAttemptAt as number);
    await this.ctx.storage.setAlarm(Math.min(expiresAt, ...next));
  }

  /** One attempt of one delivery, logged; the delivery after it. It never throws. */
  private async attempt(
    header: DeliveryHeader,
    recordJson: string | undefined,
    delivery: StoredDelivery,
    baseMs: number,
  ): Promise<StoredDelivery> {
    const startedAt = Date.now();
    let outcome: AttemptOutcome;
    try {
      if (recordJson === undefined) throw new Error("the end record is missing from the delivery's storage");
      const body = deliveryBody(header.type, delivery.deliveryId, recordJson);
      outcome =
        delivery.destination === "webhook"
          ? await this.sendWebhook(header, delivery, body)
          : await this.sendQueue(delivery, body);
    } catch (error) {
      outcome = { ok: false, statusCode: null, error: errorText(error) };
    }
    const finishedAt = Date.now();
    const log = logAttempt(delivery, {
      attempt: delivery.attemptCount + 1,
      at: new Date(startedAt).toISOString(),
      latencyMs: finishedAt - startedAt,
      statusCode: outcome.statusCode,
      error: outcome.error,
    });
    if (outcome.ok) return { ...delivery, ...log, state: "delivered", nextAttemptAt: null };
    const next = outcome.permanent ? undefined : nextAttemptAt(header.endedAt, finishedAt, log.attemptCount, baseMs);
    if (next === undefined) {
      console.warn("result delivery given up", header.requestId, delivery.destination, delivery.deliveryId);
      return { ...delivery, ...log, state: "failed", nextAttemptAt: null };
    }
    return { ...delivery, ...log, nextAttemptAt: next };
  }

  /** POSTs the signed body to the webhook: a 2xx within DELIVERY_ATTEMPT_TIMEOUT_MS succeeds. */
  private async sendWebhook(header: DeliveryHeader, delivery: StoredDelivery, body: string): Promise<AttemptOutcome> {
    if (delivery.url === undefined || delivery.secretEncrypted === undefined) {
      return { ok: false, statusCode: null, error: "webhook destination without url or secret" };
    }
    // Checked again at send time: a snapshot taken before the host rule may name a refused host.
    const urlProblem = webhookUrlProblem(delivery.url, allowsHttpWebhooks(this.env));
    if (urlProblem)
      return { ok: false, statusCode: null, error: urlProblem.slice(0, MAX_ATTEMPT_ERROR_CHARS), permanent: true };
    let secret: string;
    try {
      secret = await decryptSecret(
        this.env,
        webhookSecretContext(header.namespace, header.functionName, delivery.kind),
        delivery.secretEncrypted,
      );
    } catch {
      // Never the secret itself in a log or an error.
      return { ok: false, statusCode: null, error: "the webhook secret does not decrypt (MASTER_KEY changed?)" };
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = await deliverySignature(secret, timestamp, body);
    // Built inside attempt()'s try: a Request that cannot be built is a logged failed attempt.
    const request = new Request(delivery.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [DELIVERY_ID_HEADER]: delivery.deliveryId,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: `v1=${signature}`,
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_ATTEMPT_TIMEOUT_MS),
    });
    try {
      const response = await (testFetch ?? fetch)(request);
      await drainBounded(response).catch(() => undefined);
      const ok = response.status >= 200 && response.status < 300;
      return { ok, statusCode: response.status, error: ok ? null : `HTTP ${response.status}` };
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      return {
        ok: false,
        statusCode: null,
        error: timedOut ? `no answer within ${DELIVERY_ATTEMPT_TIMEOUT_MS} ms` : errorText(error),
      };
    }
  }

  /** Sends the record (the same JSON as the webhook body) to the queue binding DESTINATION_QUEUE_<N>. */
  private async sendQueue(delivery: StoredDelivery, body: string): Promise<AttemptOutcome> {
    const queue = delivery.queue !== undefined ? destinationQueue(this.env, delivery.queue) : undefined;
    if (!queue) return { ok: false, statusCode: null, error: `no queue binding for ${delivery.queue}` };
    const bytes = new TextEncoder().encode(body).byteLength;
    if (bytes > MAX_QUEUE_MESSAGE_BYTES) {
      return {
        ok: false,
        statusCode: null,
        error: `the record is ${bytes} bytes, over the queue message limit of ${MAX_QUEUE_MESSAGE_BYTES} bytes: not sent`,
        permanent: true,
      };
    }
    try {
      await queue.send(JSON.parse(body) as unknown, { contentType: "json" });
      return { ok: true, statusCode: null, error: null };
    } catch (error) {
      return { ok: false, statusCode: null, error: errorText(error) };
    }
  }
}
