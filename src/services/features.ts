import type { Redis, Result } from 'ioredis';
import type { Config } from '../config.ts';
import type { StoredEvent } from '../db/events.ts';
import type { EventType } from '../generated/prisma/enums.ts';
import { ShopperIds } from './shopper-ids.ts';

/** How much one event of each type counts (config EVENT_WEIGHTS). */
export type EventWeights = Readonly<Record<EventType, number>>;

/** How many recently touched items `recentItems` returns by default. */
export const RECENT_ITEMS_SHOWN = 50;
/** How many distinct items of a shopper's history we keep (with their summed weights) for fold-in. */
export const HISTORY_ITEMS_KEPT = 500;
/**
 * How many of a shopper's latest distinct items an item-to-item model scores them by (history × neighbour
 * table, per request): the cost is this × the table's N per list, and older items say less about what
 * they want next than the last few dozen.
 */
export const SERVED_HISTORY_ITEMS = 50;
/**
 * How many of a shopper's purchased items we keep (the newest); lists never offer these again. A purchase
 * older than the newest BOUGHT_ITEMS_KEPT distinct ones may be offered again.
 */
export const BOUGHT_ITEMS_KEPT = 500;
/**
 * How many of a shopper's applied event ids (the Event table's sequence `id`) we keep, the newest, to skip a
 * redelivered event. An event below a full window is applied as new: it can be a redelivery only if this many
 * later events of the same shopper were applied first, and the sweep re-queues only rows whose processedAt is
 * unset, so in practice it is a late, genuinely new event.
 */
export const APPLIED_IDS_KEPT = 64;
/** Items the trending ranking keeps, the highest scores; an item that falls off starts again from its next event. */
const TRENDING_ITEMS_KEPT = 100_000;
/** Items touched within this time before an event count as "viewed this, then that" with it. */
const SESSION_WINDOW_MS = 30 * 60_000;
/** The most earlier items of the session one event pairs with, to bound the work per event. */
const SESSION_PAIRS_PER_EVENT = 5;
/** Co-visited items kept per item, the most frequent first. */
const COVISITS_KEPT = 100;
/**
 * The key layout this code reads and writes; a rebuild writes it last, and a worker that finds another value
 * (or none: an empty Redis, or one holding the layout before per-shopper windows) rebuilds before serving.
 */
export const FEATURE_LAYOUT = '2';

/**
 * The fields of a stored event that online features depend on (`id` is the log's sequence number). `counted`
 * false: its item is neither in the catalogue nor a placeholder (beyond MAX_PLACEHOLDER_ITEMS), so the event
 * is only marked applied and shapes no feature, as if it named no item.
 */
export type FeatureEvent = Pick<
  StoredEvent,
  'id' | 'eventId' | 'userId' | 'type' | 'itemId' | 'category' | 'occurredAt' | 'receivedAt' | 'personal'
> & { counted?: boolean };

/** What the script returns for one event. */
const APPLIED = 1;
const SKIPPED = 0;
const ABSENT = -1;
const ERASED = -2;
const PAUSED = -3;
/** Applied to the anonymous aggregates only: the shopper does not consent to personalisation. */
const ANONYMOUS = 2;
/**
 * Event ids of non-personalised events kept, the newest, to skip a redelivered one: one shared window, since
 * such a shopper has no keys of their own. A redelivery older than the window counts toward trending twice.
 */
const ANONYMOUS_IDS_KEPT = 50_000;

/**
 * How long an erasure's tombstone stays: events of the erased shopper received before it (still queued, or
 * stored as the erasure ran) are dropped when a worker meets them within this time. Queued jobs are purged by
 * the erasure itself and retries end within a minute, so a week is far beyond what any such event can wait.
 */
export const TOMBSTONE_TTL_MS = 7 * 86_400_000;

/**
 * A worker's events were not applied because a replay of the whole log is clearing and rebuilding the
 * features (see `pauseLiveApplies`); apply them again once it is over (those the replay applied are skipped).
 */
export class ReplayRunningError extends Error {
  constructor() {
    super('a replay of the event log is rebuilding the features; the events apply after it');
  }
}

