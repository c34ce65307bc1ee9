// INDEX_DATABASES (db/index-databases.ts): which D1 database holds a namespace's event index.
import { describe, expect, it } from "vitest";
import {
  indexBindingOf,
  indexDatabaseOf,
  indexDatabases,
  MAX_INDEX_DATABASES_CHARS,
  MAX_MAPPED_NAMESPACES,
  parseIndexDatabases,
} from "../../worker/db/index-databases";

const bound = (binding: string) => binding === "INDEX_DB_1" || binding === "INDEX_DB_2";

/** A D1 stand-in that only has to be told apart (the resolver calls nothing on it). */
function database(name: string): D1Database {
  return { name, prepare: () => undefined, batch: async () => [] } as unknown as D1Database;
}

describe("parsing INDEX_DATABASES", () => {
  it("maps each named namespace to its bound index database", () => {
    const plan = parseIndexDatabases(" INDEX_DB_1=team-a|team-b , INDEX_DB_2=team-c", bound);
    expect([...plan.byNamespace]).toEqual([
      ["team-a", "INDEX_DB_1"],
      ["team-b", "INDEX_DB_1"],
      ["team-c", "INDEX_DB_2"],
    ]);
    expect(plan.problems).toEqual([]);
    expect(parseIndexDatabases("", bound).byNamespace.size).toBe(0);
    expect(parseIndexDatabases(undefined, bound).byNamespace.size).toBe(0);
  });

  it("ignores malformed entries, unbound or foreign bindings and a second mapping, naming each", () => {
    const plan = parseIndexDatabases(
      "team-a,DB=team-b,INDEX_DB_0=team-c,INDEX_DB_7=team-d,INDEX_DB_1=team-e|bad name!,INDEX_DB_2=team-e|team-f",
      bound,
    );
    expect([...plan.byNamespace]).toEqual([
      ["team-e", "INDEX_DB_1"],
      ["team-f", "INDEX_DB_2"],
    ]);
    expect(plan.problems).toHaveLength(6);
    expect(plan.problems.join("\n")).toMatch(/"bad name!", which is not a namespace/);
    expect(plan.problems.join("\n")).toMatch(/"team-a" is not/);
    expect(plan.problems.join("\n")).toMatch(/"DB=team-b" is not/);
    expect(plan.problems.join("\n")).toMatch(/INDEX_DB_7, which is not a D1 binding/);
    expect(plan.problems.join("\n")).toMatch(/maps team-e twice: INDEX_DB_1 kept/);
  });

  it("stops at MAX_MAPPED_NAMESPACES namespaces and at MAX_INDEX_DATABASES_CHARS characters", () => {
    const many = Array.from({ length: MAX_MAPPED_NAMESPACES + 5 }, (_, index) => `ns-${index}`);
    const plan = parseIndexDatabases(`INDEX_DB_1=${many.join("|")}`, bound);
    expect(plan.byNamespace.size).toBe(MAX_MAPPED_NAMESPACES);
    expect(plan.byNamespace.has(`ns-${MAX_MAPPED_NAMESPACES}`)).toBe(false);
    expect(plan.problems).toEqual([expect.stringMatching(/more than 1000 namespaces/)]);

    // Cut at the last whole entry: "team-b" is not shortened into another namespace's name.
    const filler = `INDEX_DB_2=${"x".repeat(MAX_INDEX_DATABASES_CHARS - 40)}`;
    const long = parseIndexDatabases(`INDEX_DB_1=team-a,${filler},INDEX_DB_1=team-b-and-more-letters`, bound);
    expect([...long.byNamespace.keys()]).toEqual(["team-a"]);
    expect(long.problems).toEqual([
      expect.stringMatching(/longer than/),
      expect.stringMatching(/which is not a namespace/),
    ]);
  });
});

describe("resolving a namespace's index database", () => {
  const DB = database("DB");
  const ONE = database("INDEX_DB_1");
  const TWO = database("INDEX_DB_2");
  const env = {
    DB,
    INDEX_DB_1: ONE,
    INDEX_DB_2: TWO,
    INDEX_DATABASES: "INDEX_DB_2=team-c,INDEX_DB_1=team-a",
    DISPATCH_QUEUES: "4",
  };

  it("answers the mapped database, and DB for every other namespace", () => {
    expect(indexDatabaseOf(env, "team-a")).toBe(ONE);
    expect(indexDatabaseOf(env, "team-c")).toBe(TWO);
    expect(indexDatabaseOf(env, "default")).toBe(DB);
    expect(indexBindingOf(env, "team-a")).toBe("INDEX_DB_1");
    expect(indexBindingOf(env, "default")).toBe("DB");
  });

  it("lists every index database, DB first, with the namespaces mapped to each, mapped or not", () => {
    const unmapped = { ...env, INDEX_DATABASES: "INDEX_DB_1=team-a" };
    expect(indexDatabases(unmapped).map(({ binding, db, namespaces }) => [binding, db, namespaces])).toEqual([
      ["DB", DB, undefined],
      ["INDEX_DB_1", ONE, ["team-a"]],
      ["INDEX_DB_2", TWO, []],
    ]);
  });

  it("follows a changed mapping on the same environment", () => {
    const changing = { ...env };
    expect(indexDatabaseOf(changing, "team-a")).toBe(ONE);
    changing.INDEX_DATABASES = "INDEX_DB_2=team-a";
    expect(indexDatabaseOf(changing, "team-a")).toBe(TWO);
  });
});
