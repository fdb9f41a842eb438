/**
 * A write/delete workload for end-to-end tests, with the model that checks it.
 *
 * Each client owns its own keys and works on one at a time, so the outcome of every key
 * is known exactly: the value of its last acknowledged operation, or, when operations
 * after that one failed (timeouts, 503s: they may or may not have happened), one of theirs.
 *
 * @module
 */

/** What the model allows a key to hold: values, and `null` for absent. */
type Outcomes = (string | null)[];

interface KeyHistory {
  /** Outcome of the last acknowledged op (null: deleted or never written). */
  acked: string | null;
  /** Outcomes of ops that failed after it: each may have happened. */
  uncertain: Outcomes;
}

/** Counts of what the clients did. */
export interface WorkloadStats {
  ok: number;
  failed: number;
  errors: Map<string, number>;
}

/** The model of every key the clients touched. */
export class KeyModel {
  readonly keys = new Map<string, KeyHistory>();
  readonly stats: WorkloadStats = { ok: 0, failed: 0, errors: new Map() };

  /** Records an acknowledged op: `value` null for a delete. */
  ack(key: string, value: string | null): void {
    this.keys.set(key, { acked: value, uncertain: [] });
    this.stats.ok++;
  }

  /** Records an op whose outcome is unknown. */
  fail(key: string, value: string | null, reason: string): void {
    const history = this.keys.get(key) ?? { acked: null, uncertain: [] };
    history.uncertain.push(value);
    this.keys.set(key, history);
    this.stats.failed++;
    this.stats.errors.set(reason, (this.stats.errors.get(reason) ?? 0) + 1);
  }

  /** The values `key` may hold now. */
  allowed(key: string): Outcomes {
    const history = this.keys.get(key);
    return history ? [history.acked, ...history.uncertain] : [null];
  }

  /** Keys that must exist (acknowledged value, nothing uncertain after). */
  certainLiveCount(): number {
    let n = 0;
    for (const h of this.keys.values()) if (h.acked !== null && h.uncertain.length === 0) n++;
    return n;
  }

  /** Keys that may exist. */
  possibleLiveCount(): number {
    let n = 0;
    for (const h of this.keys.values()) {
      if (h.acked !== null || h.uncertain.some((v) => v !== null)) n++;
    }
    return n;
  }
}

/** Options of {@link runClients}. */
export interface WorkloadOptions {
  proxyUrl: string;
  clients: number;
  keysPerClient: number;
  /** Share of operations that are deletes (0..1). */
  deleteRatio: number;
  /** Clients stop when this resolves (or after `maxOps` each). */
  until: Promise<unknown>;
  maxOps?: number;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `clients` concurrent writers against the proxy until `until` resolves. */
export async function runClients(model: KeyModel, opts: WorkloadOptions): Promise<void> {
  let done = false;
  opts.until.then(() => (done = true));
  const maxOps = opts.maxOps ?? 1_000_000;
  const client = async (c: number) => {
    for (let i = 0; i < maxOps && !done; i++) {
      const key = `c${c}/k${Math.floor(Math.random() * opts.keysPerClient)}`;
      const del = Math.random() < opts.deleteRatio;
      const value = del ? null : `c${c}-op${i}-${crypto.randomUUID().slice(0, 8)}`;
      await applyOp(model, opts, key, value);
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
}

async function applyOp(
  model: KeyModel,
  opts: WorkloadOptions,
  key: string,
  value: string | null,
): Promise<void> {
  try {
    const res = await fetch(`${opts.proxyUrl}/kv/${key}`, {
      method: value === null ? "DELETE" : "PUT",
      body: value ?? undefined,
      headers: { "content-type": "text/plain", ...opts.headers },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    await res.body?.cancel();
    if (res.ok || (value === null && res.status === 404)) model.ack(key, value);
    else model.fail(key, value, `HTTP ${res.status}`);
  } catch (err) {
    model.fail(key, value, err instanceof Error ? err.name : String(err));
  }
}

/** Reads every key of the model through the proxy; returns the keys whose value is not allowed. */
export async function findViolations(
  model: KeyModel,
  proxyUrl: string,
  headers: Record<string, string> = {},
): Promise<string[]> {
  const violations: string[] = [];
  const keys = [...model.keys.keys()];
  for (let i = 0; i < keys.length; i += 32) {
    await Promise.all(
      keys.slice(i, i + 32).map(async (key) => {
        const res = await fetch(`${proxyUrl}/kv/${key}`, {
          headers,
          signal: AbortSignal.timeout(10_000),
        });
        const got = res.status === 200 ? await res.text() : (await res.body?.cancel(), null);
        if (res.status !== 200 && res.status !== 404) {
          violations.push(`${key}: HTTP ${res.status}`);
        } else if (!model.allowed(key).includes(got)) {
          violations.push(`${key}: got ${got}, allowed ${JSON.stringify(model.allowed(key))}`);
        }
      }),
    );
  }
  return violations;
}
