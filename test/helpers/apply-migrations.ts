import { applyD1Migrations, env } from "cloudflare:test";

type Migrations = Parameters<typeof applyD1Migrations>[1];

// Setup file: runs before each test file in the Workers pool. Applying is idempotent. Every D1
// database takes the same migrations: DB and the further event index database (INDEX_DB_1).
const migrations = (env as unknown as { TEST_MIGRATIONS: Migrations }).TEST_MIGRATIONS;
await applyD1Migrations(env.DB, migrations);
await applyD1Migrations(env.INDEX_DB_1, migrations);
