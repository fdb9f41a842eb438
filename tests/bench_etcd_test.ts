/**
 * The bench's etcd reference with the etcd installed here (skipped without it): 3 real
 * members start and elect a leader, the bench's keys load, its wrk script reads and writes
 * them linearizably through the JSON gateway, and stopping leaves no member running.
 * No timings are asserted.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import type { Child } from "../tasks/children.ts";
import { startEtcd } from "../tasks/bench/etcd_cluster.ts";
import { benchValue, loadEtcd } from "../tasks/bench/load.ts";
import { hasCommand, runWrk } from "../tasks/bench/processes.ts";
import { wrkScript } from "../tasks/bench/wrk.ts";

const hasEtcd = await hasCommand("etcd", "--version");
const hasWrk = await hasCommand("wrk");

/** The value etcd holds for `key`, read linearizably through the gateway. */
async function etcdGet(url: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${url}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key) }),
    signal: AbortSignal.timeout(5000),
  });
  assertEquals(res.status, 200);
  const body = await res.json();
  const value = body.kvs?.[0]?.value;
  return value === undefined ? undefined : atob(value);
}

Deno.test({
  name: "the bench's etcd: 3 members elect a leader, load the keys, serve wrk, and all stop",
  ignore: !hasEtcd,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ringkv-bench-etcd-" });
    let cluster: Child | undefined;
    try {
      const { url, members } = await startEtcd(join(dir, "etcd"), (child) => (cluster = child));
      assertEquals(members.map((m) => m.name), ["etcd-e1", "etcd-e2", "etcd-e3"]);
      await loadEtcd(url, { prefix: "k", count: 300, valueBytes: 100 });
      assertEquals(await etcdGet(url, "k000299"), benchValue(299, 100));
      assertEquals(await etcdGet(url, "k000300"), undefined);
      if (hasWrk) {
        const script = join(dir, "etcd.lua");
        const lua = wrkScript({
          prefix: "k",
          keys: 300,
          putRatio: 0.5,
          valueBytes: 7,
          api: "etcd",
        });
        await Deno.writeTextFile(script, lua);
        const r = await runWrk(url, script, { connections: 4, threads: 1, seconds: 1 });
        assert(r.requests > 0);
        assert(r.cpuSeconds !== undefined && r.cpuSeconds > 0, "wrk's own CPU is read");
        assertEquals(r.non2xx + r.socketErrors, 0);
        // The 50 % of PUTs wrote "vvvvvvv" over some of the loaded values.
        const values = await Promise.all(
          Array.from({ length: 300 }, (_, i) => etcdGet(url, `k${String(i).padStart(6, "0")}`)),
        );
        assert(values.includes("vvvvvvv"), "no PUT of the wrk script landed");
      }
    } finally {
      await cluster?.stop();
      await Deno.remove(dir, { recursive: true });
    }
    assert(cluster !== undefined);
    // No process runs with the cluster's directory on its command line any more.
    const left = await new Deno.Command("pgrep", { args: ["-f", dir], stdout: "piped" }).output();
    assertEquals(new TextDecoder().decode(left.stdout), "", "a member still runs after stop()");
  },
});
