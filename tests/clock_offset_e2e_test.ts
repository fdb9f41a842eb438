/**
 * The test-only clock offset (shared/test_clock.ts) reaches real processes: a node or a proxy
 * started with `RINGKV_TEST_CLOCK_OFFSET_MS` stamps versions that far from the wall clock, as
 * the network fault runs' clock-skew kind needs (docs/replication.md, "Clock skew").
 */
import { assert } from "@std/assert";
import { join } from "@std/path";
import { parseVersion } from "../shared/version.ts";
import { TEST_CLOCK_ENV } from "../shared/test_clock.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const HOUR_MS = 3_600_000;
/** Far more than a PUT can take on a loaded machine, far less than the offset. */
const SLACK_MS = 10 * 60_000;

/** The wall time of the version (`ETag`) a PUT of `url` answers, and when the PUT began. */
async function putWall(url: string): Promise<{ wall: number; sentAt: number }> {
  const sentAt = Date.now();
  const res = await fetch(url, { method: "PUT", body: "v", signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const etag = res.headers.get("etag");
  assert(res.status === 201 && etag !== null, `PUT ${url}: ${res.status} ${text}`);
  return { wall: parseVersion(etag.slice(1, -1)).wall, sentAt };
}

/** Runs `body` with a temp dir and stops every process it started, pass or fail. */
async function withProcesses(
  body: (dir: string, running: ServerProcess[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-clock-" });
  const running: ServerProcess[] = [];
  try {
    await body(dir, running);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

function node(dir: string, id: string, env: Record<string, string> = {}) {
  return spawnServer({
    script: NODE,
    args: ["--id", id, "--port", "0", "--data", join(dir, id)],
    env,
  });
}

Deno.test("a node started with RINGKV_TEST_CLOCK_OFFSET_MS stamps versions that far ahead", async () => {
  await withProcesses(async (dir, running) => {
    running.push(await node(dir, "n1", { [TEST_CLOCK_ENV]: String(HOUR_MS) }));
    const { wall, sentAt } = await putWall(`${running[0]!.url}/kv/skewed`);
    assert(Math.abs(wall - (sentAt + HOUR_MS)) < SLACK_MS, `version wall ${wall}, sent ${sentAt}`);
  });
});

Deno.test("a proxy started with RINGKV_TEST_CLOCK_OFFSET_MS makes ballots that far ahead", async () => {
  await withProcesses(async (dir, running) => {
    for (const id of ["n1", "n2"]) running.push(await node(dir, id));
    const urls = running.map((n) => n.url).join(",");
    running.push(
      await spawnServer({
        script: PROXY,
        args: ["--port", "0", "--data", join(dir, "proxy"), "--nodes", urls, "--replicas", "2"],
        env: { [TEST_CLOCK_ENV]: String(HOUR_MS) },
      }),
    );
    const { wall, sentAt } = await putWall(`${running[2]!.url}/kv/skewed`);
    assert(Math.abs(wall - (sentAt + HOUR_MS)) < SLACK_MS, `version wall ${wall}, sent ${sentAt}`);
  });
});
