/**
 * The command line's pieces, in process (single Redis): the survey with
 * foreign-member sets too large for memory, keys with braces and '%', and
 * the terminal progress bar.
 */
import { ContextLifetime } from '../../src/index.js';
import { connect, type Connection } from '../../src/cli/connect.js';
import { inspectNamespace } from '../../src/cli/inspect.js';
import { parseKey } from '../../src/cli/layout.js';
import { silentProgress, terminalProgress } from '../../src/cli/progress.js';
import { surveyTuning } from '../../src/cli/survey.js';
import { KeySpace } from '../../src/keys.js';
import { afterEach, describe, expect, test } from '../harness/store-fixture.js';

const opened: Connection[] = [];
afterEach(() => {
  opened.splice(0).forEach((c) => c.close());
  surveyTuning.foreignInMemory = 200_000;
});

async function open(url: string, namespace: string): Promise<Connection> {
  const conn = await connect({ url, namespace, timeoutMs: 5000 });
  opened.push(conn);
  return conn;
}

const quiet = { ...silentProgress, log() {} };

describe('the survey', () => {
  test.override({ allowLeftovers: true });

  test('foreign members are found whether their sets are read into memory or asked per page', async ({ store, redisUrl, namespace }) => {
    const lifetimes = [new ContextLifetime(store), new ContextLifetime(store)];
    const held = await store.putBatch(Array.from({ length: 30 }, (_, i) => i));
    await lifetimes[0]?.addKey(...held.slice(0, 10));
    await lifetimes[1]?.addKey(...held.slice(10, 30));
    const orphans = (await store.putBatch(Array.from({ length: 25 }, (_, i) => ({ i })))).sort();
    const conn = await open(redisUrl, namespace);

    for (const budget of [200_000, 15, 0]) {
      surveyTuning.foreignInMemory = budget; // all in memory; the small set only; none
      const report = await inspectNamespace(conn, Infinity, quiet);
      expect(report.orphans.items.map((o) => o.key), `budget ${budget}`).toEqual(orphans);
      expect(report.objects).toBe(55);
    }
  });

  test('keys with braces and % are decoded back to the store key', async ({ store, redisUrl, namespace }) => {
    const key = 'we{ir}d%7Bkey~x';
    await store.connector.set(key, Buffer.from('bytes'));
    const conn = await open(redisUrl, namespace);
    const report = await inspectNamespace(conn, Infinity, quiet);
    expect(report.orphans.items.map((o) => o.key)).toEqual([key]);
    expect(report.unrecognized.count).toBe(0);
  });
});

describe('parseKey', () => {
  const keys = new KeySpace('app');

  test('reads back what KeySpace builds, and nothing else', () => {
    for (const key of ['plain', 'lt~member', 'a{b}~%', '%7B']) {
      for (const kind of ['d', 'own', 'lease', 'done', 'tomb'] as const) {
        expect(parseKey(keys, keys.object(kind, key))).toMatchObject({ type: 'object', kind, key });
      }
      // A grace copy's key ends with its consumer's token.
      const grace = keys.graceCopy(key, 'tokenAAAAAAAAAAAAAAAAA');
      expect(parseKey(keys, grace)).toMatchObject({ type: 'object', kind: 'grace', key, redisKey: grace });
      expect(parseKey(keys, keys.object('grace', key)), 'a grace key without a token').toBeUndefined();
    }
    expect(parseKey(keys, keys.lifetime('members', 'Ab_-9'))).toEqual({ type: 'lifetime', kind: 'members', id: 'Ab_-9', redisKey: 'app:{Ab_-9}:members' });
    for (const other of ['app:{x}:d:y', 'app:{x}:nope:x', 'app:{x}', 'app:x:{y}:d:y', 'app:{x}:d:', 'app:{x}:d:%41', 'app:{x y}:lt', 'appx:{x}:d:x']) {
      expect(parseKey(keys, other), other).toBeUndefined();
    }
  });
});

describe('the terminal progress bar', () => {
  test('draws in place, prints lines above itself and clears itself at the end', () => {
    let written = '';
    const stream = { columns: 100, write: (s: string) => (written += s) } as unknown as NodeJS.WriteStream;
    const bar = terminalProgress(stream);
    bar.stage('gc', 200);
    expect(written).toBe('\r\x1b[2Kgc [----------------------------------------] 0% 0/200 keys');
    written = '';
    bar.log('evicted k1');
    expect(written).toBe(`\r\x1b[2Kevicted k1\n\r\x1b[2Kgc [${'-'.repeat(40)}] 0% 0/200 keys`);
    written = '';
    bar.advance(100, '1 evicted');
    bar.log('evicted k2');
    expect(written).toContain('\r\x1b[2Kgc [####################--------------------] 50% 100/200 keys · 1 evicted');
    written = '';
    bar.done();
    expect(written).toBe('\r\x1b[2K');
    written = '';
    bar.log('summary');
    expect(written).toBe('summary\n'); // no bar after done()
  });
});
