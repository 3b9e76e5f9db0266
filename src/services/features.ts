import type { Redis, Result } from 'ioredis';
import type { Config } from '../config.ts';
import type { StoredEvent } from '../db/events.ts';
import type { EventType } from '../generated/prisma/enums.ts';

/** How much one event of each type counts (config EVENT_WEIGHTS). */
export type EventWeights = Readonly<Record<EventType, number>>;

/** How many recently touched items `recentItems` returns by default. */
export const RECENT_ITEMS_SHOWN = 50;
/** How many distinct items of a shopper's history we keep (with their summed weights) for fold-in. */
export const HISTORY_ITEMS_KEPT = 500;
// Long enough that a redelivered job is recognised; short enough that markers do not pile up.
const APPLIED_MARKER_TTL_SECONDS = 7 * 24 * 3600;
/** Items touched within this time before an event count as "viewed this, then that" with it. */
const SESSION_WINDOW_MS = 30 * 60_000;
/** The most earlier items of the session one event pairs with, to bound the work per event. */
const SESSION_PAIRS_PER_EVENT = 5;
/** Co-visited items kept per item, the most frequent first. */
const COVISITS_KEPT = 100;

/** The fields of a stored event that online features depend on. */
export type FeatureEvent = Pick<StoredEvent, 'eventId' | 'userId' | 'type' | 'itemId' | 'category' | 'occurredAt'>;

/**
 * Applies one event atomically and at most once (KEYS[1] is the event's applied-marker).
 * - Trending scores are kept as log2 of a forward-decayed sum: an event adds weight·2^((t−epoch)/halfLife),
 *   summed in log space so the scores never overflow; these updates commute, so any order gives the same.
 * - The shopper's history: items by last touch (KEYS[3]) and their summed event weights (KEYS[6]), both
 *   trimmed to the newest HISTORY_ITEMS_KEPT items; fold-in reads it.
 * - Session co-visitation: the first touch of an item within the session window pairs it, both ways, with
 *   the shopper's other items of that window (ARGV[9] prefixes the per-item count keys; they are derived
 *   from the item, so this script needs a single Redis node, not a cluster).
 */
const APPLY_EVENT_LUA = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[8]) then return 0 end
local item = ARGV[1]
if item == '' then return 1 end
local at = tonumber(ARGV[3])
if ARGV[2] ~= '' then
  local add = tonumber(ARGV[2])
  local current = redis.call('ZSCORE', KEYS[2], item)
  if current then
    current = tonumber(current)
    local high, low = math.max(current, add), math.min(current, add)
    add = high + math.log(1 + 2 ^ (low - high)) / math.log(2)
  end
  redis.call('ZADD', KEYS[2], add, item)
end
local since = at - tonumber(ARGV[10])
local touched = redis.call('ZSCORE', KEYS[3], item)
if not (touched and tonumber(touched) >= since and tonumber(touched) <= at) then
  local keep = tonumber(ARGV[12])
  local session = redis.call('ZREVRANGEBYSCORE', KEYS[3], at, since, 'LIMIT', 0, tonumber(ARGV[11]))
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
redis.call('ZADD', KEYS[3], 'GT', ARGV[3], item)
local weight = tonumber(ARGV[5])
if weight > 0 then redis.call('HINCRBYFLOAT', KEYS[6], item, weight) end
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if excess > 0 then
  local dropped = redis.call('ZRANGE', KEYS[3], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
  redis.call('HDEL', KEYS[6], unpack(dropped))
end
if ARGV[4] ~= '' and weight > 0 then redis.call('HINCRBYFLOAT', KEYS[4], ARGV[4], ARGV[5]) end
if ARGV[6] == '1' then redis.call('SADD', KEYS[5], item) end
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    pgwApplyEvent(...keysThenArgs: string[]): Result<number, Context>;
  }
}

/** A trending item: its id and its score relative to the most trending item (1 = the top). */
export interface TrendingItem {
  itemId: string;
  score: number;
  /** The stored score (log2 of the forward-decayed sum): it only ever grows, and compares across reads. */
  logScore: number;
}

/** Per shopper, their recent distinct items with summed event weights. */
export type Histories = Map<string, Map<string, number>>;

/** An item touched in the same session as another, and in how many sessions. */
export interface CoVisit {
  itemId: string;
  count: number;
}

