// scripts/images.mjs (npm run image:add / image:sync / image:list), its pure parts: image-name and
// namespace validation, the CONTAINER_IMAGES format, the generated Dockerfile, image.json from
// `docker image inspect`, and the wrangler.toml edit (idempotent, only its own lines). No Docker.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface ImagesModule {
  IMAGES_BEGIN: string;
  IMAGES_END: string;
  MAX_IMAGES: number;
  imageNameProblem(name: unknown): string | null;
  parseNamespacesOption(value: string | undefined): string[];
  parseContainerImages(text: string): Map<string, string[]>;
  formatContainerImages(images: Map<string, string[]>): string;
  registeredImages(toml: string): Map<string, string[]>;
  editWranglerToml(toml: string, images: Map<string, string[]>): string;
  generateDockerfile(userDockerfile: string, name: string): string;
  imageJsonFromInspect(inspect: unknown, name: string): Record<string, unknown>;
  dockerignoreProblem(text: string): string | null;
  dockerfileProblem(text: string): string | null;
  imageEnvProblem(env: Record<string, string>): string | null;
  finalImageProblem(inspect: unknown): string | null;
  PLATFORM_ENTRYPOINT: string[];
}
const images = (await import(join(ROOT, "scripts", "images.mjs"))) as ImagesModule;

const repoToml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");

describe("image names", () => {
  it("accepts lower-case names of letters, digits and hyphens starting with a letter", () => {
    for (const name of ["flask-sample", "a", "go-app2", `a${"b".repeat(62)}`])
      expect(images.imageNameProblem(name)).toBeNull();
  });

  it("refuses upper case, leading digits or hyphens, other characters, over 63 characters and the reserved runtime", () => {
    for (const name of ["Flask", "1app", "-app", "app_1", "app.1", "a/b", "", `a${"b".repeat(63)}`, "runtime"]) {
      expect(images.imageNameProblem(name)).toMatch(/image name/);
    }
  });
});

describe("--namespaces", () => {
  it("defaults to the default namespace and reads a comma list without duplicates", () => {
    expect(images.parseNamespacesOption(undefined)).toEqual(["default"]);
    expect(images.parseNamespacesOption("team-a, default,team-a")).toEqual(["team-a", "default"]);
    expect(images.parseNamespacesOption("*")).toEqual(["*"]);
  });

  it("refuses an empty list, '*' mixed with names and invalid namespace names", () => {
    expect(() => images.parseNamespacesOption("")).toThrow(/at least one/);
    expect(() => images.parseNamespacesOption("*,default")).toThrow(/cannot be combined/);
    expect(() => images.parseNamespacesOption("bad name")).toThrow(/namespace "bad name" is invalid/);
    expect(() => images.parseNamespacesOption("a|b")).toThrow(/invalid/);
  });
});

describe("CONTAINER_IMAGES", () => {
  it("round-trips names, namespace lists and '*' in a stable order", () => {
    const parsed = images.parseContainerImages("zeta=*, flask-sample=default|team-a");
    expect([...parsed]).toEqual([
      ["zeta", ["*"]],
      ["flask-sample", ["default", "team-a"]],
    ]);
    expect(images.formatContainerImages(parsed)).toBe("flask-sample=default|team-a,zeta=*");
    expect(images.parseContainerImages("")).toEqual(new Map());
  });

  it("refuses entries it cannot read instead of dropping them", () => {
    expect(() => images.parseContainerImages("flask-sample")).toThrow(/has no namespaces/);
    expect(() => images.parseContainerImages("Bad=default")).toThrow(/invalid/);
    expect(() => images.parseContainerImages("a=default,a=*")).toThrow(/listed twice/);
    expect(() => images.parseContainerImages("a=*|default")).toThrow(/mixes/);
    expect(() => images.parseContainerImages("a=bad ns")).toThrow(/namespace "bad ns"/);
    const tooMany = Array.from({ length: images.MAX_IMAGES + 1 }, (_, index) => `i${index}=*`).join(",");
    expect(() => images.parseContainerImages(tooMany)).toThrow(/at most/);
  });

  it("the repository registers flask-sample for every namespace", () => {
    expect(images.registeredImages(repoToml).get("flask-sample")).toEqual(["*"]);
  });
});

