#!/usr/bin/env node
// `npm run keys -- <command>`: manages API credentials (SecretId/SecretKey pairs scoped to
// namespaces) through the platform's admin API, authenticated with the development pair.
//
//   npm run keys -- create --namespace default [--namespace other] [--description "ci"]
//   npm run keys -- list
//   npm run keys -- revoke AKID...
//   npm run keys -- reencrypt        (after a MASTER_KEY rotation: rewrites every stored key)
//
// Environment: AFP_ENDPOINT (default http://127.0.0.1:$PORT, PORT default 8787); DEV_SECRET_ID
// and DEV_SECRET_KEY (default: read from $AFP_STATE_DIR/dev-credentials.env, as npm start wrote it).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = resolve(process.env.AFP_STATE_DIR ?? join(root, ".state"));
const endpoint = process.env.AFP_ENDPOINT ?? `http://127.0.0.1:${process.env.PORT ?? "8787"}`;

function adminCredentials() {
  if (process.env.DEV_SECRET_ID && process.env.DEV_SECRET_KEY) {
    return { id: process.env.DEV_SECRET_ID, key: process.env.DEV_SECRET_KEY };
  }
  const file = join(stateDir, "dev-credentials.env");
  if (!existsSync(file)) {
    console.error(`no credentials: set DEV_SECRET_ID and DEV_SECRET_KEY, or run npm start first (${file})`);
    process.exit(2);
  }
  const text = readFileSync(file, "utf8");
  return { id: /^DEV_SECRET_ID=(.*)$/m.exec(text)?.[1], key: /^DEV_SECRET_KEY=(.*)$/m.exec(text)?.[1] };
}

async function call(method, path, body) {
  const { id, key } = adminCredentials();
  const response = await fetch(`${endpoint}${path}`, {
    method,
    headers: { authorization: `Bearer ${id}:${key}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    console.error(`${method} ${path}: ${response.status} ${payload.error?.code ?? ""} ${payload.error?.message ?? ""}`);
    process.exit(1);
  }
  return payload;
}

const [command, ...rest] = process.argv.slice(2);
if (command === "create") {
  const namespaces = [];
  let description = "";
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--namespace") namespaces.push(rest[++i]);
    else if (rest[i] === "--description") description = rest[++i] ?? "";
  }
  if (namespaces.length === 0) {
    console.error("usage: npm run keys -- create --namespace NAME [--namespace NAME ...] [--description TEXT]");
    process.exit(2);
  }
  const created = await call("POST", "/v1/admin/credentials", { namespaces, description });
  console.log(`SecretId:   ${created.secretId}`);
  console.log(`SecretKey:  ${created.secretKey}`);
  console.log(`Namespaces: ${created.namespaces.join(", ")}`);
  console.log("The SecretKey is shown once: store it now.");
} else if (command === "list") {
  const { credentials } = await call("GET", "/v1/admin/credentials");
  for (const entry of credentials) {
    console.log(
      `${entry.secretId}  ${entry.namespaces.join(",")}  ${entry.revokedAt ? `revoked ${entry.revokedAt}` : "active"}  ${entry.description}`,
    );
  }
} else if (command === "revoke" && rest[0]) {
  const revoked = await call("DELETE", `/v1/admin/credentials/${encodeURIComponent(rest[0])}`);
  console.log(`revoked ${revoked.secretId} at ${revoked.revokedAt}`);
} else if (command === "reencrypt") {
  const outcome = await call("POST", "/v1/admin/credentials/reencrypt");
  console.log(`re-encrypted ${outcome.rewritten}, already current ${outcome.current}`);
  const hooks = outcome.webhookSecrets ?? { rewritten: 0, current: 0, undecryptable: [] };
  console.log(`webhook secrets: re-encrypted ${hooks.rewritten}, already current ${hooks.current}`);
  const undecryptable = [...outcome.undecryptable, ...hooks.undecryptable];
  if (undecryptable.length > 0) {
    console.error(`not decryptable with MASTER_KEY or MASTER_KEY_PREVIOUS: ${undecryptable.join(", ")}`);
    process.exit(1);
  }
} else {
  console.error("usage: npm run keys -- create --namespace NAME | list | revoke SECRET_ID | reencrypt");
  process.exit(2);
}
