/**
 * `gc`: evict the orphans, objects that no lifetime holds and no owner owns.
 * A dry run unless `--yes`.
 *
 * It streams: a page of data keys (one SCAN call) is classified
 * (src/cli/survey.ts), then its orphans are listed (dry run) or evicted, one
 * `gcEvict` script per orphan, sent together, before the next page is read.
 * Memory stays bounded by a page, whatever the namespace's size. Each
 * `gcEvict` checks again, atomically, that the object has no owner, is no own
 * member of a lifetime, and is idle long enough, so an object that became
 * held since its page was read is kept. Foreign membership (a lifetime of
 * another hash tag) is decided from the snapshot taken at the start: see
 * docs/cli.md, "Safety".
 *
 * Tombstones and grace copies are never touched (they expire by themselves),
 * nor are keys the library did not write. A chunked object (its data key is
 * a hash: manifest and chunks) is an object like any other. After the
 * objects, gc looks at the staging hashes of chunked writes
 * (src/cli/survey.ts, {@link classifyStaging}): one with a TTL belongs to a
 * writer (or goes by itself); one without a TTL has no writer left and is
 * evicted (`kind: 'staging'` items), if it is idle for --older-than. An eviction is recorded for 60 s
 * in the object's set of finished calls (`<ns>:{<tag>}:done:<key>`, as the
 * ownership scripts do), so that a resend of its call after a lost reply
 * reports it as evicted.
 *
 * @module
 */
import { randomId } from '../keys.js';
import type { Connection } from './connect.js';
import { JSON_VERSION } from './details.js';
import { count, plural, seconds, ttl } from './format.js';
import type { Progress } from './progress.js';
import { classifyData, classifyStaging, indexNamespace, loadForeignIndex, unlinkStaleStaging, type Orphan } from './survey.js';

/** What gc did, or would do, with one orphan. */
export type GcAction = 'would-evict' | 'evicted' | 'kept';

/** Why an orphan was kept after all: what `gcEvict` found when it checked again. */
export type KeptReason = 'gone' | 'owned' | 'member' | 'recent' | 'not-bytes' | 'expiring' | 'referenced';

/** One line of `gc`; an element of `items` in `gc --json`. */
export interface GcItem {
  /** `object`: an orphan; `staging`: a stale staging hash of a chunked write of `key` (`redisKey`). */
  kind: 'object' | 'staging';
  key: string;
  /** The staging hash's Redis key (`staging` items only). */
  redisKey?: string;
  ttlMs: number | null;
  idleSeconds: number | null;
  action: GcAction;
  /** For `kept` only. */
  reason: KeptReason | null;
}

/** The counts at the end of `gc`. */
export interface GcSummary {
  /** Objects looked at (data keys the library wrote, held or not). */
  objects: number;
  /** Objects that belonged to nothing. */
  orphans: number;
  /** Orphans left alone because --older-than found them used too recently. */
  tooRecent: number;
  /** Dry run: orphans that would be evicted. */
  wouldEvict: number;
  evicted: number;
  /** Orphans that became held (or went) between the check and the eviction. */
  kept: number;
  /**
   * Staging hashes of chunked writes: `found` in all, `stale` of those (no
   * TTL: no writer left; idle for --older-than if given), `evicted` (with --yes).
   */
  staging: { found: number; stale: number; evicted: number };
}

/** `gc --json`: `{ version, command, namespace, server, cluster, dryRun, olderThanSeconds, items: [...], summary }`. */
export interface GcReport {
  version: typeof JSON_VERSION;
  command: 'gc';
  namespace: string;
  server: string;
  cluster: boolean;
  dryRun: boolean;
  olderThanSeconds: number | null;
  items: GcItem[];
  summary: GcSummary;
}

/** gc refuses to go on (exit code 1). */
export class GcError extends Error {
  override readonly name = 'GcError';
}

/** Where gc's items go: text lines or a JSON document, written as they come. */
export interface GcSink {
  item(item: GcItem): void;
  finish(summary: GcSummary): void;
}

