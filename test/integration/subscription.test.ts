import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const WATCH = `subscription($userId: ID!, $k: Int) {
  recommendationsUpdated(userId: $userId, k: $k) {
    userId items { item { id price inStock } } causedBy { eventId receivedAt processedAt } change { trigger entered left }
  }
}`;
const TRACK = `mutation($input: EventInput!) { trackEvent(input: $input) { status } }`;

interface Pushed {
  recommendationsUpdated: {
    userId: string;
    items: { item: { id: string; price: string | null; inStock: boolean } }[];
    causedBy: { eventId: string; receivedAt: string; processedAt: string } | null;
    change: { trigger: string; entered: string[]; left: string[] };
  };
}

describe('recommendationsUpdated', () => {
  let gateway: RunningGateway;
  const items = [uniqueId('a'), uniqueId('b'), uniqueId('c')];

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: items.map((id) => ({ id, name: id })),
    });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a shopper subscribes then the current list arrives at once, and a new one after their event', async () => {
    const userId = uniqueId('shopper');
    const eventId = uniqueId('evt');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId, k: 3 });

    const first = await subscription.next();
    await gateway.graphql(TRACK, { input: { eventId, userId, type: 'PURCHASE', itemId: items[1] } });
    const second = await subscription.next(5000);

    expect(first.data?.recommendationsUpdated).toMatchObject({ userId, causedBy: null });
    expect(first.data?.recommendationsUpdated.items).toHaveLength(3);
    expect(first.data?.recommendationsUpdated.change).toMatchObject({ trigger: 'SUBSCRIBED', left: [] });
    expect(first.data?.recommendationsUpdated.change.entered.sort()).toEqual([...items].sort());
    expect(second.data?.recommendationsUpdated.causedBy?.eventId).toBe(eventId);
    // Freshness along the way: received by the gateway, then processed by the worker.
    const cause = second.data?.recommendationsUpdated.causedBy;
    expect(Date.parse(cause?.processedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(cause?.receivedAt ?? ''));
    // Bought now, so no longer offered; the purchase also made it the top trend for everybody else.
    expect(second.data?.recommendationsUpdated.items.map((r) => r.item.id)).not.toContain(items[1]);
    expect(second.data?.recommendationsUpdated.change).toEqual({ trigger: 'EVENT', entered: [], left: [items[1]] });
    await subscription.close();
  });

  it('when another shopper acts then this subscriber gets no push for it', async () => {
    const userId = uniqueId('shopper');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId, k: 3 });
    await subscription.next();

    const otherEvent = uniqueId('evt');
    await gateway.graphql(TRACK, {
      input: { eventId: otherEvent, userId: uniqueId('someone-else'), type: 'VIEW', itemId: items[0] },
    });
    await eventually(
      async () => (await gateway.app.db.event.findUnique({ where: { eventId: otherEvent } }))?.processedAt,
    );
    const ownEvent = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId: ownEvent, userId, type: 'PURCHASE', itemId: items[2] } });

    // The other shopper's event was fully processed first: had it pushed here, that push would come first.
    const pushed = await subscription.next(5000);
    expect(pushed.data?.recommendationsUpdated.causedBy?.eventId).toBe(ownEvent);
    await subscription.close();
  });

  it('when the shopper’s event changes nothing they see then no list is pushed for it', async () => {
    const userId = uniqueId('shopper');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId, k: 3 });
    await subscription.next();

    // A view of an item the catalogue does not offer moves nothing on this shopper's list.
    const unseen = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId: unseen, userId, type: 'VIEW', itemId: uniqueId('unlisted') } });
    await eventually(async () => (await gateway.app.db.event.findUnique({ where: { eventId: unseen } }))?.processedAt);
    const visible = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId: visible, userId, type: 'PURCHASE', itemId: items[0] } });

    // Had the first event pushed, that push would arrive first.
    const pushed = await subscription.next(5000);
    expect(pushed.data?.recommendationsUpdated.causedBy?.eventId).toBe(visible);
    expect(pushed.data?.recommendationsUpdated.change.left).toEqual([items[0]]);
    await subscription.close();
  });

  it('when a burst of the shopper’s events is processed together then one list is pushed, naming the last', async () => {
    const userId = uniqueId('shopper');
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId, k: 3 });
    await subscription.next();
    const burst = items.slice(0, 2).map((itemId) => ({ eventId: uniqueId('evt'), userId, type: 'PURCHASE', itemId }));

    await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
      inputs: burst,
    });
    const pushed = await subscription.next(5000);
    const sentinel = uniqueId('evt');
    await gateway.graphql(TRACK, { input: { eventId: sentinel, userId, type: 'PURCHASE', itemId: items[2] } });
    const next = await subscription.next(5000);

    // Whole objects, so a failure shows what was pushed instead.
    expect(pushed).toMatchObject({
      data: { recommendationsUpdated: { causedBy: { eventId: burst[1]?.eventId }, change: { trigger: 'EVENT' } } },
    });
    expect(pushed.data?.recommendationsUpdated.change.left.sort()).toEqual(items.slice(0, 2).sort());
    // The burst's first event got no push of its own: the next one is the sentinel's.
    expect(next).toMatchObject({
      data: {
        recommendationsUpdated: { causedBy: { eventId: sentinel }, change: { trigger: 'EVENT', left: [items[2]] } },
      },
    });
    await subscription.close();
  });

  it('when the event goes to another gateway replica then the subscriber on this one gets the push', async () => {
    const replica = await startGateway(gateway.config, { workers: false });
    try {
      const userId = uniqueId('shopper');
      const subscription = subscribe<Pushed>(replica.wsClient(), WATCH, { userId, k: 3 });
      await subscription.next();
      const eventId = uniqueId('evt');

      await gateway.graphql(TRACK, { input: { eventId, userId, type: 'PURCHASE', itemId: items[1] } });
      const pushed = await subscription.next(5000);

      expect(pushed.data?.recommendationsUpdated.causedBy?.eventId).toBe(eventId);
      expect(pushed.data?.recommendationsUpdated.change).toEqual({ trigger: 'EVENT', entered: [], left: [items[1]] });
    } finally {
      await replica.stop();
    }
  });

  it('when the price or stock of an item on the list changes then the subscriber gets a fresh list', async () => {
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: uniqueId('shopper'), k: 3 });
    await subscription.next();
    const upsert = (item: Record<string, unknown>) =>
      gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, { items: [item] });
    // Pushes arrive until one shows the change; each wait has its own deadline.
    const until = async (seen: (items: Pushed['recommendationsUpdated']['items']) => boolean) => {
      for (;;) {
        const pushed = await subscription.next(5000);
        if (seen(pushed.data!.recommendationsUpdated.items)) return pushed;
      }
    };

    await upsert({ id: items[0], name: items[0], price: 12.5 });
    await until((list) => list.some((r) => r.item.id === items[0] && r.item.price === '12.50'));
    await upsert({ id: items[0], name: items[0], inStock: false });
    const afterStockOut = await until((list) => !list.some((r) => r.item.id === items[0]));

    expect(afterStockOut.data?.recommendationsUpdated.causedBy).toBeNull();
    expect(afterStockOut.data?.recommendationsUpdated.change).toEqual({
      trigger: 'CATALOG',
      entered: [],
      left: [items[0]],
    });
    await subscription.close();
  });

  it('when k is out of range then the subscription fails with INVALID_INPUT naming k', async () => {
    const subscription = subscribe<Pushed>(gateway.wsClient(), WATCH, { userId: uniqueId('shopper'), k: 500 });

    const result = await subscription.next().catch((error: unknown) => ({ errors: error }));

    expect(JSON.stringify(result.errors)).toMatch(/"code":"INVALID_INPUT".*"field":"k"/);
  });
});

