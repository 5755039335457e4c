/**
 * The command line's `gc --yes` whose gcEvict reply is lost (the reply-
 * dropping proxy: the script runs and evicts, its reply is thrown away, the
 * connection is cut, ioredis resends it): the resend finds the record its
 * first run left in the object's done set and reports the orphan evicted, as without the fault, not
 * "gone". Single Redis only (the proxy stands in front of one server).
 */
import { Redis } from 'ioredis';
import type { Connection } from '../../src/cli/connect.js';
import { runGc, type GcItem, type GcSummary } from '../../src/cli/gc.js';
import { silentProgress } from '../../src/cli/progress.js';
import type { Store } from '../../src/index.js';
import { describe, test } from '../harness/fixtures.js';
import { expectResendSafe, scriptCall } from './util.js';

function connection(store: Store): Connection {
  const client = store.connector.client as Redis;
  return {
    connector: store.connector,
    client,
    isCluster: false,
    masters: () => [client],
    describe: () => 'through the reply dropper',
    close: () => client.disconnect(),
  };
}

async function gcYes(store: Store): Promise<{ items: Pick<GcItem, 'action' | 'reason'>[]; summary: GcSummary }> {
  const items: GcItem[] = [];
  const summary = await runGc(connection(store), { yes: true, olderThan: undefined }, { item: (i) => items.push(i), finish: () => {} }, silentProgress);
  return { items: items.map((i) => ({ action: i.action, reason: i.reason })), summary };
}

describe('gc --yes', () => {
  test('an eviction whose reply is lost is reported as evicted (not gone), and evicts nothing more', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: async (store) => store.putBatch(['orphan 1', 'orphan 2', 'orphan 3']),
        op: (store) => gcYes(store),
        drop: () => scriptCall('gcEvict'),
      },
    );
  });
});
