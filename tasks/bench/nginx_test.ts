import { assert, assertThrows } from "@std/assert";
import { nginxConfig } from "./nginx.ts";

const conf = nginxConfig({
  dir: "/tmp/run/nginx",
  port: 8090,
  nodes: ["http://127.0.0.1:7001", "http://127.0.0.1:7002/", "http://127.0.0.1:7003"],
  secret: "s3cret",
});

Deno.test("nginxConfig() hashes the request URI consistently over every node, one worker", () => {
  assert(conf.includes("worker_processes 1;"));
  assert(conf.includes("hash $request_uri consistent;"));
  for (const port of [7001, 7002, 7003]) assert(conf.includes(`server 127.0.0.1:${port};`));
});

Deno.test("nginxConfig() keeps upstream connections alive (HTTP/1.1, no Connection header)", () => {
  assert(/keepalive \d+;/.test(conf));
  assert(conf.includes("proxy_http_version 1.1;"));
  assert(conf.includes('proxy_set_header Connection "";'));
});

Deno.test("nginxConfig() sends the cluster secret and maps /kv/ to the nodes' /kv/", () => {
  assert(conf.includes('proxy_set_header Authorization "Bearer s3cret";'));
  assert(conf.includes("location /kv/ {"));
  // No URI part after the upstream name: the request path goes to the node unchanged.
  assert(conf.includes("proxy_pass http://ringkv_nodes;"));
});

Deno.test("nginxConfig() listens on the given port and keeps its files in its directory", () => {
  assert(conf.includes("listen 127.0.0.1:8090;"));
  assert(conf.includes("pid /tmp/run/nginx/nginx.pid;"));
  assert(conf.includes("client_body_temp_path /tmp/run/nginx/client_body_temp;"));
});

Deno.test("nginxConfig() refuses an empty node list", () => {
  assertThrows(() => nginxConfig({ dir: "/d", port: 1, nodes: [], secret: "s" }), RangeError);
});
