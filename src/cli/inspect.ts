/**
 * `inspect`: the namespace's lifetimes, owned objects, consumed objects and
 * orphans; `inspect KEY`: one object or lifetime in detail. Read-only.
 *
 * @module
 */
import { parseManifest } from '../chunks/format.js';
import { tagOf } from '../keys.js';
import type { Connection } from './connect.js';
import {
  JSON_VERSION,
  lifetimeInfo,
  ownedInfo,
  referencesInfo,
  tombstoneInfo,
  type LifetimeInfo,
  type LifetimeStateName,
  type OrphanInfo,
  type OwnedInfo,
  type ReferencesInfo,
  type TombstoneInfo,
} from './details.js';
import { cell, count, duration, plural, seconds, table, ttl } from './format.js';
import { foreignPattern, scanPages } from './layout.js';
import type { Progress } from './progress.js';
import { classifyData, classifyStaging, indexNamespace, loadForeignIndex, serverTimeMs } from './survey.js';

/** A table's rows: `items.length < count` when cut by --limit. */
export interface Section<T> {
  count: number;
  items: T[];
}

/** `inspect --json`. */
export interface InspectReport {
  version: typeof JSON_VERSION;
  command: 'inspect';
  namespace: string;
  server: string;
  cluster: boolean;
  serverTimeMs: number;
  /** Rows per section, or null for all. */
  limit: number | null;
  /** Objects stored in the namespace (data keys the library wrote), held or not. */
  objects: number;
  /** Of those, objects that nothing holds but their own expiry (a ttl): they go by themselves, gc leaves them. */
  expiring: number;
  /** Objects with a budget of consuming reads left (reads: n, not used up). */
  withReads: number;
  /** Deduped objects (dedupe: true) with references: their holders (puts, lifetimes) evict them. */
  deduped: number;
  /** Of the objects, chunked ones (stored bytes over the store's chunkSize: a manifest and chunks). */
  chunked: number;
  /**
   * Staging hashes of chunked writes: `writing` (with a TTL: a writer's, or
   * going by itself) and `stale` (no TTL: no writer left; gc evicts them).
   */
  staging: { writing: number; stale: number };
  lifetimes: Section<LifetimeInfo>;
  owned: Section<OwnedInfo>;
  tombstones: Section<TombstoneInfo>;
  orphans: Section<OrphanInfo>;
  /** Keys under `<ns>:{` that the library did not write (up to 20 shown). */
  unrecognized: { count: number; sample: string[] };
}

/** Code-unit order, the same in every locale. */
function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function mapLimited<T, R>(items: T[], fn: (item: T) => Promise<R>, width = 200): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