/**
 * Applies one event atomically and at most once. Every key it writes is capped or expires:
 * - Global (KEYS[1] trending, trimmed to the ARGV[18] best items; the co-visitation lists under ARGV[9], one
 *   per item, each trimmed): bounded by the number of items, never expired; restoring a shopper's state
 *   from earlier events (ARGV[16] = 'restore') leaves them alone, as they counted those events already.
 * - Per shopper: KEYS[6] the newest ARGV[14] applied event ids (an id found there is skipped: a redelivery);
 *   KEYS[2] items by last touch and KEYS[5] their summed event weights, both trimmed to the newest ARGV[7]
 *   items, which fold-in reads; KEYS[3] weight per category (bounded by the catalogue's categories); KEYS[4]
 *   bought items by last purchase, trimmed to the newest ARGV[15]. Each gets its expiry (ARGV[8] ms)
 *   refreshed by every event of the shopper, so an inactive shopper's state goes as a whole.
 * - With ARGV[22] = '1' (a worker's apply, not a replay's), nothing is applied while KEYS[11] exists: a
 *   replay is clearing and rebuilding the features (see `pauseLiveApplies`).
 * - With ARGV[17] = '1', a shopper without state (no KEYS[6]: expired or new) is not applied but answered
 *   -1, so the worker restores their history from Postgres first; not while KEYS[7], the layout marker, is
 *   missing (a rebuild is replaying the whole log).
 * - Trending scores are kept as log2 of a forward-decayed sum: an event adds weight·2^((t−epoch)/halfLife),
 *   summed in log space so the scores never overflow; these updates commute, so any order gives the same.
 * - KEYS[8] is the shopper's erasure tombstone (outside the features' namespace, so a rebuild keeps it): an
 *   event received (ARGV[19], ms) before the erasure it records changes nothing and is answered -2.
 * - Without consent (ARGV[20] = '0', or KEYS[9], the shopper's no-consent marker, exists) an event adds to
 *   trending only, at most once by the shared window KEYS[10] of the newest ARGV[21] such ids, writes
 *   nothing of the shopper's (their marker's expiry is refreshed) and is answered 2.
 * - Session co-visitation: the first touch of an item within the session window pairs it, both ways, with
 *   the shopper's other items of that window (ARGV[9] prefixes the per-item count keys; they are derived
 *   from the item, so this script needs a single Redis node, not a cluster).
 */
