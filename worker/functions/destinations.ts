// Result destinations of a function's configuration: the checks that depend on the Worker's vars
// and bindings, and the stored form (webhook secrets encrypted under MASTER_KEY).
import { and, eq, isNotNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { encryptSecret, reencryptSecret } from "../auth/credential-store";
import { functions } from "../db/schema";
import { PlatformError } from "../shared/errors";
import {
  DESTINATION_KINDS,
  DESTINATION_QUEUE_PREFIX,
  type DestinationKind,
  type DestinationsInput,
  type StoredDestination,
  type StoredDestinations,
  webhookUrlProblem,
} from "./model";

/** The AES-GCM context a webhook secret is encrypted under: its function and kind. */
export function webhookSecretContext(namespace: string, functionName: string, kind: DestinationKind): string {
  return `webhook:${namespace}/${functionName}/${kind}`;
}

/** True when the var ALLOW_HTTP_WEBHOOKS is "true" (local runs: http to 127.0.0.1 or localhost). */
export function allowsHttpWebhooks(env: Env): boolean {
  return (env as unknown as Record<string, unknown>).ALLOW_HTTP_WEBHOOKS === "true";
}

/** The producer binding of a queue destination N (`DESTINATION_QUEUE_<N>`), or undefined when env has none. */
export function destinationQueue(env: Env, name: string): Queue<unknown> | undefined {
  const binding = (env as unknown as Record<string, unknown>)[`${DESTINATION_QUEUE_PREFIX}${name}`];
  if (typeof binding !== "object" || binding === null) return undefined;
  return typeof (binding as { send?: unknown }).send === "function" ? (binding as Queue<unknown>) : undefined;
}

/**
 * The destinations to store after a create (current: {}) or a configuration update: per kind,
 * absent keeps the current one, null removes it, a value replaces it (`input` null removes all).
 * Throws INVALID_PARAMETER for a refused URL or a queue without its binding.
 */
export async function nextDestinations(
  env: Env,
  namespace: string,
  functionName: string,
  input: DestinationsInput | null,
  current: StoredDestinations,
): Promise<StoredDestinations> {
  if (input === null) return {};
  const next: StoredDestinations = { ...current };
  for (const kind of DESTINATION_KINDS) {
    const given = input[kind];
    if (given === undefined) continue;
    if (given === null) {
      delete next[kind];
      continue;
    }
    const stored: StoredDestination = {};
    if (given.webhook) {
      const problem = webhookUrlProblem(given.webhook.url, allowsHttpWebhooks(env));
      if (problem) throw new PlatformError("INVALID_PARAMETER", `destinations.${kind}.${problem}`);
      stored.webhook = {
        url: given.webhook.url,
        secretEncrypted: await encryptSecret(
          env,
          webhookSecretContext(namespace, functionName, kind),
          given.webhook.secret,
        ),
      };
    }
    if (given.queue !== undefined) {
      if (!destinationQueue(env, given.queue)) {
        throw new PlatformError(
          "INVALID_PARAMETER",
          `destinations.${kind}.queue: no queue binding ${DESTINATION_QUEUE_PREFIX}${given.queue} in this deployment`,
        );
      }
      stored.queue = given.queue;
    }
    next[kind] = stored;
  }
  return next;
}

/** What the re-encryption of the webhook secrets did (undecryptable: `namespace/function/kind`). */
export interface WebhookSecretsReencryption {
  rewritten: number;
  current: number;
  undecryptable: string[];
}

/**
 * Re-encrypts every webhook secret of the functions' destinations (D1) under the current MASTER_KEY,
 * with the credentials' re-encryption (the last step of a MASTER_KEY rotation). A secret neither
 * key decrypts is listed and left. A row changed meanwhile is left as the change wrote it (its new
 * secrets are under MASTER_KEY already). Events already invoked carry their own copy in their
 * snapshot, which is not rewritten: MASTER_KEY_PREVIOUS decrypts it until they expire.
 */
export async function reencryptWebhookSecrets(env: Env): Promise<WebhookSecretsReencryption> {
  const db = drizzle(env.DB);
  const rows = await db
    .select({ namespace: functions.namespace, name: functions.name, destinations: functions.destinations })
    .from(functions)
    .where(isNotNull(functions.destinations));
  const outcome: WebhookSecretsReencryption = { rewritten: 0, current: 0, undecryptable: [] };
  for (const row of rows) {
    if (row.destinations === null) continue;
    const stored = JSON.parse(row.destinations) as StoredDestinations;
    let changed = 0;
    for (const kind of DESTINATION_KINDS) {
      const webhook = stored[kind]?.webhook;
      if (!webhook) continue;
      let cipher: string | undefined;
      try {
        cipher = await reencryptSecret(
          env,
          webhookSecretContext(row.namespace, row.name, kind),
          webhook.secretEncrypted,
        );
      } catch (error) {
        if (error instanceof PlatformError) throw error;
        outcome.undecryptable.push(`${row.namespace}/${row.name}/${kind}`);
        continue;
      }
      if (cipher === undefined) {
        outcome.current += 1;
        continue;
      }
      webhook.secretEncrypted = cipher;
      changed += 1;
    }
    if (changed === 0) continue;
    await db
      .update(functions)
      .set({ destinations: JSON.stringify(stored) })
      .where(
        and(
          eq(functions.namespace, row.namespace),
          eq(functions.name, row.name),
          eq(functions.destinations, row.destinations),
        ),
      );
    outcome.rewritten += changed;
  }
  return outcome;
}

/** The D1 column value of stored destinations: null when there are none. */
export function destinationsColumn(destinations: StoredDestinations): string | null {
  return Object.keys(destinations).length === 0 ? null : JSON.stringify(destinations);
}