export interface GcOptions {
  yes: boolean;
  olderThan: number | undefined;
}

const KEPT: Record<number, KeptReason> = { 0: 'gone', 2: 'owned', 3: 'member', 4: 'recent', 5: 'not-bytes', 6: 'expiring', 7: 'referenced' };

/** Run gc; items go to `sink` as they are decided. */
export async function runGc(conn: Connection, options: GcOptions, sink: GcSink, progress: Progress): Promise<GcSummary> {
  const scripts = conn.connector.scripts;
  const minIdle = options.olderThan ?? 0;
  progress.stage('reading namespace');
  const index = await indexNamespace(conn, (n) => progress.advance(n), { lifetimesOnly: true });
  const foreign = await loadForeignIndex(
    conn,
    [...index.lifetimes].filter(([, lt]) => lt.foreign).map(([id]) => id),
  );
  const summary: GcSummary = { objects: 0, orphans: 0, tooRecent: 0, wouldEvict: 0, evicted: 0, kept: 0, staging: { found: 0, stale: 0, evicted: 0 } };
  const status = () =>
    options.yes ? `${plural(summary.evicted, 'evicted', 'evicted')}` : `${plural(summary.wouldEvict, 'orphan')} to evict`;
  progress.stage(options.yes ? 'gc' : 'gc (dry run)', index.dataKeys);

  await classifyData(conn, foreign, async (page) => {
    summary.objects += page.objects;
    summary.orphans += page.orphans.length;
    const chosen: Orphan[] = [];
    for (const o of page.orphans) {
      if (options.olderThan !== undefined) {
        if (o.idleSeconds === null) {
          throw new GcError(
            'this Redis does not track idle time (its maxmemory-policy is an LFU policy), so --older-than cannot be used',
          );
        }
        if (o.idleSeconds < options.olderThan) {
          summary.tooRecent++;
          continue;
        }
      }
      chosen.push(o);
    }
    if (!options.yes) {
      for (const o of chosen) {
        summary.wouldEvict++;
        sink.item({ kind: 'object', key: o.key, ttlMs: o.ttlMs, idleSeconds: o.idleSeconds, action: 'would-evict', reason: null });
      }
    } else if (chosen.length > 0) {
      const codes = await Promise.all(
        chosen.map((o) =>
          scripts.run(
            'gcEvict',
            {
              data: o.data.redisKey,
              record: `${o.data.prefix}own:${o.data.name}`,
              leases: `${o.data.prefix}lease:${o.data.name}`,
              members: `${o.data.prefix}members`,
              done: `${o.data.prefix}done:${o.data.name}`,
              rules: `${o.data.prefix}rules:${o.data.name}`,
              refs: `${o.data.prefix}refs:${o.data.name}`,
            },
            // A token per call: a resend of this call after a lost reply says
            // "evicted" again (recorded in the object's done set), not "gone".
            { member: o.data.name, minIdle, token: randomId() },
            { key: o.key },
          ),
        ),
      );
      chosen.forEach((o, i) => {
        const code = codes[i] as number;
        if (code === 1) summary.evicted++;
        else summary.kept++;
        sink.item({
          kind: 'object',
          key: o.key,
          ttlMs: o.ttlMs,
          idleSeconds: o.idleSeconds,
          action: code === 1 ? 'evicted' : 'kept',
          reason: code === 1 ? null : (KEPT[code] ?? null),
        });
      });
    }
    progress.advance(page.scanned, status());
  });
  if (index.staging > 0) {
    progress.stage(options.yes ? 'gc: staging hashes' : 'gc (dry run): staging hashes', index.staging);
    await classifyStaging(conn, async (found, scanned) => {
      summary.staging.found += found.length;
      for (const st of found) {
        if (st.ttlMs !== null) continue; // a writer's, or it goes by itself
        if (options.olderThan !== undefined && (st.idleSeconds === null || st.idleSeconds < options.olderThan)) continue;
        summary.staging.stale++;
        const base = { kind: 'staging' as const, key: st.key, redisKey: st.redisKey, ttlMs: null, idleSeconds: st.idleSeconds };
        if (!options.yes) {
          sink.item({ ...base, action: 'would-evict', reason: null });
        } else if (await unlinkStaleStaging(st)) {
          summary.staging.evicted++;
          sink.item({ ...base, action: 'evicted', reason: null });
        } else {
          sink.item({ ...base, action: 'kept', reason: 'gone' });
        }
      }
      progress.advance(scanned, status());
    });
  }
  progress.done();
  sink.finish(summary);
  return summary;
}

