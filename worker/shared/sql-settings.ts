/**
 * A key/value `settings` table in a Durable Object's SQLite storage: the small named values an
 * object keeps beside its own tables (a scheduler's function name, a quota's cap).
 */
export class SqlSettings {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  get(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM settings WHERE key = ?", key).toArray()[0]?.value;
  }

  set(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  delete(key: string): void {
    this.sql.exec("DELETE FROM settings WHERE key = ?", key);
  }
}
