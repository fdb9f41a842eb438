/**
 * The nginx reference of the bench: one worker, `hash $request_uri consistent` over the
 * same nodes, upstream keepalive, the cluster secret sent to the nodes. Pure config text;
 * tasks/bench/processes.ts starts it.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { nginxConfig } from "./nginx.ts";
 * const conf = nginxConfig({
 *   dir: "/tmp/b", port: 8090, nodes: ["http://127.0.0.1:7001"], secret: "s",
 * });
 * assert(conf.includes("hash $request_uri consistent;"));
 * ```
 */

/** What the nginx config is made from. */
export interface NginxOptions {
  /** Directory for the pid file, logs and temp files. */
  dir: string;
  port: number;
  /** Node base URLs (`http://host:port`). */
  nodes: readonly string[];
  /** The cluster secret, sent to the nodes as `Authorization: Bearer`. */
  secret: string;
  /** Idle connections kept per worker to the upstream (default 64). */
  keepalive?: number;
}

/** The nginx.conf text (run with `nginx -p dir -c conf -g 'daemon off;'`). */
export function nginxConfig(o: NginxOptions): string {
  if (o.nodes.length === 0) throw new RangeError("nginx needs at least one node");
  const servers = o.nodes.map((url) => `    server ${new URL(url).host};`).join("\n");
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((name) => `  ${name}_temp_path ${o.dir}/${name}_temp;`).join("\n");
  return `# written by deno task bench (tasks/bench/nginx.ts)
worker_processes 1;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
${temp}
  upstream ringkv_nodes {
    hash $request_uri consistent;
${servers}
    keepalive ${o.keepalive ?? 64};
    keepalive_requests 1000000;
  }
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${o.port};
    location /kv/ {
      proxy_pass http://ringkv_nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer ${o.secret}";
    }
  }
}
`;
}