const REASONS: Record<KeptReason, string> = {
  gone: 'it was gone already',
  owned: 'it got an owner since it was checked',
  member: 'it was added to a lifetime since it was checked',
  recent: 'it was used since it was checked (--older-than)',
  'not-bytes': 'its data key holds another Redis type (not written by proxystore-redis)',
  expiring: 'it got an expiry since it was checked (it goes by itself)',
  referenced: 'it is a deduped object that got a reference since it was checked (its holders evict it)',
};

/** Text lines, one per orphan, and a closing summary. */
export function textSink(namespace: string, options: GcOptions, log: (line: string) => void): GcSink {
  return {
    item(i) {
      const about = `(idle ${seconds(i.idleSeconds)}, TTL ${ttl(i.ttlMs)})`;
      const what = i.kind === 'staging' ? `the stale staging hash of a chunked write of ${i.key} (${i.redisKey ?? '?'})` : i.key;
      if (i.action === 'would-evict') log(`would evict ${what}  ${about}`);
      else if (i.action === 'evicted') log(`evicted ${what}  ${about}`);
      else log(`kept ${what}: ${i.kind === 'staging' ? 'it got a TTL or went since it was checked' : REASONS[i.reason ?? 'gone']}`);
    },
    finish(s) {
      const among = `of ${plural(s.objects, 'object')} in namespace ${namespace}`;
      const st = s.staging;
      const staging =
        st.stale === 0
          ? ''
          : options.yes
            ? ` Evicted ${plural(st.evicted, 'stale staging hash', 'stale staging hashes')} of chunked writes.`
            : ` ${plural(st.stale, 'stale staging hash', 'stale staging hashes')} of chunked writes would be evicted too.`;
      const recent = s.tooRecent > 0 ? ` ${plural(s.tooRecent, 'orphan')} used within the last ${seconds(options.olderThan ?? 0)} left alone (--older-than).` : '';
      if (!options.yes && s.wouldEvict === 0 && st.stale === 0) {
        log(`Nothing to evict: no orphan ${among}${s.tooRecent > 0 ? ' is old enough' : ''}.${recent}`);
      } else if (!options.yes) {
        log(
          `Dry run: ${plural(s.wouldEvict, 'orphan')} ${among} would be evicted.${staging}${recent} ` +
            `Run again with --yes to evict ${s.wouldEvict + st.stale === 1 ? 'it' : 'them'}.`,
        );
      } else {
        const kept = s.kept > 0 ? ` ${count(s.kept)} kept (held or gone since they were checked).` : '';
        log(`Evicted ${plural(s.evicted, 'orphan')} ${among}.${kept}${staging}${recent}`);
      }
    },
  };
}

/**
 * The JSON document, written as it goes (so memory does not grow with the
 * number of orphans): the header fields, `items` one by one, then `summary`.
 */
export function jsonSink(header: Omit<GcReport, 'items' | 'summary'>, write: (text: string) => void): GcSink {
  let first = true;
  write(`${JSON.stringify(header).slice(0, -1)},"items":[`);
  return {
    item(i) {
      write(`${first ? '\n' : ',\n'}${JSON.stringify(i)}`);
      first = false;
    },
    finish(s) {
      write(`${first ? '' : '\n'}],"summary":${JSON.stringify(s)}}\n`);
    },
  };
}
