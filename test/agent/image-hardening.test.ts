// The sealed image of an image function (scripts/images.mjs, PROTOCOL.md §4), with real Docker: a
// hostile user Dockerfile (ENV NODE_OPTIONS/OPENSSL_CONF/LD_PRELOAD/AGENT_SPOOL_ROOT, an
// /etc/ld.so.preload, setuid/setgid binaries, a file capability, a pre-created world-writable
// /opt/afp and a /var/afp/spool symlink, USER 1000) builds, and none of it reaches the root agent;
// a Dockerfile ending in a line continuation is refused before any build. Skipped without Docker.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRAPPER = join(ROOT, "scripts", "docker-wrapper.sh");
const TAG_PREFIX = "afp-test-hardening";
const NAME = "hostile";
const FINAL_TAG = `${TAG_PREFIX}-image-${NAME}:local`;
const TOKEN = "t".repeat(64);

function docker(args: string[], timeout = 120_000) {
  return spawnSync(WRAPPER, args, { encoding: "utf8", timeout, maxBuffer: 64 * 1024 * 1024 });
}

const dockerAvailable = (() => {
  const version = spawnSync(WRAPPER, ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" });
  if (version.status !== 0) return false;
  // The base images must already be present (no network in the tests).
  return ["python:3.11-slim-bookworm", "node:22-bookworm-slim"].every(
    (image) => spawnSync(WRAPPER, ["image", "inspect", image], { encoding: "utf8" }).status === 0,
  );
})();

interface ImagesModule {
  syncImage(name: string, options: { force?: boolean; dir?: string; tagPrefix?: string }): unknown;
}

const HOSTILE = `FROM python:3.11-slim-bookworm
ENV NODE_OPTIONS="--require /tmp/x.js" OPENSSL_CONF=/evil.cnf AGENT_SPOOL_ROOT=/srv/spool AFP_IMAGE_MODE=0
RUN echo 'require("fs").writeFileSync("/tmp/pwned", "1")' > /tmp/x.js \\
 && echo /nonexistent-pwn.so > /etc/ld.so.preload \\
 && chmod u+s /bin/dash && cp /bin/dash /usr/local/bin/sgid-dash && chmod g+s /usr/local/bin/sgid-dash \\
 && cp /bin/dash /usr/local/bin/cap-dash \\
 && python3 -c 'import os, struct; os.setxattr("/usr/local/bin/cap-dash", "security.capability", struct.pack("=IIIII", 0x02000001, 8192, 0, 0, 0))' \\
 && mkdir -p /opt/afp /var/afp && touch /opt/afp/evil && chmod 777 /opt /opt/afp /var/afp && ln -s /tmp /var/afp/spool
USER 1000
WORKDIR /srv
CMD ["python3", "-c", "print(1)"]
`;

const PROBE = `
const fs = require("fs");
const out = {};
for (const p of ["/", "/opt", "/opt/afp", "/var/afp", "/var/afp/spool", "/tmp", "/bin/dash", "/usr/local/bin/sgid-dash"]) {
  const s = fs.lstatSync(p);
  out[p] = { uid: s.uid, mode: (s.mode & 0o7777).toString(8), link: s.isSymbolicLink() };
}
out.optAfpEvil = fs.existsSync("/opt/afp/evil");
out.pwned = fs.existsSync("/tmp/pwned");
const agent = fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).find((p) => {
  try { return fs.readFileSync("/proc/" + p + "/cmdline", "utf8").includes("/opt/afp/agent.mjs"); } catch { return false; }
});
out.agentEnv = fs.readFileSync("/proc/" + agent + "/environ", "utf8").split("\\0").filter(Boolean).map((e) => e.split("=")[0]).sort();
out.agentUid = fs.readFileSync("/proc/" + agent + "/status", "utf8").match(/Uid:\\s+(\\d+)/)[1];
fetch("http://127.0.0.1:8080/health", { headers: { authorization: "Bearer ${TOKEN}" } })
  .then(async (r) => { out.health = r.status; out.healthBody = await r.json(); process.stdout.write(JSON.stringify(out)); });
`;

describe.skipIf(!dockerAvailable)("sealed image functions (real Docker)", () => {
  let dir: string;
  let images: ImagesModule;
  let container = "";

  beforeAll(async () => {
    images = (await import(join(ROOT, "scripts", "images.mjs"))) as ImagesModule;
    dir = mkdtempSync(join(tmpdir(), "afp-hardening-"));
    writeFileSync(join(dir, "Dockerfile"), HOSTILE);
  }, 10_000);

  afterAll(() => {
    if (container) docker(["rm", "-f", container]);
    docker(["image", "rm", "-f", FINAL_TAG, `${TAG_PREFIX}-user-${NAME}:local`]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("builds a hostile Dockerfile into an image whose agent sees none of it", async () => {
    images.syncImage(NAME, { force: true, dir, tagPrefix: TAG_PREFIX });
    const inspect = JSON.parse(docker(["image", "inspect", FINAL_TAG]).stdout)[0].Config;
    expect(inspect.User ?? "").toBe("");
    expect(inspect.WorkingDir ?? "").toBe("");
    for (const item of inspect.Env as string[])
      expect(["PATH", "AGENT_PORT", "AFP_IMAGE_MODE"]).toContain(item.split("=")[0]);
    expect(inspect.Env).toContain("AFP_IMAGE_MODE=1");

    const run = docker(["run", "-d", "--network", "none", "-e", `AFP_AGENT_TOKEN=${TOKEN}`, FINAL_TAG]);
    expect(run.status, run.stderr).toBe(0);
    container = run.stdout.trim();
    let probe = { status: 1, stdout: "", stderr: "" } as ReturnType<typeof docker>;
    for (let attempt = 0; attempt < 40; attempt += 1) {
      probe = docker(["exec", container, "/opt/afp/bin/node", "-e", PROBE]);
      if (probe.status === 0 && probe.stdout) break;
      await new Promise((done) => setTimeout(done, 250));
    }
    expect(probe.status, probe.stderr).toBe(0);
    const seen = JSON.parse(probe.stdout);
    expect(seen.health).toBe(200);
    expect(seen.healthBody.image).toBe(NAME);
    expect(seen.agentUid).toBe("0");
    // (/proc/<pid>/environ is the environment the agent started with, the token included.)
    expect(seen.agentEnv).toEqual(["AFP_AGENT_TOKEN", "AFP_IMAGE_MODE", "AGENT_PORT", "HOME", "HOSTNAME", "PATH"]);
    expect(seen.pwned).toBe(false);
    expect(seen.optAfpEvil).toBe(false);
    for (const path of ["/", "/opt", "/opt/afp", "/var/afp"])
      expect(seen[path]).toEqual({ uid: 0, mode: "755", link: false });
    expect(seen["/var/afp/spool"]).toEqual({ uid: 0, mode: "700", link: false });
    expect(seen["/tmp"]).toEqual({ uid: 0, mode: "1777", link: false });
    expect(seen["/bin/dash"].mode).toBe("755");
    expect(seen["/usr/local/bin/sgid-dash"].mode).toBe("755");
    // The file capability is gone (no security.capability xattr).
    const caps = docker([
      "exec",
      container,
      "python3",
      "-c",
      "import os\ntry:\n  os.getxattr('/usr/local/bin/cap-dash', 'security.capability'); print('cap')\nexcept OSError: print('none')",
    ]);
    expect(caps.stdout.trim()).toBe("none");
    // The bundled loader never read the image's /etc/ld.so.preload.
    const logs = docker(["logs", container]);
    expect(`${logs.stdout}${logs.stderr}`).not.toMatch(/ld\.so\.preload|nonexistent-pwn/);
  }, 180_000);

  it("refuses a Dockerfile whose last instruction ends with a line continuation, before building", () => {
    const bad = mkdtempSync(join(tmpdir(), "afp-hardening-bad-"));
    try {
      writeFileSync(join(bad, "Dockerfile"), "FROM python:3.11-slim-bookworm\nUSER 1000\nRUN true \\\n");
      expect(() => images.syncImage("bad", { force: true, dir: bad, tagPrefix: TAG_PREFIX })).toThrow(
        /line continuation/,
      );
      expect(docker(["image", "inspect", `${TAG_PREFIX}-user-bad:local`]).status).not.toBe(0);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
