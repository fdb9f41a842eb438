import { assertEquals } from "@std/assert";
import { dataDirKind, otherKindError } from "./data_dir_kind.ts";

Deno.test("dataDirKind() tells a node's, a proxy's and deno task cluster's directory by their files", () => {
  assertEquals(dataDirKind(["ringkv.lock", "node.json", "cluster.json", "wal.jsonl"]), "node");
  assertEquals(dataDirKind(["snapshot.json"]), "node");
  assertEquals(dataDirKind(["acceptor.json"]), "node");
  assertEquals(dataDirKind(["ringkv.lock", "cluster.json", "cluster.json.tmp"]), "proxy");
  assertEquals(dataDirKind(["admin-token", "cluster-secret", "n1", "proxy"]), "cluster");
  assertEquals(dataDirKind(["ringkv.lock"]), null);
  assertEquals(dataDirKind([]), null);
  assertEquals(dataDirKind(["notes.txt", "n1"]), null);
});

Deno.test("otherKindError() refuses another kind's directory, naming its files and what to do", () => {
  const err = otherKindError("data/p1", "node", ["ringkv.lock", "cluster.json"]);
  assertEquals(
    err?.message,
    "Cannot use data directory data/p1: it is a proxy's (deno task proxy), it holds cluster.json. " +
      "Give this node its own --data, or start a proxy on this one.",
  );
  assertEquals(
    otherKindError("data/n1", "proxy", ["node.json", "wal.jsonl", "cluster.json"])?.message,
    "Cannot use data directory data/n1: it is a data node's (deno task node), it holds " +
      "node.json, wal.jsonl, cluster.json. Give this proxy its own --data, or start a node on this one.",
  );
  assertEquals(
    otherKindError("data", "node", ["admin-token", "n1"])?.message,
    "Cannot use data directory data: it is deno task cluster's (each of its processes has a " +
      "directory inside it), it holds admin-token. Give this node its own --data, or start " +
      "deno task cluster on this one.",
  );
  assertEquals(otherKindError("data/n1", "cluster", ["node.json"])?.found, "node");
});

Deno.test("otherKindError() lets a process have its own, an empty or a foreign directory", () => {
  assertEquals(otherKindError("d", "node", ["node.json", "cluster.json"]), null);
  assertEquals(otherKindError("d", "proxy", ["cluster.json"]), null);
  assertEquals(otherKindError("d", "cluster", ["admin-token", "n1"]), null);
  assertEquals(otherKindError("d", "proxy", []), null);
  assertEquals(otherKindError("d", "node", ["lost+found"]), null);
});
