import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { clusterView, ProcessCluster } from "./helpers/process_cluster.ts";

const KEYS = 20;
const PROXY_ARGS = ["--timeout-ms", "1000", "--probe-ms", "200", "--anti-entropy-ms", "0"];

/** PUTs every key = `value` through the proxy; each must be acknowledged. */
async function putAll(proxyUrl: string, value: string): Promise<void> {
  for (let i = 0; i < KEYS; i++) {
    const res = await fetch(`${proxyUrl}/kv/w${i}`, {
      method: "PUT",
      body: value,
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    assert(res.status === 200 || res.status === 201, `PUT w${i}=${value}: ${res.status}`);
  }
}

/** GETs every key at once: "v2", "v1", "404", "503", ... per key. */
function readAll(proxyUrl: string): Promise<string[]> {
  return Promise.all(Array.from({ length: KEYS }, async (_, i) => {
    const res = await fetch(`${proxyUrl}/kv/w${i}`, { signal: AbortSignal.timeout(20_000) });
    const text = await res.text();
    return res.status === 200 ? text : String(res.status);
  }));
}

function signal(cluster: ProcessCluster, id: string, sig: Deno.Signal): void {
  Deno.kill(cluster.nodes.get(id)!.pid, sig);
}

/** SIGCONT to every node, in case the test stopped while one was paused. */
function resumeAll(cluster: ProcessCluster): void {
  for (const node of cluster.nodes.values()) {
    try {
      Deno.kill(node.pid, "SIGCONT");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof TypeError)) throw err;
    }
  }
}

Deno.test("a replica restarted on a wiped data directory does not vote until it has caught up (issue 12 part 2)", async () => {
  const cluster = await ProcessCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const p1 = await cluster.startProxy("p1", ["--nodes", urls, "--replicas", "3", ...PROXY_ARGS]);
    await putAll(p1.url, "v1");
    signal(cluster, "n2", "SIGSTOP");
    await putAll(p1.url, "v2"); // acknowledged by n1 and n3
    const n3Port = cluster.nodes.get("n3")!.port;
    await cluster.nodes.get("n3")!.kill("SIGKILL");
    await Deno.remove(join(cluster.dir, "n3"), { recursive: true });
    await p1.kill("SIGKILL"); // its hints for n2 go with it
    await cluster.startNode("n3", n3Port); // its old id, an empty directory
    signal(cluster, "n2", "SIGCONT");
    signal(cluster, "n1", "SIGSTOP");
    const p2 = await cluster.startProxy("p2", [
      "--join",
      cluster.nodes.get("n2")!.url,
      ...PROXY_ARGS,
    ]);

    // n1 is paused, n2 has v1, n3 is empty: no majority holds v2, so no answer but 503.
    const paused = await readAll(p2.url);
    const count = (rs: string[], r: string) => rs.filter((x) => x === r).length;
    console.log(`with n1 paused: ${count(paused, "503")} x 503, ${count(paused, "v2")} x v2`);
    const wrong = paused.filter((r) => r !== "v2" && r !== "503");
    assertEquals(wrong, [], `with n1 paused: ${paused.join(" ")}`);
    const view = await clusterView(p2.url);
    const n3 = view.nodes.find((n) => n.id === "n3") as { health?: { recovering?: boolean } };
    assertEquals(n3.health?.recovering, true, JSON.stringify(n3));

    // n1 back: n3 catches up from n1 and n2, then votes again; every key answers v2.
    signal(cluster, "n1", "SIGCONT");
    const deadline = Date.now() + 30_000;
    let last: string[] = [];
    while (Date.now() < deadline) {
      last = await readAll(p2.url);
      assertEquals(last.filter((r) => r !== "v2" && r !== "503"), [], last.join(" "));
      const v = await clusterView(p2.url);
      const voting = v.nodes.every((n) =>
        !(n as { health?: { recovering?: boolean } }).health?.recovering
      );
      if (last.every((r) => r === "v2") && voting) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assertEquals(last, Array(KEYS).fill("v2"));
    // n3 now holds v2 of every key itself, so n1 may go again: n2 + n3 answer v2.
    signal(cluster, "n1", "SIGSTOP");
    const without1 = await readAll(p2.url);
    assertEquals(without1, Array(KEYS).fill("v2"), without1.join(" "));
  } finally {
    resumeAll(cluster);
    await cluster.stop();
  }
});
