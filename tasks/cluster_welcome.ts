/**
 * The welcome `deno task cluster` prints once its proxy listens: where to call it, the admin
 * token (or where it comes from), the nodes with their pids, and curl lines that work as printed.
 *
 * @module
 */
import { isLoopback } from "../shared/exposure.ts";
import { denoCommand, shellQuote } from "../shared/startup_hint.ts";
import type { Child } from "./children.ts";
import { adminTokenFile } from "./cluster_tokens.ts";
import { resolve } from "@std/path";

/**
 * The `deno task kv status` line for this cluster: kv calls `http://127.0.0.1:8080` and reads
 * `./data/admin-token` unless told (QA: with `--port`, `kv watch` retried 8080 for ever).
 * `tokenFromEnv`: the admin token is RINGKV_ADMIN_TOKEN's; `config`: the project's deno.json, so
 * that the line works from any directory, as the nodes' restart lines do (QA).
 */
export function kvLine(
  url: string,
  data: string,
  tokenFromEnv: boolean,
  execPath: string,
  config: string,
): string {
  const where = url === "http://127.0.0.1:8080" ? "" : `RINGKV_URL=${url} `;
  const file = adminTokenFile(resolve(data));
  // In a variable, never on the command line (docs/security.md: `deno task` echoes its
  // arguments, and ps shows them); the path absolute, as the shell may be elsewhere.
  const token = tokenFromEnv || file === resolve(adminTokenFile("./data"))
    ? ""
    : `RINGKV_ADMIN_TOKEN="$(cat ${shellQuote(file)})" `;
  return `${where}${token}${denoCommand(execPath)} task --config ${shellQuote(config)} kv status`;
}

/** The project's deno.json, whose tasks the printed `deno task` line runs. */
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** The welcome's warning when /kv is open to other machines, or "". */
function openWarning(host: string, port: string): string {
  if (isLoopback(host) || Deno.env.get("RINGKV_CLIENT_TOKEN")) return "";
  return `\n  warning:      listening on ${host}, with no client token: every machine that reaches ` +
    `port ${port} reads and writes every key (set RINGKV_CLIENT_TOKEN; docs/security.md)`;
}

/** Prints the welcome; `staleAdminFile`: data/admin-token holds a token other than the one in use. */
export function printWelcome(
  url: string,
  data: string,
  adminToken: string,
  children: Child[],
  host: string,
  staleAdminFile: boolean,
): void {
  // A token the user set is theirs to know; one this task made is shown once, like a
  // notebook server's login token, so the first curl line works as printed.
  const fromEnv = Deno.env.get("RINGKV_ADMIN_TOKEN") !== undefined;
  const stale = staleAdminFile
    ? `; ${adminTokenFile(data)} holds an older token, which this proxy REFUSES (401): use ` +
      "$RINGKV_ADMIN_TOKEN, or unset it to use the file"
    : "";
  const token = fromEnv ? "$RINGKV_ADMIN_TOKEN" : adminToken;
  const nodes = children.filter((c) => c.name !== "proxy");
  // The proxy inherits RINGKV_CLIENT_TOKEN: then /kv answers 401 to a curl line without it.
  const client = Deno.env.get("RINGKV_CLIENT_TOKEN")
    ? `-H "Authorization: Bearer $RINGKV_CLIENT_TOKEN" `
    : "";
  console.log(`
ringkv cluster listening on ${url}
  proxy:        ${url}
  admin token:  ${
    fromEnv ? `from RINGKV_ADMIN_TOKEN${stale}` : `${adminToken} (kept in ${adminTokenFile(data)})`
  }${client ? "\n  client token: from RINGKV_CLIENT_TOKEN (needed on /kv)" : ""}
  nodes:        ${nodes.map((n) => `${n.name} ${n.url} (pid ${n.pid})`).join(", ")}${
    openWarning(host, new URL(url).port)
  }

Try:
  curl -i ${client}-X PUT --data-binary 'hello' ${url}/kv/greeting
  curl -i ${client}${url}/kv/greeting
  curl ${client}'${url}/kv?prefix=gr'
  curl -H "Authorization: Bearer ${token}" ${url}/cluster
  ${kvLine(url, data, fromEnv, Deno.execPath(), CONFIG)}

Ctrl-C stops everything.`);
}