const APPLY_EVENT_LUA = `
if ARGV[22] == '1' and redis.call('EXISTS', KEYS[11]) == 1 then return ${PAUSED} end
local erased = redis.call('GET', KEYS[8])
if erased and tonumber(ARGV[19]) < tonumber(erased) then return ${ERASED} end
local seq = ARGV[13]
local live = ARGV[16] ~= 'restore'
local item = ARGV[1]
local at = tonumber(ARGV[3])
local function add_trending()
  if not live or item == '' or ARGV[2] == '' then return end
  local add = tonumber(ARGV[2])
  local current = redis.call('ZSCORE', KEYS[1], item)
  if current then
    current = tonumber(current)
    local high, low = math.max(current, add), math.min(current, add)
    add = high + math.log(1 + 2 ^ (low - high)) / math.log(2)
  end
  -- Only a new item can push the ranking past its size; the lowest scores go.
  if redis.call('ZADD', KEYS[1], add, item) == 1 then
    local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[18])
    if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1) end
  end
end
if ARGV[20] == '0' or redis.call('EXISTS', KEYS[9]) == 1 then
  if not live or redis.call('ZSCORE', KEYS[10], seq) then return ${SKIPPED} end
  redis.call('ZADD', KEYS[10], seq, seq)
  local over = redis.call('ZCARD', KEYS[10]) - tonumber(ARGV[21])
  if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[10], 0, over - 1) end
  add_trending()
  if redis.call('EXISTS', KEYS[9]) == 1 then redis.call('PEXPIRE', KEYS[9], ARGV[8]) end
  return ${ANONYMOUS}
end
if redis.call('ZSCORE', KEYS[6], seq) then return ${SKIPPED} end
if ARGV[17] == '1' and redis.call('EXISTS', KEYS[6]) == 0 and redis.call('EXISTS', KEYS[7]) == 1 then
  return ${ABSENT}
end
if not live and redis.call('ZCARD', KEYS[6]) >= tonumber(ARGV[14]) then
  -- A restore goes in id order, so an id below its full window was restored already (by a concurrent job).
  local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  if tonumber(seq) < tonumber(oldest[2]) then return ${SKIPPED} end
end
local function refresh_expiry()
  for i = 2, 6 do redis.call('PEXPIRE', KEYS[i], ARGV[8]) end
end
redis.call('ZADD', KEYS[6], seq, seq)
local ids = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[14])
if ids > 0 then redis.call('ZREMRANGEBYRANK', KEYS[6], 0, ids - 1) end
if item == '' then
  refresh_expiry()
  return ${APPLIED}
end
add_trending()
local since = at - tonumber(ARGV[10])
local touched = redis.call('ZSCORE', KEYS[2], item)
if live and not (touched and tonumber(touched) >= since and tonumber(touched) <= at) then
  local keep = tonumber(ARGV[12])
  local session = redis.call('ZREVRANGEBYSCORE', KEYS[2], at, since, 'LIMIT', 0, tonumber(ARGV[11]))
  for _, other in ipairs(session) do
    if other ~= item then
      for _, pair in ipairs({ { item, other }, { other, item } }) do
        local key = ARGV[9] .. pair[1]
        -- Only a new pair (count 1) can push the list past its size.
        if tonumber(redis.call('ZINCRBY', key, 1, pair[2])) == 1 then
          local excess = redis.call('ZCARD', key) - keep
          if excess > 0 then redis.call('ZREMRANGEBYRANK', key, 0, excess - 1) end
        end
      end
    end
  end
end
redis.call('ZADD', KEYS[2], 'GT', ARGV[3], item)
local weight = tonumber(ARGV[5])
if weight > 0 then redis.call('HINCRBYFLOAT', KEYS[5], item, weight) end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
if excess > 0 then
  local dropped = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('HDEL', KEYS[5], unpack(dropped))
end
if ARGV[4] ~= '' and weight > 0 then redis.call('HINCRBYFLOAT', KEYS[3], ARGV[4], ARGV[5]) end
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[4], 'GT', ARGV[3], item)
  local bought = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[15])
  if bought > 0 then redis.call('ZREMRANGEBYRANK', KEYS[4], 0, bought - 1) end
end
refresh_expiry()
return ${APPLIED}
`;

/**
 * The shopper's newest ARGV[1] items by last touch (KEYS[1]) with their summed event weights (KEYS[2]) and
 * the time of that touch (ms), as flat [item, weight, touched, …], newest first; one round trip for a
 * per-request read.
 */
const RECENT_HISTORY_LUA = `
local items = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #items == 0 then return {} end
local ids = {}
for i = 1, #items, 2 do ids[#ids + 1] = items[i] end
local weights = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, item in ipairs(ids) do
  out[3 * i - 2] = item
  out[3 * i - 1] = weights[i] or '0'
  out[3 * i] = items[2 * i]
end
return out
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pgwApplyEvent(...keysThenArgs: string[]): Result<number, Context>;
    pgwRecentHistory(recentKey: string, weightsKey: string, count: string): Result<string[], Context>;
  }
}

/** One item of a shopper's history: its summed event weight and when they last touched it. */
export interface HistoryEntry {
  itemId: string;
  weight: number;
  /** Epoch ms of the latest event of theirs that named it. */
  touchedAt: number;
}

/** A trending item: its id and its score relative to the most trending item (1 = the top). */
export interface TrendingItem {
  itemId: string;
  score: number;
  /** The stored score (log2 of the forward-decayed sum): it only ever grows, and compares across reads. */
  logScore: number;
}

/** One shopper's stored features (see `FeatureStore#shopperFeatures`). */
export interface ShopperFeatures {
  /** Item → summed event weight (the history fold-in reads). */
  weights: Map<string, number>;
  /** Item → time of the latest touch (ms). */
  lastTouched: Map<string, number>;
  /** Category → summed event weight. */
  categories: Map<string, number>;
  /** Bought item → time of the latest purchase (ms). */
  bought: Map<string, number>;
}