/** Online features in Redis: trending items, each shopper's recent items, bought items and category tastes. */
export class FeatureStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #halfLifeMs: number;
  readonly #weights: EventWeights;

  constructor(redis: Redis, options: { prefix: string; halfLifeHours: number; weights: EventWeights }) {
    this.#redis = redis;
    this.#prefix = `${options.prefix}:f`;
    this.#halfLifeMs = options.halfLifeHours * 3600_000;
    this.#weights = options.weights;
    redis.defineCommand('pgwApplyEvent', { numberOfKeys: 6, lua: APPLY_EVENT_LUA });
  }

  /** The store as the configuration sets it up (prefix, trending half-life, event weights). */
  static fromConfig(
    redis: Redis,
    config: Pick<Config, 'REDIS_PREFIX' | 'POPULARITY_HALF_LIFE_HOURS' | 'EVENT_WEIGHTS'>,
  ): FeatureStore {
    return new FeatureStore(redis, {
      prefix: config.REDIS_PREFIX,
      halfLifeHours: config.POPULARITY_HALF_LIFE_HOURS,
      weights: config.EVENT_WEIGHTS,
    });
  }

  #keys(event: FeatureEvent): string[] {
    const user = `${this.#prefix}:u:${event.userId}`;
    return [
      `${this.#prefix}:applied:${event.eventId}`,
      this.#trendingKey,
      `${user}:recent`,
      `${user}:cat`,
      `${user}:bought`,
      `${user}:weights`,
    ];
  }

  #coVisitsKey(itemId: string): string {
    return `${this.#prefix}:covisit:${itemId}`;
  }

  get #trendingKey(): string {
    return `${this.#prefix}:trending`;
  }

  #args(event: FeatureEvent): string[] {
    const weight = this.#weights[event.type];
    const at = event.occurredAt.getTime();
    return [
      event.itemId ?? '',
      weight > 0 ? String(Math.log2(weight) + at / this.#halfLifeMs) : '',
      String(at),
      event.category ?? '',
      String(weight),
      event.type === 'PURCHASE' ? '1' : '0',
      String(HISTORY_ITEMS_KEPT),
      String(APPLIED_MARKER_TTL_SECONDS),
      this.#coVisitsKey(''),
      String(SESSION_WINDOW_MS),
      String(SESSION_PAIRS_PER_EVENT),
      String(COVISITS_KEPT),
    ];
  }

  /** Applies events in one round trip, each at most once (a redelivered or replayed event is skipped). */
  async applyMany(events: readonly FeatureEvent[]): Promise<void> {
    await this.applyAndReadHistories(events, []);
  }

  /**
   * Applies events as `applyMany` does and reads these shoppers' histories after them, in the same round
   * trip: the worker's freshness path needs both, one after the other.
   */
  async applyAndReadHistories(events: readonly FeatureEvent[], userIds: readonly string[]): Promise<Histories> {
    if (events.length === 0 && userIds.length === 0) return new Map();
    const pipeline = this.#redis.pipeline();
    for (const event of events) pipeline.pgwApplyEvent(...this.#keys(event), ...this.#args(event));
    for (const userId of userIds) pipeline.hgetall(`${this.#prefix}:u:${userId}:weights`);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
    const histories: Histories = new Map();
    userIds.forEach((userId, index) => {
      const raw = results[events.length + index]?.[1] as Record<string, string>;
      histories.set(userId, new Map(Object.entries(raw).map(([item, weight]) => [item, Number(weight)])));
    });
    return histories;
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

  async boughtItems(userId: string): Promise<Set<string>> {
    return new Set(await this.#redis.smembers(`${this.#prefix}:u:${userId}:bought`));
  }

  /** The shopper's recently touched items, newest first. */
  async recentItems(userId: string, count = RECENT_ITEMS_SHOWN): Promise<string[]> {
    return this.#redis.zrevrange(`${this.#prefix}:u:${userId}:recent`, 0, count - 1);
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
    const raw = await this.#redis.hgetall(`${this.#prefix}:u:${userId}:cat`);
    return Object.fromEntries(Object.entries(raw).map(([category, count]) => [category, Number(count)]));
  }

  /** Deletes every derived feature (and applied-marker) of this deployment, before a full rebuild. */
  async clear(): Promise<number> {
    let deleted = 0;
    const stream = this.#redis.scanStream({ match: `${this.#prefix}:*`, count: 1000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length) deleted += await this.#redis.unlink(...keys);
    }
    return deleted;
  }
}
