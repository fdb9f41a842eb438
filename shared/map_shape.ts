/**
 * Whether a value read from JSON has the shape of a cluster map. A node checks a map a proxy
 * sends it (400), a proxy one a node answers with (502): either would otherwise fail later,
 * deep in code that takes the map's lists for granted.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { mapShapeProblem } from "./map_shape.ts";
 * const map = { epoch: 1, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
 * assertEquals(mapShapeProblem(map), null);
 * assertEquals(mapShapeProblem({ ...map, nodes: 3 }), "nodes is not a list of {id, url, weight}");
 * ```
 */

/** Why `value` is not a cluster map, or null when it is one. Pure. */
export function mapShapeProblem(value: unknown): string | null {
  if (!isRecord(value)) return "it is not a JSON object";
  const { epoch, replicas, vnodes, nodes, rebalancing } = value;
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) {
    return "epoch is not a whole number >= 0";
  }
  if (!Number.isSafeInteger(replicas) || (replicas as number) < 1) {
    return "replicas is not a whole number >= 1";
  }
  if (!Number.isSafeInteger(vnodes) || (vnodes as number) < 1) {
    return "vnodes is not a whole number >= 1";
  }
  if (!isNodeList(nodes)) return "nodes is not a list of {id, url, weight}";
  if (rebalancing === null) return null;
  if (!isRecord(rebalancing)) return "rebalancing is neither null nor an object";
  const { kind, nodeId, phase, next, startedAt, movedKeys, totalKeys } = rebalancing;
  if (
    (kind !== "add" && kind !== "remove") || typeof nodeId !== "string" ||
    (phase !== "copying" && phase !== "cleanup") || !isNodeList(next) ||
    ![startedAt, movedKeys, totalKeys].every((n) => typeof n === "number")
  ) {
    return "rebalancing is not {kind, nodeId, phase, next, startedAt, movedKeys, totalKeys}";
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNodeList(nodes: unknown): boolean {
  return Array.isArray(nodes) &&
    nodes.every((node) =>
      isRecord(node) && typeof node.id === "string" && typeof node.url === "string" &&
      typeof node.weight === "number"
    );
}