/** Per shopper, their recent distinct items with summed event weights. */
export type Histories = Map<string, Map<string, number>>;

/** An item touched in the same session as another, and in how many sessions. */
export interface CoVisit {
  itemId: string;
  count: number;
}

/** What applying a worker's events did, and each shopper's history after it. */
export interface AppliedEvents {
  histories: Histories;
  /** Shoppers without state in Redis (expired or new): none of their events was applied; restore them first. */
  absent: Set<string>;
  /** Events of shoppers erased after these events were received: dropped, to be deleted from the log too. */
  erased: FeatureEvent[];
  /** Shoppers without consent: their events counted toward trending only. */
  anonymous: Set<string>;
}

type Mode = 'live' | 'restore';

/**
 * The per-shopper keys, all under `<prefix>:f:u:<userId>:`: recent items, category weights, purchases, item
 * weights, applied ids, folded-in vectors, and the no-consent marker. Erasure deletes exactly these, so a new
 * one belongs here.
 */
const SHOPPER_KEYS = ['recent', 'cat', 'buys', 'weights', 'seen', 'vecs', 'np'] as const;
type ShopperKey = (typeof SHOPPER_KEYS)[number];

/** Online features in Redis: trending items, each shopper's recent items, bought items and category tastes. */
export class FeatureStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #halfLifeMs: number;
  readonly #weights: EventWeights;
  readonly #shopperTtlMs: number;
  readonly #tombstonePrefix: string;
  readonly #ids: ShopperIds;
  /** Whether a shopper who never stated consent is personalised (CONSENT_DEFAULT `granted`). */
  readonly personalByDefault: boolean;

  constructor(
    redis: Redis,
    options: {
      prefix: string;
      halfLifeHours: number;
      weights: EventWeights;
      shopperTtlDays: number;
      /** Names the erasure tombstones (by subject, never by id). */
      ids: ShopperIds;
      /** Whether a shopper who never stated consent is personalised (CONSENT_DEFAULT `granted`). */
      personalByDefault?: boolean;
    },
  ) {
    this.#redis = redis;
    this.#prefix = `${options.prefix}:f`;
    this.#tombstonePrefix = `${options.prefix}:erased:`;
    this.#ids = options.ids;
    this.personalByDefault = options.personalByDefault ?? true;
    this.#halfLifeMs = options.halfLifeHours * 3600_000;
    this.#weights = options.weights;
    this.#shopperTtlMs = Math.max(1, Math.round(options.shopperTtlDays * 86_400_000));
    redis.defineCommand('pgwApplyEvent', { numberOfKeys: 11, lua: APPLY_EVENT_LUA });
    redis.defineCommand('pgwRecentHistory', { numberOfKeys: 2, lua: RECENT_HISTORY_LUA });
  }

  /** The store as the configuration sets it up (prefix, trending half-life, event weights, shopper expiry). */
  static fromConfig(
    redis: Redis,
    config: Pick<
      Config,
      | 'REDIS_PREFIX'
      | 'POPULARITY_HALF_LIFE_HOURS'
      | 'EVENT_WEIGHTS'
      | 'SHOPPER_TTL_DAYS'
      | 'USER_ID_KEY'
      | 'CONSENT_DEFAULT'
    >,
  ): FeatureStore {
    return new FeatureStore(redis, {
      prefix: config.REDIS_PREFIX,
      halfLifeHours: config.POPULARITY_HALF_LIFE_HOURS,
      weights: config.EVENT_WEIGHTS,
      shopperTtlDays: config.SHOPPER_TTL_DAYS,
      ids: new ShopperIds(config.USER_ID_KEY),
      personalByDefault: config.CONSENT_DEFAULT === 'granted',
    });
  }

  /** How long a shopper's keys live after their last event; other per-shopper keys (vectors) use the same. */
  get shopperTtlMs(): number {
    return this.#shopperTtlMs;
  }

  #userKey(userId: string, name: ShopperKey): string {
    return `${this.#prefix}:u:${userId}:${name}`;
  }

  /** Every Redis key that may hold this shopper's state (features, applied ids, folded-in vectors). */
  shopperKeys(userId: string): string[] {
    return SHOPPER_KEYS.map((name) => this.#userKey(userId, name));
  }

  /** The shopper's applied-id window: present exactly while Redis holds state of theirs. */
  appliedIdsKey(userId: string): string {
    return this.#userKey(userId, 'seen');
  }

  /** The shopper's folded-in vectors (written by ShopperVectors). */
  vectorsKey(userId: string): string {
    return this.#userKey(userId, 'vecs');
  }

  /** The erasure tombstone of a shopper, named by their erasure subject. */
  tombstoneKey(userId: string): string {
    return this.#tombstonePrefix + this.#ids.subject(userId);
  }

  /**
   * The shopper withdrew consent: deletes what was built of theirs and, in the same transaction, marks them
   * not to be personalised (until they grant it or the marker expires with `shopperTtlMs` of inactivity, when
   * their next event reads their consent from Postgres again). Returns how many keys held state.
   */
  async withdrawShopper(userId: string): Promise<number> {
    const marker = this.#userKey(userId, 'np');
    const replies = await this.#redis
      .multi()
      .del(...this.shopperKeys(userId).filter((key) => key !== marker))
      .set(marker, '1', 'PX', this.#shopperTtlMs)
      .exec();
    const failed = replies?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    return Number(replies?.[0]?.[1] ?? 0);
  }

  /** Marks shoppers whose consent (read from Postgres) does not cover personalisation, for `shopperTtlMs`. */
  async markNotPersonal(userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const userId of userIds) pipeline.set(this.#userKey(userId, 'np'), '1', 'PX', this.#shopperTtlMs);
    await pipeline.exec();
  }

  /** The shopper granted consent: their next event reads their history from Postgres (what it covers). */
  async grantShopper(userId: string): Promise<void> {
    await this.#redis.del(this.#userKey(userId, 'np'));
  }

  /**
   * Deletes every key of the shopper's state and, in the same transaction, leaves a tombstone saying that
   * events received before `erasedAt` are not to be applied (a worker may still hold some). Returns how many
   * keys held state.
   */
  async eraseShopper(userId: string, erasedAt: Date): Promise<number> {
    const replies = await this.#redis
      .multi()
      .set(this.tombstoneKey(userId), String(erasedAt.getTime()), 'PX', TOMBSTONE_TTL_MS)
      .del(...this.shopperKeys(userId))
      .exec();
    const failed = replies?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    return Number(replies?.[1]?.[1] ?? 0);
  }

  #keys(event: FeatureEvent): string[] {
    return [
      this.#trendingKey,
      this.#userKey(event.userId, 'recent'),
      this.#userKey(event.userId, 'cat'),
      // Not ':bought', the name of the earlier layout's plain set: a sorted set there would be WRONGTYPE.
      this.#userKey(event.userId, 'buys'),
      this.#userKey(event.userId, 'weights'),
      this.#userKey(event.userId, 'seen'),
      this.#layoutKey,
      this.tombstoneKey(event.userId),
      this.#userKey(event.userId, 'np'),
      `${this.#prefix}:anon-seen`,
      this.#pausedKey,
    ];
  }

  /** Outside the features' own prefix, so that the replay's `clear` leaves it. */
  get #pausedKey(): string {
    return `${this.#prefix}-replaying`;
  }

  /**
   * Refuses the workers' live applies (they answer `ReplayRunningError`) until `resumeLiveApplies`, or until
   * `ttlMs` passes without a renewal (a replay that died must not stop the features for good). Set before a
   * replay clears the features: an apply interleaved with the clear could keep an event's applied mark and
   * lose its effect. The check runs inside each apply's script, so no apply starts once this returns.
   */
  async pauseLiveApplies(ttlMs: number): Promise<void> {
    await this.#redis.set(this.#pausedKey, '1', 'PX', ttlMs);
  }

  async resumeLiveApplies(): Promise<void> {
    await this.#redis.del(this.#pausedKey);
  }

  #coVisitsKey(itemId: string): string {
    return `${this.#prefix}:covisit:${itemId}`;
  }

  get #trendingKey(): string {
    return `${this.#prefix}:trending`;
  }

  get #layoutKey(): string {
    return `${this.#prefix}:layout`;
  }

  #args(event: FeatureEvent, mode: Mode, requireState: boolean, live: boolean): string[] {
    const weight = this.#weights[event.type];
    const at = event.occurredAt.getTime();
    return [
      event.counted === false ? '' : (event.itemId ?? ''),
      weight > 0 ? String(Math.log2(weight) + at / this.#halfLifeMs) : '',
      String(at),
      event.category ?? '',
      String(weight),
      event.type === 'PURCHASE' ? '1' : '0',
      String(HISTORY_ITEMS_KEPT),
      String(this.#shopperTtlMs),
      this.#coVisitsKey(''),
      String(SESSION_WINDOW_MS),
      String(SESSION_PAIRS_PER_EVENT),
      String(COVISITS_KEPT),
      event.id.toString(),
      String(APPLIED_IDS_KEPT),
      String(BOUGHT_ITEMS_KEPT),
      mode,
      requireState ? '1' : '0',
      String(TRENDING_ITEMS_KEPT),
      String(event.receivedAt.getTime()),
      event.personal === false ? '0' : '1',
      String(ANONYMOUS_IDS_KEPT),
      live ? '1' : '0',
    ];
  }

  /**
   * Applies events in one round trip, each at most once (an event among its shopper's newest applied ids is
   * skipped); a shopper without state is simply started. The replay's own applies go on while it has paused
   * the live ones (`whilePaused: 'apply'`, the default); a worker's are refused then (`'refuse'`, throwing
   * `ReplayRunningError`) like its other applies, or the replay would clear and count them again.
   */
  async applyMany(events: readonly FeatureEvent[], whilePaused: 'refuse' | 'apply' = 'apply'): Promise<void> {
    await this.#exec(
      events.map((event) => ({ event, mode: 'live', requireState: false })),
      [],
      { whilePaused },
    );
  }

  /**
   * The worker's freshness path: applies events as `applyMany` does and reads these shoppers' histories after
   * them, in the same round trip. The events of a shopper who has no state in Redis are not applied; that
   * shopper is reported `absent`, for `restoreShoppers`.
   */
  async applyAndReadHistories(events: readonly FeatureEvent[], userIds: readonly string[]): Promise<AppliedEvents> {
    const { results, histories } = await this.#exec(
      events.map((event) => ({ event, mode: 'live', requireState: true })),
      userIds,
      { whilePaused: 'refuse' },
    );
    const absent = new Set<string>();
    const erased: FeatureEvent[] = [];
    const anonymous = new Set<string>();
    events.forEach((event, index) => {
      if (results[index] === ABSENT) absent.add(event.userId);
      else if (results[index] === ERASED) erased.push(event);
      else if (results[index] === ANONYMOUS) anonymous.add(event.userId);
    });
    for (const userId of [...absent, ...anonymous]) histories.delete(userId);
    return { histories, absent, erased, anonymous };
  }

  /**
   * Rebuilds absent shoppers' state from their earlier events, in id order (the per-shopper parts only:
   * trending and co-visitation are global, never expired, and counted these events already), then applies
   * their new `events` in full, in one round trip, and returns their histories. Two jobs restoring the same
   * shopper at once count each earlier event once: the second finds it in, or below, the applied-id window.
   */
  async restoreShoppers(
    earlier: readonly FeatureEvent[],
    events: readonly FeatureEvent[],
    userIds: readonly string[],
  ): Promise<Histories> {
    const { histories } = await this.#exec(
      [
        ...earlier.map((event) => ({ event, mode: 'restore' as const, requireState: false })),
        ...events.map((event) => ({ event, mode: 'live' as const, requireState: false })),
      ],
      userIds,
      { whilePaused: 'refuse' },
    );
    return histories;
  }

  /**
   * Runs the applies and reads the histories in one pipeline. `whilePaused`: the worker's applies `refuse`
   * while a replay has paused them (throwing `ReplayRunningError`); the replay's own `apply` regardless.
   */
  async #exec(
    applies: readonly { event: FeatureEvent; mode: Mode; requireState: boolean }[],
    userIds: readonly string[],
    options: { whilePaused: 'refuse' | 'apply' },
  ): Promise<{ results: number[]; histories: Histories }> {
    if (applies.length === 0 && userIds.length === 0) return { results: [], histories: new Map() };
    const pipeline = this.#redis.pipeline();
    for (const { event, mode, requireState } of applies) {
      const live = options.whilePaused === 'refuse';
      pipeline.pgwApplyEvent(...this.#keys(event), ...this.#args(event, mode, requireState, live));
    }
    for (const userId of userIds) pipeline.hgetall(this.#userKey(userId, 'weights'));
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    const results = replies.slice(0, applies.length).map(([, result]) => Number(result));
    // Those applied before the pause are cleared by the replay, which applies them again from the log.
    if (results.includes(PAUSED)) throw new ReplayRunningError();
    const histories: Histories = new Map();
    userIds.forEach((userId, index) => {
      const raw = replies[applies.length + index]?.[1] as Record<string, string>;
      histories.set(userId, new Map(Object.entries(raw).map(([item, weight]) => [item, Number(weight)])));
    });
    return { results, histories };
  }

  /**
   * Whether the features must be rebuilt from the event log before they are served: true when the layout
   * marker is missing (an empty Redis, or one written by the layout before it) or names another layout.
   */
  async needsRebuild(): Promise<boolean> {
    return (await this.#redis.get(this.#layoutKey)) !== FEATURE_LAYOUT;
  }

  /** Records that the features now hold the whole log in this layout (the end of a rebuild). */
  async markRebuilt(): Promise<void> {
    await this.#redis.set(this.#layoutKey, FEATURE_LAYOUT);
  }

  /** The top trending items, best first, `offset` to page further down. */
  async trending(count: number, offset = 0): Promise<TrendingItem[]> {
    const top = await this.#redis.zrevrange(this.#trendingKey, 0, 0, 'WITHSCORES');
    if (top.length < 2) return [];
    const topScore = Number(top[1]);
    const flat = await this.#redis.zrevrange(this.#trendingKey, offset, offset + count - 1, 'WITHSCORES');
    const items: TrendingItem[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const logScore = Number(flat[i + 1]);
      items.push({ itemId: flat[i] as string, score: 2 ** (logScore - topScore), logScore });
    }
    return items;
  }

  /** The stored trending scores (`TrendingItem.logScore`) of these items; items nobody touched are left out. */
  async trendingLogScores(itemIds: readonly string[]): Promise<Map<string, number>> {
    const scores = new Map<string, number>();
    if (itemIds.length === 0) return scores;
    const values = await this.#redis.zmscore(this.#trendingKey, ...itemIds);
    itemIds.forEach((id, index) => {
      const value = values[index];
      if (value != null) scores.set(id, Number(value));
    });
    return scores;
  }

  /** The shopper's newest BOUGHT_ITEMS_KEPT purchased items (bounded, so read whole). */
  async boughtItems(userId: string): Promise<Set<string>> {
    return new Set(await this.#redis.zrange(this.#userKey(userId, 'buys'), 0, -1));
  }

  /** The shopper's recently touched items, newest first. */
  async recentItems(userId: string, count = RECENT_ITEMS_SHOWN): Promise<string[]> {
    return this.#redis.zrevrange(this.#userKey(userId, 'recent'), 0, count - 1);
  }

  /**
   * The shopper's latest `count` distinct items, newest first, with their summed event weights (items whose
   * events weigh nothing come with 0) and last touch: what an item-to-item model scores them by.
   */
  async recentHistory(userId: string, count = SERVED_HISTORY_ITEMS): Promise<HistoryEntry[]> {
    const flat = await this.#redis.pgwRecentHistory(
      this.#userKey(userId, 'recent'),
      this.#userKey(userId, 'weights'),
      String(count),
    );
    const history: HistoryEntry[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      history.push({
        itemId: flat[i] as string,
        weight: Number(flat[i + 1]) || 0,
        touchedAt: Number(flat[i + 2]) || 0,
      });
    }
    return history;
  }

  /** The items the shopper touched (any event) at or after `sinceMs` (epoch ms), among the newest kept. */
  async touchedSince(userId: string, sinceMs: number): Promise<Set<string>> {
    return new Set(await this.#redis.zrangebyscore(this.#userKey(userId, 'recent'), sinceMs, '+inf'));
  }

  /**
   * For each item, the items shoppers touched in the same session ("viewed this, then that"), the most
   * frequent first, with how often.
   */
  async coVisited(itemIds: readonly string[], count: number): Promise<Map<string, CoVisit[]>> {
    const pipeline = this.#redis.pipeline();
    for (const itemId of itemIds) pipeline.zrevrange(this.#coVisitsKey(itemId), 0, count - 1, 'WITHSCORES');
    const results = (await pipeline.exec()) ?? [];
    const coVisits = new Map<string, CoVisit[]>();
    itemIds.forEach((itemId, index) => {
      const [error, flat] = results[index] ?? [];
      if (error) throw error;
      const pairs: CoVisit[] = [];
      const values = flat as string[];
      for (let i = 0; i + 1 < values.length; i += 2) {
        pairs.push({ itemId: values[i] as string, count: Number(values[i + 1]) });
      }
      coVisits.set(itemId, pairs);
    });
    return coVisits;
  }

  /** Weighted interaction counts per category. */
  async categoryCounts(userId: string): Promise<Record<string, number>> {
    const raw = await this.#redis.hgetall(this.#userKey(userId, 'cat'));
    return Object.fromEntries(Object.entries(raw).map(([category, count]) => [category, Number(count)]));
  }

  /**
   * These shoppers' per-shopper features as stored (history weights, last touch per item, category weights,
   * purchases by time), to compare two stores key by key: the fault suite compares the live features with a
   * fresh replay of the log. Shoppers without state come back with empty maps.
   */
  async shopperFeatures(userIds: readonly string[]): Promise<Map<string, ShopperFeatures>> {
    const pipeline = this.#redis.pipeline();
    for (const userId of userIds) {
      pipeline.hgetall(this.#userKey(userId, 'weights'));
      pipeline.zrange(this.#userKey(userId, 'recent'), 0, -1, 'WITHSCORES');
      pipeline.hgetall(this.#userKey(userId, 'cat'));
      pipeline.zrange(this.#userKey(userId, 'buys'), 0, -1, 'WITHSCORES');
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    const numbers = (raw: Record<string, string>) =>
      new Map(Object.entries(raw).map(([key, value]) => [key, Number(value)]));
    const pairs = (flat: string[]) => {
      const map = new Map<string, number>();
      for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i] as string, Number(flat[i + 1]));
      return map;
    };
    const features = new Map<string, ShopperFeatures>();
    userIds.forEach((userId, index) => {
      const reply = (offset: number) => replies[index * 4 + offset]?.[1];
      features.set(userId, {
        weights: numbers(reply(0) as Record<string, string>),
        lastTouched: pairs(reply(1) as string[]),
        categories: numbers(reply(2) as Record<string, string>),
        bought: pairs(reply(3) as string[]),
      });
    });
    return features;
  }

  /**
   * Drops items from the shop-wide features (trending, their co-visitation lists), e.g. pruned placeholders.
   * Shoppers' histories keep them until they fall out of their windows or expire.
   */
  async forgetItems(itemIds: readonly string[]): Promise<void> {
    if (itemIds.length === 0) return;
    await this.#redis.zrem(this.#trendingKey, ...itemIds);
    await this.#redis.unlink(...itemIds.map((itemId) => this.#coVisitsKey(itemId)));
  }

  /** Deletes every derived feature of this deployment (the layout marker too), before a full rebuild. */
  async clear(): Promise<number> {
    // The marker goes first, so nobody reads the features as complete while the rest is being deleted.
    let deleted = await this.#redis.unlink(this.#layoutKey);
    const stream = this.#redis.scanStream({ match: `${this.#prefix}:*`, count: 1000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length) deleted += await this.#redis.unlink(...keys);
    }
    return deleted;
  }
}
