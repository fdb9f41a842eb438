import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  addrInUseMessage,
  byHandCommand,
  denoCommand,
  startupHint,
  TASK_TEMPLATES,
} from "./startup_hint.ts";

Deno.test("TASK_TEMPLATES with ./data are deno.json's node and proxy tasks", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const role of ["node", "proxy"] as const) {
    const line = TASK_TEMPLATES[role].replace("{READ}", "./data").replace("{WRITE}", "./data");
    assertEquals(line, tasks[role]);
  }
});

Deno.test("byHandCommand() adds exactly the given paths, keeps the task's flags and quotes", () => {
  const cmd = byHandCommand(
    "node",
    { read: ["/etc/ringkv/cert.pem"], write: ["/srv/ringkv/n1"] },
    ["--data", "/srv/ringkv/n1", "--id", "it's"],
  );
  assertEquals(
    cmd,
    "MALLOC_MMAP_THRESHOLD_=65536 deno run --allow-net " +
      "--allow-read=./data,/srv/ringkv/n1,/etc/ringkv/cert.pem --allow-write=./data,/srv/ringkv/n1 " +
      "'--allow-env=RINGKV_*' --v8-flags=--expose-gc,--heap-growing-percent=50 node/main.ts " +
      "--data /srv/ringkv/n1 --id 'it'\\''s'",
  );
});

Deno.test("startupHint() names the port and the remedy, and the command for a path outside ./data", () => {
  const where = { host: "127.0.0.1", port: 7001, paths: { read: [], write: ["/srv/a"] }, args: [] };
  assertEquals(
    startupHint("node", new Deno.errors.AddrInUse("Address already in use (os error 98)"), where),
    addrInUseMessage("node", "127.0.0.1", 7001),
  );
  assertMatch(addrInUseMessage("proxy", "127.0.0.1", 8080), /port 8080.*--port N.*stop/);
  // Only a port Linux also gives outgoing connections may be held by a closed one (TIME_WAIT).
  assert(!addrInUseMessage("proxy", "127.0.0.1", 8080).includes("closed"));
  assertMatch(
    addrInUseMessage("proxy", "127.0.0.1", 47700),
    /listens on port 47700, or a connection that closed in the last minute still holds it: 32768-60999 .* pick a port below 32768\)/,
  );
  const denied = new Deno.errors.NotCapable(
    'Requires write access to "/srv/a", run again with the --allow-write flag',
  );
  const hint = startupHint("proxy", denied, where)!;
  assertMatch(hint, /^Requires write access to "\/srv\/a"\. deno task proxy may read/);
  assertEquals(hint.includes("run again with"), false, "no advice the task rejects");
  assertEquals(hint.split("\n  ")[1], byHandCommand("proxy", where.paths, []));
  assertEquals(startupHint("node", new Error("other"), where), undefined);
});

Deno.test("startupHint() names a --host that is no address of this machine, and the remedy", () => {
  const where = { host: "10.9.9.9", port: 7001, paths: { read: [], write: [] }, args: [] };
  const missing = new Deno.errors.AddrNotAvailable("Cannot assign requested address (os error 99)");
  assertEquals(
    startupHint("node", missing, where),
    "Cannot start the node on 10.9.9.9:7001: Cannot assign requested address (os error 99). " +
      "Give --host an address of this machine (127.0.0.1, 0.0.0.0 for every interface, or one " +
      "of its own addresses)",
  );
  const unknown = new Error("failed to lookup address information: Name or service not known");
  assertMatch(
    startupHint("proxy", unknown, { ...where, host: "nosuchhost.invalid" })!,
    /^Cannot start the proxy on nosuchhost\.invalid:7001: failed to lookup .*Give --host/,
  );
});

Deno.test("byHandCommand() prints no token: each secret flag's value comes from its variable", () => {
  const cmd = byHandCommand("proxy", { read: [], write: ["/srv/p"] }, [
    "--admin-token",
    "aaaa-admin-0123456789",
    "--cluster-secret=bbbb-secret-0123456789",
    "--client-token",
    "cccc-client-0123456789",
    "--data",
    "/srv/p",
  ]);
  for (const token of ["aaaa-admin", "bbbb-secret", "cccc-client"]) {
    assertEquals(cmd.includes(token), false, cmd);
  }
  assertMatch(
    cmd,
    / proxy\/main\.ts --admin-token "\$\{RINGKV_ADMIN_TOKEN:\?[^}]+\}" --cluster-secret "\$\{RINGKV_CLUSTER_SECRET:\?[^}]+\}" --client-token "\$\{RINGKV_CLIENT_TOKEN:\?[^}]+\}" --data \/srv\/p$/,
  );
});

Deno.test("startupHint() says where the redacted tokens come from", () => {
  const where = {
    host: "127.0.0.1",
    port: 8080,
    paths: { read: [], write: ["/tmp/x"] },
    args: ["--cluster-secret", "bbbb-secret-0123456789", "--data", "/tmp/x"],
  };
  const denied = new Deno.errors.NotCapable('Requires read access to "/tmp/x", run again with');
  const hint = startupHint("node", denied, where)!;
  assertEquals(hint.includes("bbbb-secret"), false, hint);
  assertMatch(
    hint,
    /--cluster-secret not shown: the command takes its value from RINGKV_CLUSTER_SECRET/,
  );
});

Deno.test("startupHint() for a path under /dev says Deno needs --allow-all and prints that command", () => {
  const where = {
    host: "127.0.0.1",
    port: 7001,
    paths: { read: [], write: ["/dev/shm/n1"] },
    args: ["--data", "/dev/shm/n1"],
  };
  const denied = new Deno.errors.NotCapable(
    'Requires read access to "/dev/shm/n1", run again with the --allow-read flag',
  );
  const hint = startupHint("node", denied, where)!;
  assertMatch(
    hint,
    /only when it runs with --allow-all.*Use a directory elsewhere \(for a RAM disk/s,
  );
  assertEquals(
    hint.split("\n  ")[1],
    "MALLOC_MMAP_THRESHOLD_=65536 deno run --allow-all " +
      "--v8-flags=--expose-gc,--heap-growing-percent=50 node/main.ts --data /dev/shm/n1",
  );
  // A symlink into /dev: only Deno's own refusal of the listed path tells.
  const viaLink = new Deno.errors.NotCapable(
    'Requires all access to "/dev/shm/p", run again with the --allow-all flag',
  );
  const linked = { ...where, paths: { read: [], write: ["/srv/link"] }, args: [] };
  assertMatch(
    startupHint("proxy", viaLink, linked)!,
    /\n {2}deno run --allow-all proxy\/main\.ts$/,
  );
});

Deno.test("denoCommand() prints the running binary, or npx for npx's cached one", () => {
  assertEquals(denoCommand("/usr/local/bin/deno"), "/usr/local/bin/deno");
  assertEquals(denoCommand("/opt/my deno/deno"), "'/opt/my deno/deno'");
  assertEquals(
    denoCommand("/root/.npm/_npx/0a1b/node_modules/@deno/linux-x64/deno"),
    "npx --yes deno@2.9.6",
  );
});