describe("wrangler.toml edit", () => {
  const registered = new Map([
    ["flask-sample", ["*"]],
    ["go-app", ["default", "team-a"]],
  ]);

  it("writes one table per image between the markers and the CONTAINER_IMAGES line, nothing else", () => {
    const edited = images.editWranglerToml(repoToml, registered);
    expect(edited).toContain('CONTAINER_IMAGES = "flask-sample=*,go-app=default|team-a"');
    expect(edited).toContain(
      '[containers.images.go-app]\ndockerfile = "./containers/images/go-app/.afp/Dockerfile"\nbuild_context = "./containers/images/go-app"\n',
    );
    const outside = (text: string) => {
      const begin = text.indexOf(images.IMAGES_BEGIN);
      const end = text.indexOf(images.IMAGES_END);
      return (text.slice(0, begin) + text.slice(end)).replace(/^CONTAINER_IMAGES = .*$/m, "");
    };
    expect(outside(edited)).toBe(outside(repoToml));
  });

  it("is idempotent, and registering the repository's own images again leaves the file unchanged", () => {
    const once = images.editWranglerToml(repoToml, registered);
    expect(images.editWranglerToml(once, registered)).toBe(once);
    expect(images.editWranglerToml(repoToml, images.registeredImages(repoToml))).toBe(repoToml);
  });

  it("removing every image leaves the markers with nothing between them", () => {
    const edited = images.editWranglerToml(repoToml, new Map());
    expect(edited).toContain(`${images.IMAGES_BEGIN}\n${images.IMAGES_END}`);
    expect(edited).toContain('CONTAINER_IMAGES = ""');
  });

  it("refuses a file without the markers or the var, or with the markers twice", () => {
    expect(() => images.editWranglerToml(repoToml.replace(images.IMAGES_BEGIN, "# gone"), registered)).toThrow(
      /marker/,
    );
    expect(() => images.editWranglerToml(repoToml.replace(/^CONTAINER_IMAGES = .*$/m, ""), registered)).toThrow(
      /CONTAINER_IMAGES/,
    );
    const twice = `${repoToml}\n${images.IMAGES_BEGIN}\n${images.IMAGES_END}\n`;
    expect(() => images.editWranglerToml(twice, registered)).toThrow(/once each/);
  });
});

