import type { Redis, Result } from 'ioredis';
import type { Config } from '../config.ts';
import type { StoredEvent } from '../db/events.ts';
import type { EventType } from '../generated/prisma/enums.ts';

/** How much one event of each type counts (config EVENT_WEIGHTS). */
export type EventWeights = Readonly<Record<EventType, number>>;

/** How many recently touched items we keep per shopper. */
export const RECENT_ITEMS_KEPT = 50;
// Long enough that a redelivered job is recognised; short enough that markers do not pile up.
const APPLIED_MARKER_TTL_SECONDS = 7 * 24 * 3600;

/** The fields of a stored event that online features depend on. */
export type FeatureEvent = Pick<StoredEvent, 'eventId' | 'userId' | 'type' | 'itemId' | 'category' | 'occurredAt'>;

/**
 * Applies one event atomically and at most once (KEYS[1] is the event's applied-marker).
 * Trending scores are kept as log2 of a forward-decayed sum: an event adds weight·2^((t−epoch)/halfLife),
 * summed in log space so the scores never overflow. Every update commutes, so events may be applied in any
 * order and a replay of the event log rebuilds the same state.
 */
const APPLY_EVENT_LUA = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[8]) then return 0 end
local item = ARGV[1]
if item == '' then return 1 end
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
redis.call('ZADD', KEYS[3], 'GT', ARGV[3], item)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[7]) + 1))
if ARGV[4] ~= '' and tonumber(ARGV[5]) > 0 then redis.call('HINCRBYFLOAT', KEYS[4], ARGV[4], ARGV[5]) end
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
    redis.defineCommand('pgwApplyEvent', { numberOfKeys: 5, lua: APPLY_EVENT_LUA });
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
    ];
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
      String(RECENT_ITEMS_KEPT),
      String(APPLIED_MARKER_TTL_SECONDS),
    ];
  }

  /** Applies events in one round trip, each at most once (a redelivered or replayed event is skipped). */
  async applyMany(events: readonly FeatureEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const event of events) pipeline.pgwApplyEvent(...this.#keys(event), ...this.#args(event));
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  }

  /** The top trending items, best first, `offset` to page further down. */
  async trending(count: number, offset = 0): Promise<TrendingItem[]> {
    const top = await this.#redis.zrevrange(this.#trendingKey, 0, 0, 'WITHSCORES');
    if (top.length < 2) return [];
    const topScore = Number(top[1]);
    const flat = await this.#redis.zrevrange(this.#trendingKey, offset, offset + count - 1, 'WITHSCORES');
    const items: TrendingItem[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      items.push({ itemId: flat[i] as string, score: 2 ** (Number(flat[i + 1]) - topScore) });
    }
    return items;
  }

  async boughtItems(userId: string): Promise<Set<string>> {
    return new Set(await this.#redis.smembers(`${this.#prefix}:u:${userId}:bought`));
  }

  /** The shopper's recently touched items, newest first. */
  async recentItems(userId: string, count = RECENT_ITEMS_KEPT): Promise<string[]> {
    return this.#redis.zrevrange(`${this.#prefix}:u:${userId}:recent`, 0, count - 1);
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
