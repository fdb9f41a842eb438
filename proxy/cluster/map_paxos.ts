/**
 * Chooses the cluster map of an epoch once, by single-decree Paxos over the members of the
 * map it is built from (node/paxos/map_acceptor.ts is the nodes' side). Two proxies that build
 * epoch E from the same map at the same moment (two admin changes, or an admin change and a
 * proxy's own step) then cannot both install theirs: one map is chosen, and the other proxy
 * adopts it. A proposer that finds a map accepted for E finishes that one instead of its own.
 *
 * A member on a new data directory may have lost a vote it gave, so a prepare counts it only
 * beside enough members that remember theirs: n - q + 1 of the n members, where q is the
 * majority, so that every earlier majority of accepts shares a remembering member with it (as
 * a rejoin copies a key's range from n - q + 1 fellow replicas).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { votersOf } from "./map_paxos.ts";
 * const n = (id: string) => ({ id, url: `http://${id}`, weight: 1 });
 * const base = { epoch: 1, replicas: 1, vnodes: 8, nodes: [n("a"), n("b")], rebalancing: null };
 * const next = { ...base, epoch: 2, nodes: [n("a")] };
 * assertEquals(votersOf(base, next).map((v) => v.id), ["a", "b"]);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { HybridClock } from "../../shared/version.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import type { MapVoteAnswer, NodeAdmin } from "../nodes/node_admin.ts";
import { allNodes } from "./map_transitions.ts";
import { sameCluster } from "./map_lineage.ts";

/** What {@link chooseMap} needs. */
export interface ChooseDeps {
  admin: NodeAdmin;
  /** Hands out this proxy's ballots (strictly increasing, unique to the proxy). */
  clock: HybridClock;
  /** Rounds tried when a competing proposer's ballot wins (default 4). */
  attempts?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** The outcome: the map chosen for the epoch (maybe another proposer's), or a later map. */
export type ChooseOutcome =
  | { kind: "chosen"; map: ClusterMap }
  | { kind: "decided"; map: ClusterMap; url: string };

/** A member of the map a vote builds on, reached at its URL in the proposed map. */
export interface Voter {
  id: string;
  url: string;
  /** Its data directory as that map records it (none recorded: counted as remembering). */
  incarnation?: string;
}

/** The voters on `proposed`: the members of `base` (of `proposed` for a new cluster). */
export function votersOf(base: ClusterMap | null, proposed: ClusterMap): Voter[] {
  const urls = new Map(allNodes(proposed).map((n) => [n.id, n.url]));
  return (base ?? proposed).nodes.map((n) => ({
    id: n.id,
    url: urls.get(n.id) ?? n.url,
    ...(n.incarnation === undefined ? {} : { incarnation: n.incarnation }),
  }));
}

/** Chooses the map of `proposed.epoch`, built from `base` (null for a new cluster). */
export async function chooseMap(
  base: ClusterMap | null,
  proposed: ClusterMap,
  deps: ChooseDeps,
): Promise<ChooseOutcome> {
  const voters = votersOf(base, proposed);
  const attempts = deps.attempts ?? 4;
  for (let attempt = 1;; attempt++) {
    const round = await runRound(base, proposed, voters, deps);
    if (round.kind !== "refused") return round;
    if (attempt >= attempts) {
      throw new RingkvError(
        "conflict",
        `Cannot change the cluster map to epoch ${proposed.epoch}: another proxy is changing ` +
          `it at the same moment (${round.message}); retry`,
      );
    }
    // Dueling proposers: wait a random while, then outbid the ballot that won.
    const wait = 20 * attempt * (1 + (deps.random ?? Math.random)());
    await (deps.sleep ?? sleep)(wait);
  }
}

/**
 * Finishes the map some proposer got accepted for the epoch after `base`, if any (its proxy
 * may have died before pushing it): one round that proposes only a map it finds accepted,
 * never one of its own. Null when the members accepted none, or a proposer with a higher
 * ballot is at work (it finishes the map itself; no duel with it).
 */
export async function finishMap(base: ClusterMap, deps: ChooseDeps): Promise<ChooseOutcome | null> {
  const round = await runRound(base, null, votersOf(base, base), deps);
  return round.kind === "refused" || round.kind === "none" ? null : round;
}

type Refused = { kind: "refused"; message: string };
/** A round that only finishes found no accepted map; one with a map of its own never does. */
type Round = ChooseOutcome | Refused | { kind: "none" };

/** One Paxos round for `proposed`; with null, one that only finishes an accepted map. */
function runRound(
  base: ClusterMap | null,
  proposed: ClusterMap,
  voters: Voter[],
  deps: ChooseDeps,
): Promise<ChooseOutcome | Refused>;
function runRound(
  base: ClusterMap,
  proposed: null,
  voters: Voter[],
  deps: ChooseDeps,
): Promise<Round>;
async function runRound(
  base: ClusterMap | null,
  proposed: ClusterMap | null,
  voters: Voter[],
  deps: ChooseDeps,
): Promise<Round> {
  const epoch = proposed?.epoch ?? base!.epoch + 1;
  const ballot = deps.clock.next();
  const majority = Math.floor(voters.length / 2) + 1;
  const ours = (base ?? proposed)!;
  const quorum = (votes: Vote[]) => {
    const promises = votes.filter(isYes);
    const wiped = promises.filter((p) => !p.remembers).length;
    const needRemembering = Math.min(voters.length - majority + 1, voters.length - wiped);
    const met = promises.length >= majority && promises.length - wiped >= needRemembering;
    return { promises, needRemembering, met };
  };
  // The base goes along: a voter still on an older map learns it before it votes.
  const prepared = await ask(
    voters,
    deps,
    "prepare",
    { epoch, ballot, base },
    // Finishing waits for every member: the one holding the accepted map may answer last.
    (votes) => (proposed !== null && quorum(votes).met) || decidedIn(votes, ours) !== null,
  );
  const decided = decidedIn(prepared, ours);
  if (decided !== null) return decided;
  const { promises, needRemembering, met } = quorum(prepared);
  if (!met) {
    return refusedIn(prepared, deps) ??
      tooFew("prepare", epoch, promises.length, majority, prepared, needRemembering);
  }
  // The map accepted under the highest ballot, if any, is the one to finish.
  let value: ClusterMap | null = proposed;
  let highest = "";
  for (const p of promises) {
    const accepted = p.answer?.kind === "yes" ? p.answer.accepted : null;
    if (accepted !== null && accepted.ballot > highest && accepted.map.epoch === epoch) {
      highest = accepted.ballot;
      value = accepted.map;
    }
  }
  if (value === null) return { kind: "none" };
  const acceptedBy = await ask(
    voters,
    deps,
    "accept",
    { epoch, ballot, base, map: value },
    (votes) => yesCount(votes) >= majority,
  );
  const yes = yesCount(acceptedBy);
  if (yes >= majority) return { kind: "chosen", map: value };
  return decidedIn(acceptedBy, ours) ?? refusedIn(acceptedBy, deps) ??
    tooFew("accept", epoch, yes, majority, acceptedBy, 0);
}

/** A prepare (no `map`) or an accept, with the map the new one is built from. */
type VoteBody = { epoch: number; ballot: string; base: ClusterMap | null; map?: ClusterMap };

const isYes = (v: Vote) => v.answer?.kind === "yes";
const yesCount = (votes: Vote[]) => votes.filter(isYes).length;

interface Vote {
  voter: Voter;
  answer?: MapVoteAnswer;
  /** The voter answered on the data directory the map records (it keeps its votes). */
  remembers: boolean;
  error?: string;
}

/**
 * Asks every voter; resolves once all have answered or `enough` holds for the answers so far
 * (a quorum does not wait for a member that a partition or a pause holds to its timeout). A
 * voter that has not answered yet is left out, with "no answer yet".
 */
function ask(
  voters: Voter[],
  deps: ChooseDeps,
  step: "prepare" | "accept",
  body: VoteBody,
  enough: (votes: Vote[]) => boolean,
): Promise<Vote[]> {
  const { promise, resolve, reject } = Promise.withResolvers<Vote[]>();
  const votes: (Vote | undefined)[] = voters.map(() => undefined);
  const answered = () => votes.filter((v) => v !== undefined);
  let left = voters.length;
  const settle = () => {
    const got = answered();
    if (left === 0 || enough(got)) {
      resolve(
        voters.map((voter, i) =>
          votes[i] ?? { voter, remembers: false, error: `${voter.url}: no answer yet` }
        ),
      );
    }
  };
  voters.forEach((voter, i) => {
    voteOf(voter, deps, step, body).then((vote) => {
      votes[i] = vote;
      left--;
      settle();
    }, reject);
  });
  if (voters.length === 0) settle();
  return promise;
}

async function voteOf(
  voter: Voter,
  deps: ChooseDeps,
  step: "prepare" | "accept",
  body: VoteBody,
): Promise<Vote> {
  try {
    const answer = await deps.admin.voteOnMap(voter.url, step, body);
    if (answer.kind === "yes" && answer.id !== undefined && answer.id !== voter.id) {
      const error = `${voter.url} answers as node ${answer.id}, not ${voter.id}`;
      return { voter, remembers: false, error };
    }
    const remembers = voter.incarnation === undefined || answer.kind !== "yes" ||
      answer.incarnation === voter.incarnation;
    return { voter, answer, remembers };
  } catch (err) {
    if (!(err instanceof RingkvError)) throw err;
    return { voter, remembers: false, error: err.message };
  }
}

/** A member's chosen map of this epoch or later: the proposer's map was behind. */
function decidedIn(votes: Vote[], ours: ClusterMap): Round | null {
  for (const { voter, answer } of votes) {
    // Another cluster's map at a member's URL is no decision of ours (map_lineage.ts).
    if (answer?.kind === "decided" && sameCluster(ours, answer.map)) {
      return { kind: "decided", map: answer.map, url: voter.url };
    }
  }
  return null;
}

/** A refusal: a competing proposer's higher ballot (tried again), or a later epoch's vote. */
function refusedIn(votes: Vote[], deps: ChooseDeps): Round | null {
  for (const { answer } of votes) {
    if (answer?.kind !== "refused") continue;
    if (answer.promised === undefined) {
      // The node votes on a later epoch: our map is behind. The caller reloads and retries.
      throw new RingkvError(
        "conflict",
        `${answer.message}; the cluster map changed meanwhile, retry`,
      );
    }
    deps.clock.observe(answer.promised);
    return { kind: "refused", message: answer.message };
  }
  return null;
}

function tooFew(
  step: string,
  epoch: number,
  got: number,
  majority: number,
  votes: Vote[],
  needRemembering: number,
): never {
  const why = votes.filter((v) => v.error !== undefined).map((v) => v.error).join("; ");
  const wiped = votes.filter((v) => isYes(v) && !v.remembers)
    .map((v) => `${v.voter.id} is on a new data directory`);
  // Only worth saying when a node answered on a new data directory.
  const remember = needRemembering > 0 && wiped.length > 0
    ? `, ${needRemembering} of them on the data directory the map records`
    : "";
  // Accepted by a minority, the map may still be chosen: the next proposer finishes it.
  const maybe = step === "accept" ? "; the change may still be made by the next one" : "";
  throw new RingkvError(
    "node_unavailable",
    `Cannot change the cluster map to epoch ${epoch}: ${got} of ${votes.length} nodes took the ` +
      `${step}, ${majority} are needed${remember} (${
        [...wiped, why].filter((s) => s).join("; ")
      })${maybe}; a change of the cluster map needs a majority of its nodes: bring the others ` +
      "back (a node whose disk is lost on an empty --data with its --id: it catches up from the " +
      "others)",
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
