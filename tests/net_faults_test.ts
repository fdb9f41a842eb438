/**
 * A short run of each network fault kind (tests/helpers/net_scenarios.ts) with nodes and
 * two proxies in their own network namespaces: every fault seen in force (its nftables
 * rules dropped packets, or the slow link measured slow), linearizable, no acknowledged
 * write lost, replicas agreeing after the faults end. Needs root and `ip netns`/`nft`; skipped with
 * the reason otherwise. `deno task torture --net` runs the long version.
 */
import { assert, assertEquals } from "@std/assert";
import { labUnavailable, NetLab } from "./helpers/netns.ts";
import { CONVERGE_MS, FAULT_KINDS, runFaults } from "./helpers/net_scenarios.ts";

const unavailable = await labUnavailable();
if (unavailable !== null) console.log(`net_faults_test: skipped: ${unavailable}`);

/** Each kind gets one fault of 2.5 s (past the 1 s timeout and the probes) and a calm of 1 s. */
const PACE = { faultMs: 2500, calmMs: 1000 };

for (const kind of FAULT_KINDS) {
  Deno.test({
    name: `network fault "${kind}": linearizable, nothing acknowledged lost, replicas agree`,
    ignore: unavailable !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const lab = await NetLab.create();
      // The nemesis's lines and a violating key's history, printed when the run fails.
      const lines: string[] = [];
      try {
        const r = await runFaults(
          lab,
          kind,
          PACE.faultMs + PACE.calmMs,
          (l) => lines.push(l),
          PACE,
          CONVERGE_MS.loaded,
        );
        console.log(
          `${kind}: ${r.faults} faults (${r.seenInForce} seen in force), ` +
            `${r.all.requests} requests, ${r.all.indefinite} indefinite; majority side ` +
            `${r.majority.indefinite}/${r.majority.requests}; converged in ${r.convergedMs} ms; ` +
            `fast writes ${JSON.stringify(r.fast ?? {})}`,
        );
        if (r.violation !== null) console.log(lines.join("\n"));
        // A run whose faults were never in force would prove nothing.
        assert(r.faults > 0, "no fault was put in force");
        assertEquals(r.seenInForce, r.faults, "a fault was lifted without being seen in force");
        assertEquals(r.violation, null, "history not linearizable");
        assertEquals(r.lost, []);
        if (r.diverged.length > 0) {
          for (const [name, p] of [...lab.proxies, ...lab.nodes]) {
            console.log(`${name} stderr:\n${p.proc.stderrLines.slice(-20).join("\n")}`);
          }
        }
        assertEquals(r.diverged, []);
      } catch (err) {
        console.log(`${kind} failed; the nemesis said:\n${lines.join("\n")}`);
        throw err;
      } finally {
        await lab.stop();
      }
    },
  });
}
