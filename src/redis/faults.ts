/**
 * What a failed Redis call says about a Redis Cluster that is changing under
 * it: a slot moved or moving (MOVED, ASK, TRYAGAIN, a script refused a key
 * that already left the node), a shard without a master (CLUSTERDOWN, a
 * connection to a dead master closed, a demoted master answering READONLY),
 * or ioredis giving up after its own redirections ("Too many Cluster
 * redirections. Last error: ..."). Such a call can be sent again with the
 * same arguments once the cluster settles (every command and script of the
 * library is safe to resend): see ./retry.ts and ./batch.ts.
 *
 * This module only reads error messages; errors.ts turns them into
 * {@link ClusterReconfiguringError}s.
 *
 * @module
 */

/** Why a call failed while the cluster reconfigures. */
export type FaultKind =
  /** MOVED: the slot has a new master (a reshard finished, or a failover). */
  | 'moved'
  /** ASK: the slot is migrating and the key is on the target already (or new). */
  | 'ask'
  /** TRYAGAIN: a multi-key call on a slot whose keys are split between two nodes by a migration. */
  | 'tryagain'
  /** A script touched a key that had already left the node (a slot in migration). */
  | 'nonlocal'
  /** CLUSTERDOWN: a slot has no master (a failover in progress). */
  | 'clusterdown'
  /** READONLY / MASTERDOWN / LOADING: a node that is no master (yet) any more. */
  | 'notmaster'
  /** ioredis refused a pipeline whose keys its slot map puts on several nodes; nothing was sent. */
  | 'group'
  /** The connection to the node closed (a master that died); the command may have run. */
  | 'closed'
  /** No reply within the command timeout; the command may have run. */
  | 'timeout';

/** A failure that a changing cluster explains. */
export interface ClusterFault {
  kind: FaultKind;
  /** The slot named by MOVED or ASK. */
  slot?: number;
  /** The node (`host:port`) named by MOVED or ASK. */
  node?: string;
  /** Whether the failed attempt may have run on the server (its reply never came). */
  mayHaveRun: boolean;
  /** The innermost error message (without ioredis's "Too many Cluster redirections" wrapper). */
  message: string;
  /** Whether ioredis had given up after its own redirections. */
  redirections: boolean;
}

const REDIRECTIONS = /^Too many Cluster redirections\. Last error: /;

/**
 * The message of the error behind ioredis's wrappers: "Too many Cluster
 * redirections. Last error: ReplyError: PSR_REFERENCE_INVALID ..." gives
 * "PSR_REFERENCE_INVALID ...".
 */
export function innerMessage(message: string): string {
  let text = message;
  if (REDIRECTIONS.test(text)) text = text.replace(REDIRECTIONS, '').replace(/^(?:ReplyError|Error|AbortError): /, '');
  return text;
}

/** The cluster fault an error message describes, if it describes one. */
export function clusterFault(err: unknown): ClusterFault | undefined {
  const raw = err instanceof Error ? err.message : typeof err === 'string' ? err : undefined;
  if (raw === undefined) return undefined;
  const redirections = REDIRECTIONS.test(raw);
  const message = innerMessage(raw);
  const fault = (kind: FaultKind, mayHaveRun: boolean, extra: Partial<ClusterFault> = {}): ClusterFault => ({
    kind,
    mayHaveRun,
    message,
    redirections,
    ...extra,
  });
  const redirect = /^(MOVED|ASK) (\d+) (\S+)/.exec(message);
  if (redirect) return fault(redirect[1] === 'MOVED' ? 'moved' : 'ask', false, { slot: Number(redirect[2]), node: redirect[3] as string });
  if (/^TRYAGAIN\b/.test(message)) return fault('tryagain', false);
  if (/^(?:ERR )?Script attempted to access (?:a non local key|keys that do not hash to the same slot)/.test(message)) return fault('nonlocal', false);
  if (/^CLUSTERDOWN\b|^(?:ERR )?Script attempted to execute a (?:write )?command while the cluster is down/.test(message)) return fault('clusterdown', false);
  if (/^(?:READONLY|MASTERDOWN|LOADING)\b/.test(message)) return fault('notmaster', false);
  if (/^All (?:the )?keys in the pipeline should belong to the same slots? allocation group/.test(message)) return fault('group', false);
  if (!redirections) return undefined;
  // Behind "Too many Cluster redirections": the last attempt met a closed
  // connection or its timeout; earlier ones were redirected. (A reply such
  // as a PSR_ code is an answer, not a fault: errors.ts classifies it.)
  if (/Command timed out/.test(message)) return fault('timeout', true);
  if (CONNECTION_LOST.test(message)) return fault('closed', true);
  return undefined;
}

const CONNECTION_LOST = /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Cluster is disconnected|Cluster isn't ready|unreachable|max retries per request/i;

/**
 * Whether a failed command may have run on the server anyway (its reply was
 * lost: a timeout, a connection that closed after it was sent), as far as the
 * error (or one of its causes) says; false for an answer (a reply error) or a
 * command that was never sent.
 */
export function outcomeUnknown(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    const known = (e as { mayHaveRun?: unknown }).mayHaveRun;
    if (typeof known === 'boolean') return known;
    // From the connection guard (./connection.ts): it knows whether the command was written.
    if (e.name === 'ConnectionDownError') return (e as { sent?: unknown }).sent === true;
    // A library error wrapping the raw one: the raw one knows better.
    if (e.cause instanceof Error) {
      e = e.cause;
      continue;
    }
    const fault = nodeFault(e);
    if (fault) return fault.mayHaveRun;
    return /may or may not have run/.test(e.message);
  }
  return false;
}

/**
 * {@link clusterFault}, plus what a Cluster's node connection says when it is
 * used directly (./batch.ts): "Connection is closed." when the node's
 * connection ended (ioredis does not reconnect node connections: a master
 * that died), and its command timeout.
 */
export function nodeFault(err: unknown): ClusterFault | undefined {
  const fault = clusterFault(err);
  if (fault) return fault;
  const message = err instanceof Error ? err.message : String(err);
  const base = { message, redirections: false };
  if (/Command timed out/.test(message)) return { kind: 'timeout', mayHaveRun: true, ...base };
  if (CONNECTION_LOST.test(message)) return { kind: 'closed', mayHaveRun: true, ...base };
  return undefined;
}