describe('subscription hygiene', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    const config = await createTestConfig({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '2', ADMIN_TOKEN: 'sesame' });
    gateway = await startGateway(config, { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a connection opens more subscriptions than allowed then the extra one fails with TOO_MANY_SUBSCRIPTIONS', async () => {
    const client = gateway.wsClient();
    const first = subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 });
    const second = subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 });
    await first.next();
    await second.next();

    const third = subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 });
    const refused = await third.next().catch((error: unknown) => ({ errors: error }));
    await first.close();
    // The server frees the slot once the completed subscription has wound down; retry until it has.
    const accepted = await eventually(() =>
      subscribe<Pushed>(client, WATCH, { userId: uniqueId('shopper'), k: 3 })
        .next()
        .catch(() => undefined),
    );

    expect(JSON.stringify(refused.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
    expect(accepted.data?.recommendationsUpdated.items).toBeDefined();
  });

  it('when connection_init carries the admin token then admin operations over the socket are allowed', async () => {
    const retrain = 'mutation { retrainModel { jobId } }';
    const withToken = subscribe<{ retrainModel: { jobId: string } }>(
      gateway.wsClient({ authorization: 'Bearer sesame' }),
      retrain,
      {},
    );
    const without = subscribe<{ retrainModel: { jobId: string } }>(gateway.wsClient(), retrain, {});

    const allowed = await withToken.next();
    const refused = await without.next();

    expect(allowed.data?.retrainModel.jobId).toEqual(expect.any(String));
    expect(JSON.stringify(refused.errors)).toContain('FORBIDDEN');
  });
});

