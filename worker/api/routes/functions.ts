import { Hono } from "hono";
import { type AppEnv, visibleNamespace } from "../../auth/credentials";
import {
  codeSchema,
  createFunctionSchema,
  listFunctionsQuerySchema,
  publicFunction,
  updateConfigurationSchema,
} from "../../functions/model";
import { FunctionRegistry } from "../../functions/registry";
import { functionNameSchema } from "../../shared/names";
import { parseWith, readJson } from "../../shared/validation";

/** REST routes of the function registry under /v1/namespaces/:namespace/functions. */
export const functionRoutes = new Hono<AppEnv>()
  .post("/v1/namespaces/:namespace/functions", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const input = await readJson(c, createFunctionSchema);
    const row = await new FunctionRegistry(c.env).create(namespace, input);
    return c.json(publicFunction(row), 201);
  })
  .get("/v1/namespaces/:namespace/functions", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const query = parseWith(listFunctionsQuerySchema, c.req.query());
    const page = await new FunctionRegistry(c.env).list(namespace, query.offset, query.limit);
    return c.json({ total: page.total, functions: page.functions.map(publicFunction) });
  })
  .get("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const row = await new FunctionRegistry(c.env).get(namespace, parseWith(functionNameSchema, c.req.param("name")));
    return c.json(publicFunction(row));
  })
  .patch("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const name = parseWith(functionNameSchema, c.req.param("name"));
    const input = await readJson(c, updateConfigurationSchema, 1024 * 1024);
    const row = await new FunctionRegistry(c.env).updateConfiguration(namespace, name, input);
    return c.json(publicFunction(row));
  })
  .put("/v1/namespaces/:namespace/functions/:name/code", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const name = parseWith(functionNameSchema, c.req.param("name"));
    const input = await readJson(c, codeSchema);
    const row = await new FunctionRegistry(c.env).updateCode(namespace, name, input.zipFile);
    return c.json(publicFunction(row));
  })
  .delete("/v1/namespaces/:namespace/functions/:name", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    await new FunctionRegistry(c.env).delete(namespace, parseWith(functionNameSchema, c.req.param("name")));
    return c.body(null, 204);
  });
