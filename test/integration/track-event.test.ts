import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startWorkers } from '../../src/workers/runtime.ts';
import { eventually, type GraphQLBody, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const TRACK = `mutation Track($input: EventInput!) { trackEvent(input: $input) { eventId status } }`;
const TRACK_MANY = `mutation TrackMany($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { eventId status } }`;

describe('trackEvent and trackEvents', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    // No workers: these tests are about what the gateway acknowledges and stores.
    gateway = await startGateway(await createTestConfig({ MAX_BATCH_SIZE: '5' }), { workers: false });
  });
  afterAll(async () => {
    await gateway.stop();
  });

  const countEvents = (where: { eventId?: string; userId?: string }) => gateway.app.db.event.count({ where });

  it('when an event is new then it answers ACCEPTED and the event is stored', async () => {
    const eventId = uniqueId('evt');
    const userId = uniqueId('user');

    const body = await gateway.graphql(TRACK, {
      input: {
        eventId,
        userId,
        type: 'ADD_TO_CART',
        itemId: 'sku-1',
        quantity: 2,
        value: 19.9,
        context: { page: 'pdp' },
      },
    });

    expect(body).toEqual({ data: { trackEvent: { eventId, status: 'ACCEPTED' } } });
    const stored = await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } });
    expect(stored).toMatchObject({
      userId,
      type: 'ADD_TO_CART',
      itemId: 'sku-1',
      quantity: 2,
      context: { page: 'pdp' },
    });
    expect(stored.value?.toFixed(2)).toBe('19.90');
  });

  it('when the same event comes again then it answers DUPLICATE and stores nothing new', async () => {
    const eventId = uniqueId('evt');
    const input = { eventId, userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1', context: { a: 1, b: [2] } };
    await gateway.graphql(TRACK, { input });

    const again = await gateway.graphql(TRACK, { input: { ...input, context: { b: [2], a: 1 } } });

    expect(again).toEqual({ data: { trackEvent: { eventId, status: 'DUPLICATE' } } });
    expect(await countEvents({ eventId })).toBe(1);
  });

  it('when a retry writes its context as a literal in the query then it is still DUPLICATE', async () => {
    const eventId = uniqueId('evt');
    const userId = uniqueId('user');
    const literal = `mutation { trackEvent(input: { eventId: "${eventId}", userId: "${userId}", type: VIEW, itemId: "sku-1",
      context: { page: "pdp", tags: ["a", { b: 1 }] } }) { eventId status } }`;
    await gateway.graphql(TRACK, {
      input: { eventId, userId, type: 'VIEW', itemId: 'sku-1', context: { tags: ['a', { b: 1 }], page: 'pdp' } },
    });

    const again = await gateway.graphql(literal);

    expect(again).toEqual({ data: { trackEvent: { eventId, status: 'DUPLICATE' } } });
  });

  it('when an event without occurredAt comes again later then it is still DUPLICATE', async () => {
    const eventId = uniqueId('evt');
    const input = { eventId, userId: uniqueId('user'), type: 'CLICK', itemId: 'sku-1' };
    await gateway.graphql(TRACK, { input });
    await gateway.app.db.event.update({ where: { eventId }, data: { occurredAt: new Date(Date.now() - 60_000) } });

    const again = await gateway.graphql(TRACK, { input });

    expect(again).toEqual({ data: { trackEvent: { eventId, status: 'DUPLICATE' } } });
  });

  it('when a known eventId comes with a different payload then it answers CONFLICT and keeps the first', async () => {
    const eventId = uniqueId('evt');
    const input = { eventId, userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1' };
    await gateway.graphql(TRACK, { input });
    const before = await gateway.app.metrics.registry.getSingleMetricAsString('pgw_events_total');

    const again = await gateway.graphql(TRACK, { input: { ...input, type: 'PURCHASE' } });

    expect(again).toEqual({ data: { trackEvent: { eventId, status: 'CONFLICT' } } });
    expect(await countEvents({ eventId })).toBe(1);
    expect((await gateway.app.db.event.findUniqueOrThrow({ where: { eventId } })).type).toBe('VIEW');
    expect(before).not.toContain('outcome="conflict"');
    expect(await gateway.app.metrics.registry.getSingleMetricAsString('pgw_events_total')).toMatch(
      /pgw_events_total\{outcome="conflict",rule=""\} 1/,
    );
  });

  it.each([
    { name: 'userId', change: { userId: 'someone-else' } },
    { name: 'itemId', change: { itemId: 'sku-2' } },
    { name: 'sessionId', change: { sessionId: 's-2' } },
    { name: 'quantity', change: { quantity: 3 } },
    { name: 'value', change: { value: 10.01 } },
    { name: 'occurredAt', change: { occurredAt: '2026-01-02T00:00:00Z' } },
    { name: 'context', change: { context: { page: 'home' } } },
    { name: 'recommendationId', change: { recommendationId: 'r-2' } },
  ])('when a retry differs in $name then it answers CONFLICT', async ({ change }) => {
    const eventId = uniqueId('evt');
    const input = {
      eventId,
      userId: uniqueId('user'),
      type: 'ADD_TO_CART',
      itemId: 'sku-1',
      sessionId: 's-1',
      quantity: 2,
      value: 10,
      occurredAt: '2026-01-01T00:00:00Z',
      context: { page: 'pdp' },
      recommendationId: 'r-1',
    };
    await gateway.graphql(TRACK, { input });

    const same = await gateway.graphql(TRACK_MANY, { inputs: [input, { ...input, ...change }] });

    expect(same).toEqual({
      data: {
        trackEvents: [
          { eventId, status: 'DUPLICATE' },
          { eventId, status: 'CONFLICT' },
        ],
      },
    });
  });

  it('when no eventId is sent then one is generated and returned', async () => {
    const body = await gateway.graphql<{ trackEvent: { eventId: string } }>(TRACK, {
      input: { userId: uniqueId('user'), type: 'CLICK', itemId: 'sku-2' },
    });

    expect(body.data?.trackEvent.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await countEvents({ eventId: body.data?.trackEvent.eventId })).toBe(1);
  });

  it('when the item is not in the catalogue then the event is accepted and the worker keeps a non-recommendable placeholder', async () => {
    const itemId = uniqueId('unknown-sku');

    const body = await gateway.graphql(TRACK, { input: { userId: uniqueId('user'), type: 'VIEW', itemId } });
    const workers = await startWorkers(gateway.config, {
      db: gateway.app.db,
      logger: createLogger('silent', 'test'),
      metrics: createMetrics(['worker']),
    });
    const placeholder = await eventually(() => gateway.app.db.item.findUnique({ where: { id: itemId } }));
    await workers.stop();

    expect(body.errors).toBeUndefined();
    expect(placeholder).toMatchObject({ placeholder: true, inStock: false });
    const visible = await gateway.graphql(`query($id: ID!) { item(id: $id) { id } }`, { id: itemId });
    expect(visible).toEqual({ data: { item: null } });
  });

  it('when a batch mixes valid and invalid events then the valid are stored and each invalid is reported at its index', async () => {
    const userId = uniqueId('user');
    const inputs = [
      { eventId: uniqueId('evt'), userId, type: 'VIEW', itemId: 'sku-1' },
      { eventId: uniqueId('evt'), userId, type: 'VIEW' },
      { eventId: uniqueId('evt'), userId, type: 'CLICK', itemId: 'sku-2' },
      { eventId: uniqueId('evt'), userId, type: 'VIEW', itemId: 'sku-3', occurredAt: 'yesterday' },
    ];

    const body = await gateway.graphql<{ trackEvents: unknown[] }>(TRACK_MANY, { inputs });

    expect(body.data?.trackEvents).toEqual([
      { eventId: inputs[0]!.eventId, status: 'ACCEPTED' },
      null,
      { eventId: inputs[2]!.eventId, status: 'ACCEPTED' },
      null,
    ]);
    expect(body.errors).toEqual([
      expect.objectContaining({
        path: ['trackEvents', 1],
        extensions: { code: 'INVALID_INPUT', field: 'inputs[1].itemId', rule: 'required' },
      }),
      expect.objectContaining({
        path: ['trackEvents', 3],
        extensions: { code: 'INVALID_INPUT', field: 'inputs[3].occurredAt', rule: 'format' },
      }),
    ]);
    expect(await countEvents({ userId })).toBe(2);
  });

  it('when a batch repeats an eventId then the first is accepted and the repeat is a duplicate', async () => {
    const eventId = uniqueId('evt');
    const input = { eventId, userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1' };

    const body = await gateway.graphql(TRACK_MANY, { inputs: [input, input] });

    expect(body.data).toEqual({
      trackEvents: [
        { eventId, status: 'ACCEPTED' },
        { eventId, status: 'DUPLICATE' },
      ],
    });
    expect(await countEvents({ eventId })).toBe(1);
  });

  describe('bad input', () => {
    const cases: { name: string; input: Record<string, unknown>; field: string; rule: string }[] = [
      { name: 'an item event without itemId', input: { type: 'PURCHASE' }, field: 'input.itemId', rule: 'required' },
      { name: 'an empty userId', input: { userId: '', itemId: 'sku-1' }, field: 'input.userId', rule: 'required' },
      {
        name: 'an unparsable occurredAt',
        input: { itemId: 'sku-1', occurredAt: '2026-13-45T99:00:00Z' },
        field: 'input.occurredAt',
        rule: 'format',
      },
      {
        name: 'an occurredAt more than a day ahead',
        input: { itemId: 'sku-1', occurredAt: new Date(Date.now() + 2 * 86_400_000).toISOString() },
        field: 'input.occurredAt',
        rule: 'notFuture',
      },
      {
        name: 'a userId over 128 characters',
        input: { userId: 'u'.repeat(129), itemId: 'sku-1' },
        field: 'input.userId',
        rule: 'maxLength',
      },
      {
        name: 'an itemId over 128 characters',
        input: { itemId: 'i'.repeat(129) },
        field: 'input.itemId',
        rule: 'maxLength',
      },
      {
        name: 'a context over 8 KiB',
        input: { itemId: 'sku-1', context: { blob: 'x'.repeat(9000) } },
        field: 'input.context',
        rule: 'maxSize',
      },
      {
        name: 'a NUL character in a sessionId',
        input: { itemId: 'sku-1', sessionId: 'a\u0000b' },
        field: 'input.sessionId',
        rule: 'noNul',
      },
      {
        name: 'a NUL character in the context',
        input: { itemId: 'sku-1', context: { note: 'a\u0000b' } },
        field: 'input.context.note',
        rule: 'noNul',
      },
      { name: 'a quantity of zero', input: { itemId: 'sku-1', quantity: 0 }, field: 'input.quantity', rule: 'range' },
    ];

    it.each(cases)(
      'when it is $name then INVALID_INPUT names $field and nothing is stored',
      async ({ input, field, rule }) => {
        const userId = uniqueId('user');

        const body = await gateway.graphql(TRACK, { input: { userId, type: 'VIEW', ...input } });

        expect(body.data).toBeNull();
        expect(body.errors).toEqual([expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field, rule } })]);
        expect(body.errors?.[0]?.message).toContain(field);
        expect(await countEvents({ userId })).toBe(0);
      },
    );

    it('when the event type is unknown then the request is rejected naming the field and nothing is stored', async () => {
      const userId = uniqueId('user');

      const body = await gateway.graphql(TRACK, { input: { userId, type: 'TELEPORT', itemId: 'sku-1' } });

      expect(body.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
      expect(body.errors?.[0]?.message).toMatch(/input\.type.*"TELEPORT" does not exist in "EventType"/);
      expect(await countEvents({ userId })).toBe(0);
    });

    it('when one event of a batch has an unknown type then the error names its index and nothing is stored', async () => {
      const userId = uniqueId('user');
      const inputs = [
        { userId, type: 'VIEW', itemId: 'sku-1' },
        { userId, type: 'VIEWED', itemId: 'sku-1' },
      ];

      const body = await gateway.graphql(TRACK_MANY, { inputs });

      expect(body.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
      expect(body.errors?.[0]?.message).toMatch(/at "inputs\[1\]\.type".*"VIEWED" does not exist in "EventType"/);
      expect(await countEvents({ userId })).toBe(0);
    });

    it('when userId is missing then the request is rejected naming the field', async () => {
      const body = await gateway.graphql(TRACK, { input: { type: 'VIEW', itemId: 'sku-1' } });

      expect(body.errors?.[0]?.extensions?.code).toBe('INVALID_INPUT');
      expect(body.errors?.[0]?.message).toMatch(/Field "userId" of required type "ID!" was not provided/);
    });

    it('when a batch is over the limit then it is refused whole and nothing is stored', async () => {
      const userId = uniqueId('user');
      const inputs = Array.from({ length: 6 }, () => ({ userId, type: 'VIEW', itemId: 'sku-1' }));

      const body = await gateway.graphql(TRACK_MANY, { inputs });

      expect(body.errors).toEqual([
        expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'inputs', rule: 'maxItems' } }),
      ]);
      expect(await countEvents({ userId })).toBe(0);
    });

    it('when the server got bad input it keeps serving', async () => {
      const body = await gateway.graphql(TRACK, { input: { userId: uniqueId('user'), type: 'VIEW', itemId: 'sku-1' } });

      expect(body.errors).toBeUndefined();
    });
  });
});

