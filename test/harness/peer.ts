/**
 * Drives test/children/ownership-peer.ts: start it, then `await peer.call({ op, ... })`.
 */
import { childEnv, spawnChild, type ChildHandle } from './child.js';

export type PeerReply = { id: number; ok: boolean; value?: unknown; ref?: unknown; name?: string; message?: string };

export interface Peer {
  readonly child: ChildHandle;
  /** Run one operation in the peer; resolves with its reply (ok or not). */
  call(request: Record<string, unknown>): Promise<PeerReply>;
  /** Like call, but throws when the peer's operation failed. */
  ok(request: Record<string, unknown>): Promise<PeerReply>;
}

let nextId = 1;

export async function startPeer(ctx: { redisUrl: string; namespace: string }, leaseTtl = 30): Promise<Peer> {
  const child = spawnChild('test/children/ownership-peer.ts', { env: { ...childEnv(ctx), LEASE_TTL: String(leaseTtl) } });
  await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
  const call = async (request: Record<string, unknown>): Promise<PeerReply> => {
    const id = nextId++;
    await child.send({ ...request, id });
    return child.waitForMessage<PeerReply>((m) => (m as PeerReply).id === id, 20_000);
  };
  return {
    child,
    call,
    async ok(request) {
      const reply = await call(request);
      if (!reply.ok) throw new Error(`peer ${String(request.op)} failed: ${reply.name}: ${reply.message}`);
      return reply;
    },
  };
}