/** Survey the namespace. */
export async function inspectNamespace(conn: Connection, limit: number, progress: Progress): Promise<InspectReport> {
  const keys = conn.connector.keys;
  const client = conn.client;
  progress.stage('reading namespace');
  const index = await indexNamespace(conn, (n) => progress.advance(n));
  const nowMs = await serverTimeMs(conn);

  const foreign = await loadForeignIndex(
    conn,
    [...index.lifetimes].filter(([, lt]) => lt.foreign).map(([id]) => id),
  );
  const orphans: OrphanInfo[] = [];
  let orphanCount = 0;
  let objects = 0;
  let expiring = 0;
  let chunked = 0;
  const unrecognized = { ...index.unrecognized, sample: [...index.unrecognized.sample] };
  progress.stage('checking objects', index.dataKeys);
  await classifyData(conn, foreign, (page) => {
    orphanCount += page.orphans.length;
    objects += page.objects;
    expiring += page.expiring;
    chunked += page.chunked;
    for (const o of page.orphans) {
      if (orphans.length < limit) orphans.push({ key: o.key, ttlMs: o.ttlMs, idleSeconds: o.idleSeconds });
    }
    unrecognized.count += page.unrecognized.length;
    for (const k of page.unrecognized) if (unrecognized.sample.length < 20) unrecognized.sample.push(k);
    progress.advance(page.scanned, `${plural(orphanCount, 'orphan')}`);
  });
  orphans.sort((a, b) => byString(a.key, b.key));
  const staging = { writing: 0, stale: 0 };
  if (index.staging > 0) {
    await classifyStaging(conn, (found) => {
      for (const st of found) staging[st.ttlMs === null ? 'stale' : 'writing']++;
    });
  }

  const first = <T>(items: Iterable<T>): T[] => [...items].sort().slice(0, limit);
  const lifetimes = await mapLimited(first(index.lifetimes.keys()), (id) => lifetimeInfo(client, keys, id, nowMs));
  lifetimes.sort((a, b) => (a.createdAtMs ?? Infinity) - (b.createdAtMs ?? Infinity) || byString(a.id, b.id));
  const owned = await mapLimited(first(index.owned), (key) => ownedInfo(client, keys, key, nowMs));
  const tombstones = (await mapLimited(first(index.tombstones), (key) => tombstoneInfo(client, keys, key, nowMs))).filter(
    (t): t is TombstoneInfo => t !== null,
  );
  progress.done();

  return {
    version: JSON_VERSION,
    command: 'inspect',
    namespace: conn.connector.namespace,
    server: conn.describe(),
    cluster: conn.isCluster,
    serverTimeMs: nowMs,
    limit: Number.isFinite(limit) ? limit : null,
    objects,
    expiring,
    withReads: index.rules,
    deduped: index.deduped,
    chunked,
    staging,
    lifetimes: { count: index.lifetimes.size, items: lifetimes },
    owned: { count: index.owned.size, items: owned },
    tombstones: { count: index.tombstones.size, items: tombstones },
    orphans: { count: orphanCount, items: orphans },
    unrecognized,
  };
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function section<T>(title: string, s: Section<T>, render: (items: T[]) => string, note = ''): string {
  const head = `${title} (${count(s.count)})${note}`;
  if (s.count === 0) return `${head}\n  (none)`;
  const more = s.count > s.items.length ? `\n  ... and ${count(s.count - s.items.length)} more (--limit 0 lists all)` : '';
  return `${head}\n${render(s.items)}${more}`;
}

/** The report as text: a summary line and four tables. */
export function renderInspect(r: InspectReport): string {
  const parts: string[] = [];
  parts.push(
    `Namespace ${r.namespace} on ${r.server}: ${plural(r.objects, 'object')}, ${plural(r.lifetimes.count, 'lifetime')}, ` +
      `${count(r.owned.count)} owned, ${count(r.tombstones.count)} consumed, ${plural(r.orphans.count, 'orphan')}` +
      (r.expiring > 0 ? `, ${count(r.expiring)} expiring by their ttl` : '') +
      (r.withReads > 0 ? `, ${count(r.withReads)} with reads left` : '') +
      (r.deduped > 0 ? `, ${count(r.deduped)} deduped (held by references)` : '') +
      (r.chunked > 0 ? `, ${count(r.chunked)} chunked` : '') +
      (r.staging.writing > 0 ? `, ${plural(r.staging.writing, 'chunked write')} in progress` : '') +
      (r.staging.stale > 0 ? `, ${plural(r.staging.stale, 'stale staging hash', 'stale staging hashes')} (gc evicts these)` : ''),
  );
  parts.push(
    section('Lifetimes', r.lifetimes, (items) =>
      table(
        [
          { title: 'ID' },
          { title: 'KIND' },
          { title: 'NAME' },
          { title: 'STATE' },
          { title: 'MEMBERS', right: true },
          { title: 'FOREIGN', right: true },
          { title: 'OWN TTL/READS', right: true },
          { title: 'TIME LEFT', right: true },
        ],
        items.map((l) => [
          l.id,
          l.kind ?? '?',
          cell(l.name ?? '-'),
          l.state,
          count(l.members),
          count(l.foreignMembers),
          count(l.membersWithRules),
          l.timeLeftMs === null ? '-' : duration(l.timeLeftMs),
        ]),
      ),
    ),
  );
  parts.push(
    section('Owned objects', r.owned, (items) =>
      table(
        [
          { title: 'KEY' },
          { title: 'OWNER' },
          { title: 'SHARED BORROWS', right: true },
          { title: 'MUT BORROW' },
          { title: 'LEASE LEFT', right: true },
          { title: 'DATA' },
          { title: 'LIFETIME' },
        ],
        items.map((o) => [
          cell(o.key),
          o.lifetime?.ended ? 'ended' : o.ownerPresent ? 'present' : 'gone',
          count(o.sharedBorrows),
          yesNo(o.mutableBorrow),
          o.leaseLeftMs === null ? '-' : duration(o.leaseLeftMs),
          o.dataPresent ? 'present' : 'missing',
          o.lifetime ? `${cell(o.lifetime.id ?? '(own ttl)')}${o.lifetime.ended ? ' (ended)' : ''}` : '-',
        ]),
      ),
    ),
  );
  parts.push(
    section('Consumed objects', r.tombstones, (items) =>
      table(
        [{ title: 'KEY' }, { title: 'READS', right: true }, { title: 'PID', right: true }, { title: 'HOST' }, { title: 'FRAME' }, { title: 'AGE', right: true }, { title: 'GRACE COPY' }],
        items.map((t) => [
          cell(t.key),
          t.reads === null ? '1' : count(t.reads),
          t.consumer.pid === null ? '?' : String(t.consumer.pid),
          cell(t.consumer.host ?? '?'),
          cell(t.consumer.frame ?? '-'),
          t.ageMs === null ? '?' : duration(t.ageMs),
          t.graceCopy ? `yes (${ttl(t.graceExpiresInMs)} left)` : 'no',
        ]),
      ),
    ),
  );
  parts.push(
    section(
      'Orphans: objects that belong to nothing',
      r.orphans,
      (items) =>
        table(
          [{ title: 'KEY' }, { title: 'IDLE', right: true }, { title: 'TTL', right: true }],
          items.map((o) => [cell(o.key), seconds(o.idleSeconds), ttl(o.ttlMs)]),
        ),
      r.orphans.count > 0 ? ' - gc evicts these' : '',
    ),
  );
  if (r.unrecognized.count > 0) {
    const listed = r.unrecognized.sample.map((k) => `  ${cell(k)}`).join('\n');
    const more = r.unrecognized.count > r.unrecognized.sample.length ? `\n  ... and ${count(r.unrecognized.count - r.unrecognized.sample.length)} more` : '';
    parts.push(`Other keys (${count(r.unrecognized.count)}): not written by proxystore-redis; gc leaves them alone\n${listed}${more}`);
  }
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------
// inspect KEY

/** A lifetime that holds an object. */
export interface Holder {
  id: string;
  /** true: an own member (in its members set); false: a foreign member. */
  own: boolean;
  state: LifetimeStateName;
}

/** The object side of `inspect KEY --json`. */
export interface ObjectDetail {
  key: string;
  /**
   * owned | member (of a lifetime) | referenced (a deduped object: held by
   * its references) | expiring (held by nothing but its own ttl: it goes by
   * itself) | orphan | consumed | missing (only other keys of it remain).
   */
  status: 'owned' | 'member' | 'referenced' | 'expiring' | 'orphan' | 'consumed' | 'missing';
  /** A deduped object's references (dedupe: true); null for other objects. */
  references: ReferencesInfo | null;
  /** Its budget of consuming reads (reads: n, n >= 2): how many are left of how many; null without one. */
  reads: { left: number; of: number } | null;
  data: {
    present: boolean;
    /** The Redis type of the data key (string for every object the library wrote). */
    type: string | null;
    ttlMs: number | null;
    idleSeconds: number | null;
    /** MEMORY USAGE, or null where refused. */
    memoryBytes: number | null;
    /**
     * A chunked object's manifest (its data key is a hash): stored bytes in
     * all (the 3 to 8 header bytes included), how many chunks, bytes per
     * chunk; null for an object stored as one string.
     */
    chunks: { bytes: number; count: number; chunkSize: number } | null;
  };
  ownership: OwnedInfo | null;
  lifetimes: Holder[];
  tombstone: TombstoneInfo | null;
}

/** A member in a lifetime's sample. */
export interface MemberSample {
  key: string;
  foreign: boolean;
  present: boolean;
}

/** The lifetime side of `inspect KEY --json`. */
export interface LifetimeDetail extends LifetimeInfo {
  /** Up to --limit members, own then foreign. */
  sample: MemberSample[];
}

/** `inspect KEY --json`: `object`, `lifetime`, or both, never neither (then exit code 3). */
export interface KeyReport {
  version: typeof JSON_VERSION;
  command: 'inspect';
  namespace: string;
  server: string;
  serverTimeMs: number;
  key: string;
  object: ObjectDetail | null;
  lifetime: LifetimeDetail | null;
}

const LIFETIME_ID = /^[A-Za-z0-9_-]{1,128}$/;

async function objectDetail(conn: Connection, key: string, nowMs: number): Promise<ObjectDetail | null> {
  const keys = conn.connector.keys;
  const client = conn.client;
  const data = keys.object('d', key);
  const [type, dataTtl, owned, tombTtl, budget] = await Promise.all([
    client.type(data),
    client.pttl(data),
    client.exists(keys.object('own', key), keys.object('lease', key)),
    client.pttl(keys.object('tomb', key)),
    // A rules record of another type is not ours: no budget shown.
    client.hmget(keys.object('rules', key), 'reads', 'of').catch(() => [null, null]),
  ]);
  const present = type !== 'none';
  // A grace copy is found through its tombstone (its key names the consumer's token).
  if (!present && owned === 0 && tombTtl === -2) return null;

  const [idle, memory] = present
    ? await Promise.all([
        (client.object('IDLETIME', data) as Promise<number>).catch(() => null),
        client.memory('USAGE', data).catch(() => null),
      ])
    : [null, null];
  // A chunked object: its manifest, read after IDLETIME (HGET counts as an access; see docs/cli.md).
  const manifest = type === 'hash' ? parseManifest(await client.hget(data, 'm').catch(() => null)) : undefined;

  const holders: Holder[] = [];
  if (present) {
    const tag = tagOf(key);
    // `<ns>:{<tag>}:d:<name>`: the tag is encoded and has no '}'.
    const at = data.indexOf('}:d:');
    const prefix = data.slice(0, at + 2);
    const name = data.slice(at + 4);
    if (LIFETIME_ID.test(tag) && (await client.sismember(`${prefix}members`, name)) === 1) {
      holders.push({ id: tag, own: true, state: 'open' });
    }
    for await (const page of scanPages(conn.masters(), foreignPattern(keys))) {
      for (const set of page) {
        const id = set.slice(set.indexOf('{') + 1, set.lastIndexOf('}'));
        if (LIFETIME_ID.test(id) && (await client.sismember(set, data)) === 1) holders.push({ id, own: false, state: 'open' });
      }
    }
    for (const h of holders) h.state = (await lifetimeInfo(client, keys, h.id, nowMs)).state;
  }
  const ownership = owned > 0 ? await ownedInfo(client, keys, key, nowMs) : null;
  const references = present ? await referencesInfo(client, keys, key, nowMs) : null;
  const tombstone = tombTtl !== -2 ? await tombstoneInfo(client, keys, key, nowMs) : null;
  const status: ObjectDetail['status'] = !present
    ? tombstone
      ? 'consumed'
      : 'missing'
    : ownership
      ? 'owned'
      : holders.length > 0
        ? 'member'
        : references
          ? 'referenced'
          : type !== 'string' && !manifest
          ? 'missing'
          : dataTtl >= 0
            ? 'expiring'
            : 'orphan';
  const [left, of] = budget.map((v) => (v === null ? NaN : Number(v)));
  return {
    key,
    status,
    reads: present && Number.isInteger(left) && Number.isInteger(of) ? { left: left as number, of: of as number } : null,
    data: {
      present,
      type: present ? type : null,
      ttlMs: dataTtl >= 0 ? dataTtl : null,
      idleSeconds: idle === null ? null : Number(idle),
      memoryBytes: memory === null ? null : Number(memory),
      chunks: manifest ? { bytes: manifest.total, count: manifest.count, chunkSize: manifest.chunkSize } : null,
    },
    ownership,
    references,
    lifetimes: holders,
    tombstone,
  };
}

async function lifetimeDetail(conn: Connection, id: string, limit: number, nowMs: number): Promise<LifetimeDetail | null> {
  if (!LIFETIME_ID.test(id)) return null;
  const keys = conn.connector.keys;
  const client = conn.client;
  const members = keys.lifetime('members', id);
  const foreign = keys.lifetime('foreign', id);
  const exists = await client.exists(keys.lifetime('lt', id), members, foreign);
  if (exists === 0) return null;
  const info = await lifetimeInfo(client, keys, id, nowMs);
  const sample: MemberSample[] = [];
  for (const [set, isForeign] of [
    [members, false],
    [foreign, true],
  ] as const) {
    let cursor = '0';
    do {
      const [next, batch] = await client.sscan(set, cursor, 'COUNT', 1000);
      cursor = next;
      for (const m of batch) {
        if (sample.length >= limit) break;
        // Own members are store keys as encoded in their data key; foreign members are whole data keys.
        const data = isForeign ? m : `${members.slice(0, -'members'.length)}d:${m}`;
        sample.push({ key: isForeign ? storeKeyOf(conn, m) : decodeName(m), foreign: isForeign, present: (await client.exists(data)) === 1 });
      }
    } while (cursor !== '0' && sample.length < limit);
  }
  return { ...info, sample };
}

function decodeName(name: string): string {
  return name.replace(/%(25|7B|7D)/g, (_, hex: string) => (hex === '25' ? '%' : hex === '7B' ? '{' : '}'));
}

/** The store key of a whole data key (for foreign members), or the Redis key itself if it is not one. */
function storeKeyOf(conn: Connection, dataKey: string): string {
  const i = dataKey.indexOf('}:d:');
  if (!dataKey.startsWith(`${conn.connector.namespace}:{`) || i < 0) return dataKey;
  return decodeName(dataKey.slice(i + 4));
}

/** One object and/or lifetime in detail, or null when Redis knows neither. */
export async function inspectKey(conn: Connection, key: string, limit: number): Promise<KeyReport | null> {
  const nowMs = await serverTimeMs(conn);
  const [object, lifetime] = await Promise.all([objectDetail(conn, key, nowMs), lifetimeDetail(conn, key, limit, nowMs)]);
  if (!object && !lifetime) return null;
  return {
    version: JSON_VERSION,
    command: 'inspect',
    namespace: conn.connector.namespace,
    server: conn.describe(),
    serverTimeMs: nowMs,
    key,
    object,
    lifetime,
  };
}

function field(name: string, text: string): string {
  return `  ${name.padEnd(12)} ${text}`;
}

/** `inspect KEY` as text. */
export function renderKey(r: KeyReport): string {
  const parts: string[] = [];
  const o = r.object;
  if (o) {
    const lines = [`Object ${cell(o.key)} in namespace ${r.namespace}`];
    const status = {
      owned: 'owned',
      member: 'held by a lifetime',
      referenced: 'deduped: held by its references (the last evict, or the end of the last, deletes it)',
      expiring: 'held by its own ttl: it goes by itself (gc leaves it)',
      orphan: 'orphan: belongs to nothing (gc evicts it)',
      consumed: 'consumed (an ephemeral object that was resolved)',
      missing: o.data.present ? `not an object (a Redis ${o.data.type ?? '?'})` : 'missing (its data is gone)',
    }[o.status];
    lines.push(field('status', status));
    if (o.data.present) {
      const size = o.data.memoryBytes === null ? '' : `, ${count(o.data.memoryBytes)} bytes in memory`;
      lines.push(field('data', `${o.data.type}${size}, idle ${seconds(o.data.idleSeconds)}, TTL ${ttl(o.data.ttlMs)}`));
      const c = o.data.chunks;
      if (c) lines.push(field('chunked', `${count(c.bytes)} bytes stored in ${plural(c.count, 'chunk')} of ${count(c.chunkSize)} bytes`));
    } else {
      lines.push(field('data', 'missing'));
    }
    if (o.references) {
      const f = o.references;
      const kinds = [
        f.withoutEnd > 0 ? `${count(f.withoutEnd)} put${f.withoutEnd === 1 ? '' : 's'} without an end` : '',
        f.withTtl > 0 ? `${count(f.withTtl)} with a ttl` : '',
        f.lifetimes.length > 0 ? `${plural(f.lifetimes.length, 'lifetime')} (${f.lifetimes.join(', ')})` : '',
      ].filter((k) => k !== '');
      const end = f.latestEndMs === null ? 'no end while one without an end holds it' : `the last ends in ${duration(f.latestEndMs - r.serverTimeMs)}`;
      lines.push(field('references', `${count(f.count)}: ${kinds.join(', ')}; ${end}`));
    }
    if (o.reads) lines.push(field('reads', `${count(o.reads.left)} left of ${count(o.reads.of)} (each consuming resolve spends one; the last deletes it)`));
    if (o.ownership) {
      const w = o.ownership;
      const ended = w.lifetime?.ended === true;
      lines.push(field('owner', ended ? 'ended by its lifetime (the object goes when its last borrow ends)' : w.ownerPresent ? 'present' : 'gone (the object goes when its last borrow ends)'));
      if (w.lifetime) {
        const l = w.lifetime;
        const who = l.id === null ? 'its own expiry' : `lifetime ${cell(l.id)}`;
        const when = ended
          ? `ended${l.endedAtMs === null ? '' : ` ${duration(Math.max(0, r.serverTimeMs - l.endedAtMs))} ago`}`
          : l.untilLeftMs === null
            ? 'until it is closed'
            : `until ${duration(l.untilLeftMs)} from now`;
        lines.push(field('bound by', `${who}, ${when}`));
      }
      lines.push(field('borrows', `${plural(w.sharedBorrows, 'shared borrow')}, ${w.mutableBorrow ? 'a' : 'no'} mutable borrow`));
      for (const h of w.handles) {
        lines.push(field(h === w.handles[0] ? 'handles' : '', `${h.role.padEnd(7)} held by ${cell(h.holder ?? '?')}, lease ends in ${duration(h.leaseLeftMs)}`));
      }
    }
    for (const h of o.lifetimes) {
      lines.push(field(h === o.lifetimes[0] ? 'lifetimes' : '', `${h.id} (${h.own ? 'own' : 'foreign'} member, ${h.state})`));
    }
    if (o.tombstone) {
      const t = o.tombstone;
      const who = `pid ${t.consumer.pid ?? '?'} on ${cell(t.consumer.host ?? '?')}`;
      const ago = t.ageMs === null ? '' : ` ${duration(t.ageMs)} ago`;
      const at = t.consumer.frame ? ` at ${cell(t.consumer.frame)}` : '';
      const reads = t.reads === null ? '' : `: read ${count(t.reads)} of ${count(t.reads)} times, the last`;
      lines.push(field('consumed', `by ${who}${ago}${at}${reads} (tombstone expires in ${ttl(t.expiresInMs)})`));
      lines.push(field('grace copy', t.graceCopy ? `yes, ${ttl(t.graceExpiresInMs)} left` : 'no'));
    }
    parts.push(lines.join('\n'));
  }
  const l = r.lifetime;
  if (l) {
    const lines = [`Lifetime ${l.id} in namespace ${r.namespace}`];
    lines.push(field('kind', l.kind ?? '?'));
    if (l.name) lines.push(field('name', cell(l.name)));
    lines.push(field('state', l.state));
    if (l.createdAtMs !== null) lines.push(field('created', `${duration(r.serverTimeMs - l.createdAtMs)} ago`));
    if (l.expiresAtMs !== null) lines.push(field('lease ends', l.timeLeftMs === null ? '-' : `in ${duration(l.timeLeftMs)}`));
    if (l.closingAtMs !== null) lines.push(field('closing', `since ${duration(r.serverTimeMs - l.closingAtMs)}`));
    if (l.endedAtMs !== null) lines.push(field('ended', `${duration(r.serverTimeMs - l.endedAtMs)} ago (marker expires in ${ttl(l.metaTtlMs)})`));
    const ruled = l.membersWithRules > 0 ? ` (${count(l.membersWithRules)} with their own ttl or reads)` : '';
    const deduped = l.dedupedMembers > 0 ? `, ${count(l.dedupedMembers)} deduped (one reference each, released at its end)` : '';
    lines.push(field('members', `${count(l.members)} own, ${count(l.foreignMembers)} foreign${ruled}${deduped}`));
    for (const m of l.sample) {
      lines.push(field(m === l.sample[0] ? 'sample' : '', `${cell(m.key)}${m.foreign ? ' (foreign)' : ''}${m.present ? '' : ' (data missing)'}`));
    }
    const total = l.members + l.foreignMembers;
    if (total > l.sample.length) lines.push(field('', `... and ${count(total - l.sample.length)} more (--limit 0 lists all)`));
    parts.push(lines.join('\n'));
  }
  return parts.join('\n\n');
}