describe("generated Dockerfile", () => {
  const flaskDockerfile = readFileSync(join(ROOT, "containers", "images", "flask-sample", "Dockerfile"), "utf8");

  it("holds the platform stage first, the user's Dockerfile verbatim, then the seal stage and a flattened image", () => {
    const generated = images.generateDockerfile(flaskDockerfile, "flask-sample");
    const bundleAt = generated.indexOf("FROM node:22-bookworm-slim AS afp-bundle");
    const userAt = generated.indexOf("FROM python:3.11-slim-bookworm AS afp-user-final\n");
    const userRest = flaskDockerfile.slice(flaskDockerfile.indexOf("# Debian's Flask")).trimEnd();
    const sealAt = generated.indexOf("FROM afp-bundle AS afp-seal\nCOPY --from=afp-user-final / /rootfs\n");
    const finalAt = generated.indexOf("FROM scratch\nCOPY --from=afp-seal /rootfs /\n");
    expect(bundleAt).toBeGreaterThan(0);
    expect(userAt).toBeGreaterThan(bundleAt);
    expect(generated.indexOf(userRest)).toBeGreaterThan(userAt);
    expect(sealAt).toBeGreaterThan(generated.indexOf(userRest));
    expect(finalAt).toBeGreaterThan(sealAt);
    const seal = generated.slice(sealAt, finalAt);
    expect(seal).toContain("rm -rf /rootfs/opt/afp /rootfs/var/afp");
    expect(seal).toContain("find /rootfs -xdev -perm /6000 -type f -exec chmod ug-s {} +");
    expect(seal).toContain("setcap -r");
    expect(seal).toContain("chmod 1777 /rootfs/tmp");
    expect(seal).toContain("chmod 0700 /rootfs/var/afp/spool");
    const final = generated.slice(finalAt);
    expect(final.trimEnd().split("\n")).toEqual([
      "FROM scratch",
      "COPY --from=afp-seal /rootfs /",
      "COPY --from=afp-bundle /opt/afp /opt/afp",
      "COPY --from=afp-bundle /afp-agent/ /opt/afp/",
      "ENV AGENT_PORT=8080 AFP_IMAGE_MODE=1",
      "EXPOSE 8080",
      'ENTRYPOINT ["/opt/afp/bin/tini", "--", "/opt/afp/bin/node", "--openssl-config=/opt/afp/openssl.cnf", "/opt/afp/agent.mjs"]',
    ]);
    expect(JSON.parse(final.trimEnd().split("\n").at(-1)?.slice("ENTRYPOINT ".length) ?? "")).toEqual(
      images.PLATFORM_ENTRYPOINT,
    );
    // Nothing of the user's configuration after the flattening: no USER, WORKDIR, CMD, other ENV.
    expect(final).not.toMatch(/^(USER|WORKDIR|CMD|RUN)\b/m);
  });

  it("keeps global ARGs before every FROM and the user's own final stage name", () => {
    const user = 'ARG BASE=python:3.11-slim-bookworm\nFROM $BASE AS build\nFROM build AS App\nCMD ["x"]\n';
    const generated = images.generateDockerfile(user, "app");
    const lines = generated.split("\n");
    const argAt = lines.indexOf("ARG BASE=python:3.11-slim-bookworm");
    const firstFrom = lines.findIndex((line) => line.startsWith("FROM "));
    expect(argAt).toBeGreaterThan(0);
    expect(argAt).toBeLessThan(firstFrom);
    expect(generated).toContain("FROM build AS App\n");
    expect(generated).toContain("COPY --from=App / /rootfs");
    expect(generated).not.toContain("afp-user-final");
  });

  it("refuses parser directives, heredocs, a trailing line continuation and afp- stage names", () => {
    const refused: [string, RegExp][] = [
      ["# syntax=docker/dockerfile:1\nFROM scratch\n", /parser directive/],
      ["#escape=`\nFROM scratch\n", /parser directive/],
      ["# check=skip=all\nFROM scratch\n", /parser directive/],
      ["\uFEFF# syntax=evil/frontend\nFROM scratch\n", /parser directive/],
      ["FROM debian\nRUN <<EOF\necho hi\nEOF\n", /heredoc/],
      ["FROM debian\nCOPY <<-'X' /a\nX\n", /heredoc/],
      ["FROM debian\nUSER 1000\nRUN true \\\n", /line continuation/],
      ["FROM debian\nRUN true \\  \n\n# a comment\n\n", /line continuation/],
      ["FROM debian AS afp-seal\nRUN true\n", /reserved/],
    ];
    for (const [text, pattern] of refused) {
      expect(images.dockerfileProblem(text), text).toMatch(pattern);
      expect(() => images.generateDockerfile(text, "app"), text).toThrow(pattern);
    }
    for (const text of [
      flaskDockerfile,
      '# a comment = fine later\nFROM debian\n# syntax=x is a comment here\nRUN a \\\n  b\nCMD ["x"]\n',
    ]) {
      expect(images.dockerfileProblem(text), text).toBeNull();
    }
  });

  it("shifts numeric stage references by the platform's stage and leaves named ones", () => {
    const user =
      "FROM golang AS build\nRUN go build\nFROM scratch\nCOPY --from=0 /app /app\nCOPY --from=build /b /b\nRUN --mount=type=cache,from=0,target=/c true\n";
    const generated = images.generateDockerfile(user, "app");
    expect(generated).toContain("COPY --from=1 /app /app");
    expect(generated).toContain("COPY --from=build /b /b");
    expect(generated).toContain("RUN --mount=type=cache,from=1,target=/c true");
  });

  it("refuses a Dockerfile without FROM and an invalid image name", () => {
    expect(() => images.generateDockerfile("# nothing\nRUN true\n", "app")).toThrow(/no FROM/);
    expect(() => images.generateDockerfile(flaskDockerfile, "Bad")).toThrow(/invalid/);
  });
});