/** A subscription over HTTP (Server-Sent Events), read one event at a time with a deadline. */
function openSse(url: string, query: string, variables: Record<string, unknown>) {
  const abort = new AbortController();
  const response = fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    /** The data of the next `next` event (a result) within the deadline. */
    async next(deadlineMs = 5000): Promise<{ data?: unknown; errors?: unknown }> {
      const reader = (await response).body?.getReader();
      if (!reader) throw new Error('no event stream');
      const timer = setTimeout(() => abort.abort(), deadlineMs);
      try {
        for (;;) {
          const end = buffered.indexOf('\n\n');
          if (end >= 0) {
            const message = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const data = message.split('\n').find((line) => line.startsWith('data:'));
            if (message.startsWith('event: next') && data) return JSON.parse(data.slice(5));
            continue;
          }
          const chunk = await reader.read();
          if (chunk.done) throw new Error('stream ended');
          buffered += decoder.decode(chunk.value, { stream: true });
        }
      } finally {
        clearTimeout(timer);
        reader.releaseLock();
      }
    },
    close() {
      abort.abort();
    },
  };
}

describe('subscription caps across transports', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig({ MAX_SUBSCRIPTIONS: '2' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  it('when subscriptions over SSE reach MAX_SUBSCRIPTIONS then the next one, over SSE or WebSocket, fails with TOO_MANY_SUBSCRIPTIONS, and a closed stream gives its slot back', async () => {
    const watch = () => ({ userId: uniqueId('shopper'), k: 3 });
    const first = openSse(gateway.url, WATCH, watch());
    const second = openSse(gateway.url, WATCH, watch());
    const opened = [await first.next(), await second.next()];

    const overSse = openSse(gateway.url, WATCH, watch());
    const refusedSse = await overSse.next();
    const refusedWs = await subscribe<Pushed>(gateway.wsClient(), WATCH, watch())
      .next()
      .catch((error: unknown) => ({ errors: error }));
    overSse.close();
    first.close();
    // The slot comes back once the server sees the stream closed; retry until it has.
    const accepted = await eventually(async () => {
      const again = openSse(gateway.url, WATCH, watch());
      const body = await again.next();
      if (body.errors) {
        again.close();
        return undefined;
      }
      return { body, again };
    });
    accepted.again.close();
    second.close();

    expect(opened.map((body) => body.errors)).toEqual([undefined, undefined]);
    expect(JSON.stringify(refusedSse.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
    expect(JSON.stringify(refusedWs.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
    expect(accepted.body.data).toBeDefined();
  });
});
