import { defineConfig } from "drizzle-kit";

// `npm run db:generate` writes flat SQL migrations into migrations/, which wrangler applies.
export default defineConfig({
  dialect: "sqlite",
  schema: "./worker/db/schema.ts",
  out: "./migrations",
});