describe(".dockerignore", () => {
  it("refuses broad patterns that hide the platform's .afp/ files unless a later line brings them back", () => {
    for (const text of ["*\n", ".*\n", ".afp/\n", "node_modules\n./.afp\n", "!.afp\n*\n"]) {
      expect(images.dockerignoreProblem(text)).toMatch(/!\.afp/);
    }
    for (const text of ["", "node_modules\n*.pyc\n", "*\n!app.py\n!.afp\n", "# .afp\n"]) {
      expect(images.dockerignoreProblem(text)).toBeNull();
    }
  });
});

describe("image ENV bounds and the built image's check", () => {
  it("refuses more than 256 variables, invalid names and over 64 KiB in all", () => {
    expect(images.imageEnvProblem({ PATH: "/bin", _A1: "x" })).toBeNull();
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, index) => [`V${index}`, "x"]));
    expect(images.imageEnvProblem(many)).toMatch(/257 variables/);
    expect(images.imageEnvProblem({ "A-B": "x" })).toMatch(/invalid/);
    expect(images.imageEnvProblem({ "1A": "x" })).toMatch(/invalid/);
    expect(images.imageEnvProblem({ A: "x".repeat(65 * 1024) })).toMatch(/bytes/);
  });

  it("accepts only the platform's user, entry, empty CMD and ENV", () => {
    const good = {
      Config: {
        User: "",
        Entrypoint: images.PLATFORM_ENTRYPOINT,
        Cmd: null,
        Env: ["PATH=/usr/bin:/bin", "AGENT_PORT=8080", "AFP_IMAGE_MODE=1"],
      },
    };
    expect(images.finalImageProblem(good)).toBeNull();
    expect(images.finalImageProblem({ Config: { ...good.Config, User: "0" } })).toBeNull();
    expect(images.finalImageProblem({ Config: { ...good.Config, User: "1000" } })).toMatch(/User/);
    expect(images.finalImageProblem({ Config: { ...good.Config, Entrypoint: ["/bin/sh"] } })).toMatch(/Entrypoint/);
    expect(images.finalImageProblem({ Config: { ...good.Config, Cmd: ["x"] } })).toMatch(/Cmd/);
    expect(
      images.finalImageProblem({ Config: { ...good.Config, Env: [...good.Config.Env, "NODE_OPTIONS=--require /x"] } }),
    ).toMatch(/NODE_OPTIONS/);
    expect(images.finalImageProblem({ Config: { ...good.Config, Env: ["AGENT_PORT=8080"] } })).toMatch(
      /lacks AFP_IMAGE_MODE/,
    );
  });
});

describe("image.json", () => {
  it("takes the entry, working directory, environment and user from docker image inspect", () => {
    const inspect = {
      Config: {
        Entrypoint: ["/bin/sh", "-c", "exec app"],
        Cmd: ["--port", "9000"],
        WorkingDir: "/srv",
        Env: ["PATH=/usr/bin:/bin", "GREETING=a=b"],
        User: "app",
      },
    };
    expect(images.imageJsonFromInspect(inspect, "app")).toEqual({
      name: "app",
      entrypoint: ["/bin/sh", "-c", "exec app"],
      cmd: ["--port", "9000"],
      workingDir: "/srv",
      env: { PATH: "/usr/bin:/bin", GREETING: "a=b" },
      user: "app",
    });
  });

  it("fills absent fields with empty values and / as the working directory", () => {
    expect(images.imageJsonFromInspect({ Config: { Entrypoint: null, Cmd: null, WorkingDir: "" } }, "x")).toEqual({
      name: "x",
      entrypoint: [],
      cmd: [],
      workingDir: "/",
      env: {},
      user: "",
    });
  });
});
