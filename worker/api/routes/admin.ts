import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { CredentialStore } from "../../auth/credential-store";
import { type AppEnv, requireAdmin } from "../../auth/credentials";
import { reencryptWebhookSecrets } from "../../functions/destinations";
import { readJson } from "../../shared/validation";
import { COMMON_ERROR_STATUSES, documentedJsonBody, errorResponses, jsonResponse, refuseInvalid } from "../openapi";

/** Largest body of a credential creation request. */
const MAX_CREDENTIAL_BODY_BYTES = 64 * 1024;

const createCredentialSchema = z.strictObject({
  namespaces: z.array(z.string().min(1).max(30)).min(1).max(100),
  description: z.string().max(200).default(""),
});

/** A credential as administrators see it (never its SecretKey, but on creation). */
const credentialSchema = z
  .object({
    secretId: z.string(),
    namespaces: z.array(z.string()).openapi({ description: '"*" is every namespace' }),
    description: z.string(),
    createdAt: z.string().openapi({ format: "date-time" }),
    revokedAt: z.string().nullable(),
  })
  .openapi("Credential");

const TAG = "Administration";
/** Answers of every administrator route: a caller who is no administrator gets NOT_FOUND. */
const ADMIN_ERRORS = errorResponses(...COMMON_ERROR_STATUSES);

const createCredential = createRoute({
  method: "post",
  path: "/v1/admin/credentials",
  tags: [TAG],
  // Administrators only, answered 404 to anyone else: the public document does not reveal them.
  hide: true,
  summary: "Create a credential (a SecretId and SecretKey) for some namespaces",
  description: `Administrators only. The body is at most ${MAX_CREDENTIAL_BODY_BYTES} bytes; the SecretKey is shown only here.`,
  request: { body: documentedJsonBody("CreateCredentialRequest", "Namespaces and a description") },
  responses: {
    201: jsonResponse("The credential with its SecretKey", credentialSchema.extend({ secretKey: z.string() })),
    ...ADMIN_ERRORS,
    ...errorResponses(413),
  },
});

const reencryptCredentials = createRoute({
  method: "post",
  path: "/v1/admin/credentials/reencrypt",
  tags: [TAG],
  // Administrators only, answered 404 to anyone else: the public document does not reveal them.
  hide: true,
  summary: "Re-encrypt every stored SecretKey under the current MASTER_KEY",
  description:
    "Administrators only: the last step of a MASTER_KEY rotation. Rewrites the stored SecretKeys and the webhook secrets of the functions' result destinations (`webhookSecrets`, undecryptable ones named namespace/function/kind).",
  responses: {
    200: jsonResponse(
      "What was rewritten",
      z.object({
        rewritten: z.number().int(),
        current: z.number().int(),
        undecryptable: z.array(z.string()),
        webhookSecrets: z.object({
          rewritten: z.number().int(),
          current: z.number().int(),
          undecryptable: z.array(z.string()),
        }),
      }),
    ),
    ...ADMIN_ERRORS,
  },
});

const listCredentials = createRoute({
  method: "get",
  path: "/v1/admin/credentials",
  tags: [TAG],
  // Administrators only, answered 404 to anyone else: the public document does not reveal them.
  hide: true,
  summary: "List the credentials",
  description: "Administrators only.",
  responses: {
    200: jsonResponse("Every credential", z.object({ credentials: z.array(credentialSchema) })),
    ...ADMIN_ERRORS,
  },
});

const revokeCredential = createRoute({
  method: "delete",
  path: "/v1/admin/credentials/{secretId}",
  tags: [TAG],
  // Administrators only, answered 404 to anyone else: the public document does not reveal them.
  hide: true,
  summary: "Revoke a credential",
  description: "Administrators only.",
  request: { params: z.object({ secretId: z.string() }) },
  responses: { 200: jsonResponse("The credential, revoked", credentialSchema), ...ADMIN_ERRORS },
});

/** Credential management for administrators (the development pair): create, list, revoke, re-encrypt. */
export const adminRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid });
adminRoutes.use("/v1/admin/*", requireAdmin());
adminRoutes
  .openapi(createCredential, async (c) => {
    const input = await readJson(c, createCredentialSchema, MAX_CREDENTIAL_BODY_BYTES);
    return c.json(await new CredentialStore(c.env).create(input.namespaces, input.description), 201);
  })
  .openapi(reencryptCredentials, async (c) => {
    const credentialsOutcome = await new CredentialStore(c.env).reencryptAll();
    const webhookSecrets = await reencryptWebhookSecrets(c.env);
    return c.json({ ...credentialsOutcome, webhookSecrets }, 200);
  })
  .openapi(listCredentials, async (c) => c.json({ credentials: await new CredentialStore(c.env).list() }, 200))
  .openapi(revokeCredential, async (c) =>
    c.json(await new CredentialStore(c.env).revoke(c.req.valid("param").secretId), 200),
  );
adminRoutes.openAPIRegistry.register("CreateCredentialRequest", createCredentialSchema);
