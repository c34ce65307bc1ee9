import { Hono } from "hono";
import { z } from "zod";
import { CredentialStore } from "../../auth/credential-store";
import { type AppEnv, requireAdmin } from "../../auth/credentials";
import { readJson } from "../../shared/validation";

const createCredentialSchema = z.strictObject({
  namespaces: z.array(z.string().min(1).max(30)).min(1).max(100),
  description: z.string().max(200).default(""),
});

/** Credential management for administrators (the development pair): create, list, revoke, re-encrypt. */
export const adminRoutes = new Hono<AppEnv>()
  .use("/v1/admin/*", requireAdmin())
  .post("/v1/admin/credentials", async (c) => {
    const input = await readJson(c, createCredentialSchema, 64 * 1024);
    return c.json(await new CredentialStore(c.env).create(input.namespaces, input.description), 201);
  })
  .post("/v1/admin/credentials/reencrypt", async (c) => c.json(await new CredentialStore(c.env).reencryptAll()))
  .get("/v1/admin/credentials", async (c) => c.json({ credentials: await new CredentialStore(c.env).list() }))
  .delete("/v1/admin/credentials/:secretId", async (c) =>
    c.json(await new CredentialStore(c.env).revoke(c.req.param("secretId"))),
  );
