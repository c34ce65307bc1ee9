import { Hono } from "hono";
import { parseWith, readJson } from "../api/validation";
import { type AuthVariables, canAccessNamespace } from "../auth/credentials";
import { PlatformError } from "../shared/errors";
import {
  codeSchema,
  createFunctionSchema,
  functionNameSchema,
  listFunctionsQuerySchema,
  namespaceSchema,
  publicFunction,
  updateConfigurationSchema,
} from "./model";
import { FunctionRegistry } from "./registry";

type AppEnv = { Bindings: Env; Variables: AuthVariables };

/** Validates the namespace in the path and that the caller may see it (not-found otherwise). */
export function namespaceParam(principal: AuthVariables["principal"], raw: string | undefined): string {
  const namespace = parseWith(namespaceSchema, raw);
  if (!canAccessNamespace(principal, namespace)) {
    throw new PlatformError("NOT_FOUND", `namespace ${namespace} not found`);
  }
  return namespace;
}

function functionParam(raw: string | undefined): string {
  const parsed = functionNameSchema.safeParse(raw);
  if (!parsed.success) throw new PlatformError("INVALID_PARAMETER", `invalid function name: ${String(raw)}`);
  return parsed.data;
}

/** REST routes of the function registry under /v1/namespaces/:namespace/functions. */
export const functionRoutes = new Hono<AppEnv>()
  .post("/v1/namespaces/:namespace/functions", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const input = await readJson(c, createFunctionSchema);
    const row = await new FunctionRegistry(c.env).create(namespace, input);
    return c.json(publicFunction(row), 201);
  })
  .get("/v1/namespaces/:namespace/functions", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const query = parseWith(listFunctionsQuerySchema, c.req.query());
    const page = await new FunctionRegistry(c.env).list(namespace, query.offset, query.limit);
    return c.json({ total: page.total, functions: page.functions.map(publicFunction) });
  })
  .get("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const row = await new FunctionRegistry(c.env).get(namespace, functionParam(c.req.param("name")));
    return c.json(publicFunction(row));
  })
  .patch("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const name = functionParam(c.req.param("name"));
    const input = await readJson(c, updateConfigurationSchema, 1024 * 1024);
    const row = await new FunctionRegistry(c.env).updateConfiguration(namespace, name, input);
    return c.json(publicFunction(row));
  })
  .put("/v1/namespaces/:namespace/functions/:name/code", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const name = functionParam(c.req.param("name"));
    const input = await readJson(c, codeSchema);
    const row = await new FunctionRegistry(c.env).updateCode(namespace, name, input.zipFile);
    return c.json(publicFunction(row));
  })
  .delete("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    await new FunctionRegistry(c.env).delete(namespace, functionParam(c.req.param("name")));
    return c.body(null, 204);
  });