describe('back-pressure', () => {
  it('when more stored events wait for the workers than MAX_EVENT_BACKLOG then new ones are refused OVERLOADED, and taken again once the workers catch up', async () => {
    // No workers at first: the events it accepts stay unprocessed.
    const gateway = await startGateway(await createTestConfig({ MAX_EVENT_BACKLOG: '3' }), { workers: false });
    try {
      const userId = uniqueId('shopper');
      type Tracked = { trackEvent: { status: string } };
      const answers: GraphQLBody<Tracked>[] = [];
      const send = async () => {
        const answer = await gateway.graphql<Tracked>(TRACK, { input: { userId, type: 'VIEW', itemId: 'sku-1' } });
        answers.push(answer);
        return answer;
      };
      // Sent until the gateway's next reading of the backlog (every half second) sees it past 3.
      const refused = await eventually(async () => {
        const answer = await send();
        return answer.errors ? answer : undefined;
      }, 5000);
      const untilRefused = answers.splice(0);
      const accepted = untilRefused.filter((answer) => answer.data?.trackEvent.status === 'ACCEPTED');
      const stored = await gateway.app.db.event.count({ where: { userId } });
      const workers = await startWorkers(gateway.config, {
        db: gateway.app.db,
        logger: createLogger('silent', 'test'),
        metrics: createMetrics(['worker']),
      });
      try {
        const again = await eventually(async () => {
          const answer = await send();
          return answer.errors ? undefined : answer;
        }, 20_000);

        expect(accepted.length).toBeGreaterThan(3);
        expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'OVERLOADED' });
        // Every answer was ACCEPTED or OVERLOADED, and only the accepted were stored: nothing is half in.
        expect(untilRefused.length - accepted.length).toBe(1);
        expect(stored).toBe(accepted.length);
        expect(again.data?.trackEvent.status).toBe('ACCEPTED');
      } finally {
        await workers.stop();
      }
    } finally {
      await gateway.stop();
    }
  });
});
