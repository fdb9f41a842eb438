import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  countOf,
  etcdArgs,
  etcdMembers,
  etcdPrefixCount,
  etcdPutTxn,
  leaderIndex,
} from "./etcd.ts";

const MEMBERS = etcdMembers("/tmp/run/etcd", [4001, 4002, 4011, 4012, 4021, 4022]);

/** The value after `flag` in `args`. */
function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}

Deno.test("etcdMembers() gives each member a client port, a peer port and its own directory", () => {
  assertEquals(MEMBERS.map((m) => [m.name, m.clientPort, m.peerPort]), [
    ["e1", 4001, 4002],
    ["e2", 4011, 4012],
    ["e3", 4021, 4022],
  ]);
  assertEquals(new Set(MEMBERS.map((m) => m.dir)).size, 3);
  assertThrows(() => etcdMembers("/d", [1, 2, 3]), RangeError);
});

Deno.test("etcdArgs() starts one member of a new 3-member cluster on 127.0.0.1", () => {
  const args = etcdArgs(MEMBERS[1]!, MEMBERS, "tok");
  assertEquals(flag(args, "--name"), "e2");
  assertEquals(flag(args, "--data-dir"), "/tmp/run/etcd/e2");
  assertEquals(flag(args, "--listen-client-urls"), "http://127.0.0.1:4011");
  assertEquals(flag(args, "--advertise-client-urls"), "http://127.0.0.1:4011");
  assertEquals(flag(args, "--listen-peer-urls"), "http://127.0.0.1:4012");
  assertEquals(
    flag(args, "--initial-cluster"),
    "e1=http://127.0.0.1:4002,e2=http://127.0.0.1:4012,e3=http://127.0.0.1:4022",
  );
  assertEquals(flag(args, "--initial-cluster-state"), "new");
  assertEquals(flag(args, "--initial-cluster-token"), "tok");
  assertEquals(flag(args, "--log-outputs"), "/tmp/run/etcd/e2.log");
});

Deno.test("etcdArgs() leaves fsync and etcd's other defaults alone", () => {
  const args = etcdArgs(MEMBERS[0]!, MEMBERS, "tok");
  assert(!args.some((a) => /unsafe|fsync|snapshot|quota|heartbeat|election/.test(a)), args.join());
  const flags = args.filter((a) => a.startsWith("--"));
  assertEquals(args.length, flags.length * 2, "every flag has one value");
});

Deno.test("etcdPutTxn() puts every pair with base64 keys and values", () => {
  const body = JSON.parse(etcdPutTxn([["k000001", "v1"], ["ключ", "é"]]));
  assertEquals(body, {
    success: [
      { requestPut: { key: btoa("k000001"), value: btoa("v1") } },
      { requestPut: { key: "0LrQu9GO0Yc=", value: "w6k=" } },
    ],
  });
  const many = Array.from({ length: 129 }, (_, i) => [`k${i}`, "v"] as const);
  assertThrows(() => etcdPutTxn(many), RangeError, "128");
  assertEquals(JSON.parse(etcdPutTxn(many.slice(0, 128))).success.length, 128);
});

Deno.test("etcdPrefixCount() ranges from the prefix to the prefix's next byte, counting only", () => {
  assertEquals(JSON.parse(etcdPrefixCount("k")), {
    key: btoa("k"),
    range_end: btoa("l"),
    count_only: true,
  });
  assertEquals(JSON.parse(etcdPrefixCount("ab")).range_end, btoa("ac"));
  assertThrows(() => etcdPrefixCount(""), RangeError);
  assertEquals(countOf({ count: "100000" }), 100_000);
  assertEquals(countOf({}), 0);
});

Deno.test("leaderIndex() finds the member that reports itself as leader", () => {
  const status = (self: string, leader: string) => ({ header: { member_id: self }, leader });
  assertEquals(leaderIndex([status("1", "2"), status("2", "2"), status("3", "2")]), 1);
  assertEquals(leaderIndex([status("1", "0"), status("2", "0")]), -1);
  assertEquals(leaderIndex([{}, status("3", "2")]), -1);
});
