import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/services/events.ts';
import type { ExperimentInput } from '../../src/services/experiments.ts';
import { eventually, type RunningGateway, startGateway, subscribe } from '../helpers/gateway.ts';
import { sample, scrape } from '../helpers/prometheus.ts';
import { createTestConfig, uniqueId } from '../helpers/test-env.ts';

const UPSERT = `mutation($input: ExperimentInput!) {
  upsertExperiment(input: $input) { id placement trafficShare phase running variants { name weight strategy } history { kind phase } }
}`;
const STOP = `mutation($id: ID!) { stopExperiment(id: $id) { id running stoppedAt history { kind phase } } }`;
const RESULTS = `query($id: ID!, $phase: Int) {
  experimentResults(id: $id, phase: $phase) {
    phase attributionWindowHours
    variants {
      name control shoppers lists clicks clickThroughRate purchaseRate addToCartRate revenuePerShopper
      versusControl { purchaseRate { estimate low high pValue significant } revenuePerShopper { estimate low high significant } }
    }
    srm { chiSquare pValue flagged }
    series { variant points { shoppers buyers rate low high } }
  }
}`;
const RECOMMEND = `query($userId: ID!, $placement: ID) {
  recommendations(userId: $userId, k: 5, placement: $placement) {
    recommendationId experiment { id variant phase } items { item { id } }
  }
}`;

interface Results {
  experimentResults: {
    phase: number;
    attributionWindowHours: number;
    variants: {
      name: string;
      control: boolean;
      shoppers: number;
      lists: number;
      clicks: number;
      clickThroughRate: number;
      purchaseRate: number;
      addToCartRate: number;
      revenuePerShopper: number;
      versusControl: {
        purchaseRate: { estimate: number; low: number; high: number; pValue: number; significant: boolean } | null;
        revenuePerShopper: { estimate: number; low: number; high: number; significant: boolean } | null;
      } | null;
    }[];
    srm: { chiSquare: number; pValue: number; flagged: boolean };
    series: {
      variant: string;
      points: { shoppers: number; buyers: number; rate: number; low: number; high: number }[];
    }[];
  };
}

/** A seeded generator (mulberry32): the synthetic shoppers behave the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('experiments', () => {
  let gateway: RunningGateway;
  const items = Array.from({ length: 12 }, (_, i) => ({ id: uniqueId(`item${i}`), name: `Item ${i}`, price: 20 }));
  const star = items[11]!.id;

  const upsert = (input: ExperimentInput) => gateway.graphql(UPSERT, { input });
  const results = async (id: string, phase?: number) => {
    await gateway.app.services.experiments.flushImpressions();
    const body = await gateway.graphql<Results>(RESULTS, { id, phase });
    expect(body.errors).toBeUndefined();
    return body.data!.experimentResults;
  };
  const placement = async (id: string) => {
    const body = await gateway.graphql(`mutation($id: ID!) { upsertPlacement(id: $id, rules: {}) { id } }`, { id });
    expect(body.errors).toBeUndefined();
    return id;
  };
  /** Starts an A/A experiment (variants a and b, equal weights) on a placement of its own. */
  const startAa = async (label: string) => {
    const where = await placement(uniqueId(label));
    const id = uniqueId(label);
    await upsert({
      id,
      placement: where,
      variants: [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
      ],
    });
    return { id, where };
  };
  /** Serves each shopper one list in-process (the GraphQL path is tested separately) and returns them. */
  const serve = async (shoppers: readonly string[], placementId: string) => {
    const lists = [];
    for (const userId of shoppers) {
      lists.push(await gateway.app.services.recommendations.recommend(userId, 5, { placement: placementId }));
    }
    return lists;
  };
  /** Every event stored, then applied by the feature worker, which attributes it. */
  const track = async (events: EventInput[]) => {
    const eventIds: string[] = [];
    for (let i = 0; i < events.length; i += 500) {
      const results = await gateway.app.services.events.trackMany(events.slice(i, i + 500));
      for (const result of results) {
        if (result instanceof Error) throw result;
        eventIds.push(result.eventId);
      }
    }
    await processed(eventIds);
  };
  const processed = (eventIds: string[]) =>
    eventually(
      async () => (await gateway.app.db.event.count({ where: { eventId: { in: eventIds }, processedAt: null } })) === 0,
      30_000,
    );

  beforeAll(async () => {
    gateway = await startGateway(await createTestConfig());
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, { items });
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it('when a shopper is served under an experiment then the list names its variant, sticks, and REST says it too', async () => {
    const where = await placement(uniqueId('sticky'));
    const id = uniqueId('sticky');
    const started = await upsert({
      id,
      placement: where,
      variants: [
        { name: 'control', weight: 1 },
        { name: 'trending', weight: 1, strategy: 'trending' },
      ],
    });
    expect(started.errors).toBeUndefined();
    const shopper = uniqueId('shopper');

    const first = await gateway.graphql<{
      recommendations: { recommendationId: string; experiment: { id: string; variant: string; phase: number } };
    }>(RECOMMEND, { userId: shopper, placement: where });
    const again = await gateway.graphql<typeof first.data & object>(RECOMMEND, { userId: shopper, placement: where });
    const outside = await gateway.graphql<{ recommendations: { experiment: unknown } }>(RECOMMEND, { userId: shopper });
    const rest = await fetch(`${gateway.url}/api/recommendations?user_id=${shopper}&k=3&placement=${where}`).then(
      (response) =>
        response.json() as Promise<{ recommendation_id: string; experiment: { id: string; variant: string } }>,
    );

    const list = first.data!.recommendations;
    expect(list.experiment).toMatchObject({ id, phase: 1 });
    expect(['control', 'trending']).toContain(list.experiment.variant);
    expect(list.recommendationId.startsWith(`x1.${id}.1.${list.experiment.variant}.`)).toBe(true);
    expect(again.data!.recommendations.experiment).toEqual(list.experiment);
    expect(again.data!.recommendations.recommendationId).not.toBe(list.recommendationId);
    expect(outside.data!.recommendations.experiment).toBeNull();
    expect(rest.experiment).toMatchObject({ id, variant: list.experiment.variant });
    expect(rest.recommendation_id.startsWith(`x1.${id}.`)).toBe(true);
    await gateway.graphql(STOP, { id });
  });

  it('when another gateway serves the same shopper then it follows the experiment and gives the same variant', async () => {
    const where = await placement(uniqueId('replica'));
    const id = uniqueId('replica');
    const replica = await startGateway(gateway.config, { workers: false });
    try {
      await upsert({
        id,
        placement: where,
        variants: [
          { name: 'a', weight: 1 },
          { name: 'b', weight: 1 },
        ],
      });
      const shoppers = Array.from({ length: 20 }, () => uniqueId('both'));

      const here = await serve(shoppers, where);
      const there = await eventually(async () => {
        const lists = [];
        for (const userId of shoppers) {
          lists.push(await replica.app.services.recommendations.recommend(userId, 5, { placement: where }));
        }
        return lists.every((list) => list.experiment?.id === id) && lists;
      });

      expect(there.map((list) => list.experiment?.variant)).toEqual(here.map((list) => list.experiment?.variant));
      expect(new Set(here.map((list) => list.experiment?.variant)).size).toBe(2);
      await gateway.graphql(STOP, { id });
      await eventually(async () => {
        const list = await replica.app.services.recommendations.recommend(shoppers[0]!, 5, { placement: where });
        return list.experiment === null;
      });
    } finally {
      await replica.stop();
    }
  });

  it('when one variant converts better then the analysis finds it with an interval excluding zero, under duplicates and after a rebuild', async () => {
    const where = await placement(uniqueId('sim'));
    const id = uniqueId('sim');
    await upsert({
      id,
      placement: where,
      variants: [
        { name: 'control', weight: 1, rules: { filter: { excludeItemIds: [star] } } },
        { name: 'star', weight: 1, rules: { pins: [{ itemId: star, position: 1 }] } },
      ],
    });
    const random = seeded(7);
    const shoppers = Array.from({ length: 400 }, (_, i) => `sim-${i}-${uniqueId('s')}`);

    const lists = await serve(shoppers, where);
    // Synthetic shoppers: each clicks the top item (sending the list's id); the star item sells to 35 % of those
    // who see it on top, anything else to 10 %. The purchase carries no id: the 24 h window attributes it.
    const events: EventInput[] = [];
    for (const list of lists) {
      const top = list.items[0]!.item.id;
      const at = Date.now() - 60_000;
      events.push({
        eventId: uniqueId('click'),
        userId: list.userId,
        type: 'CLICK',
        itemId: top,
        recommendationId: list.recommendationId,
        occurredAt: new Date(at).toISOString(),
      });
      if (random() < (top === star ? 0.35 : 0.1)) {
        events.push({
          eventId: uniqueId('buy'),
          userId: list.userId,
          type: 'PURCHASE',
          itemId: top,
          value: 20,
          occurredAt: new Date(at + 30_000).toISOString(),
        });
      }
    }
    await track(events);
    const found = await results(id);
    // Every event again (retries): nothing counts twice.
    await track(events);
    const retried = await results(id);
    // The attributed rows lost, then rebuilt from the event log.
    await gateway.app.db.event.updateMany({
      where: { experimentId: id },
      data: { experimentId: null, experimentPhase: null, experimentVariant: null },
    });
    const rebuilt = await gateway.graphql<{ rebuildExperimentAttribution: number }>(
      `mutation($id: ID!) { rebuildExperimentAttribution(id: $id) }`,
      { id },
    );
    const afterRebuild = await results(id);

    const [control, better] = found.variants;
    expect(control).toMatchObject({ name: 'control', control: true });
    expect(control!.shoppers + better!.shoppers).toBe(400);
    expect(control!.lists).toBe(control!.shoppers);
    expect(better!.clickThroughRate).toBe(1);
    expect(better!.purchaseRate).toBeGreaterThan(control!.purchaseRate);
    const difference = better!.versusControl!.purchaseRate!;
    expect(difference.significant).toBe(true);
    expect(difference.low).toBeGreaterThan(0);
    expect(better!.versusControl!.revenuePerShopper!.low).toBeGreaterThan(0);
    expect(found.srm.flagged).toBe(false);
    expect(found.attributionWindowHours).toBe(24);
    const series = found.series.find((s) => s.variant === 'star')!;
    expect(series.points.at(-1)).toMatchObject({ shoppers: better!.shoppers, rate: better!.purchaseRate });
    expect(retried).toEqual(found);
    expect(rebuilt.data?.rebuildExperimentAttribution).toBe(events.filter((e) => e.recommendationId).length);
    expect(afterRebuild).toEqual(found);
    await gateway.graphql(STOP, { id });
  });

  it('when both variants serve the same then most repetitions find no significant difference', async () => {
    // Fixed ids (this run's database and Redis prefix are its own): the assignment hashes them, so random
    // ids made the count of significant repetitions differ from run to run, past 4 in about one run in 60.
    const where = await placement('aa-placement');
    const random = seeded(11);
    const repetitions = 20;
    let significant = 0;
    /** Repetitions whose both variants had attributed purchases: the comparison then compared something. */
    let compared = 0;

    for (let r = 0; r < repetitions; r++) {
      const id = `aa${r}`;
      await upsert({
        id,
        placement: where,
        variants: [
          { name: 'a', weight: 1 },
          { name: 'b', weight: 1 },
        ],
      });
      const lists = await serve(
        Array.from({ length: 200 }, (_, i) => `aa-${r}-${i}`),
        where,
      );
      const events: EventInput[] = lists.flatMap((list) =>
        random() < 0.2
          ? [
              {
                userId: list.userId,
                type: 'PURCHASE' as const,
                itemId: list.items[0]!.item.id,
                value: 20,
                recommendationId: list.recommendationId,
              },
            ]
          : [],
      );
      await track(events);
      const found = await results(id);
      if (found.variants[1]!.versusControl!.purchaseRate!.significant) significant++;
      if (found.variants.every((variant) => variant.purchaseRate > 0)) compared++;
      await gateway.graphql(STOP, { id });
    }

    // At α = 0.05 about one in twenty; five or more has probability 0.3 %.
    expect(compared).toBe(repetitions);
    expect(significant).toBeLessThanOrEqual(4);
  });

  it('when the assignment is skewed then the sample-ratio check flags it', async () => {
    const { id, where } = await startAa('srm');
    await serve(
      Array.from({ length: 600 }, (_, i) => `srm-${i}-${uniqueId('s')}`),
      where,
    );
    const fair = await results(id);

    // A bug that loses half of one variant's exposures (a broken logger, a redirect that drops them). Half, not
    // a third: the 600 shoppers split at random, and a third of a variant that drew 316 or more (1.3 standard
    // deviations, about one run in ten) leaves p above 0.001; half is flagged unless it drew 4.5 deviations over.
    const lost = await gateway.app.db.experimentExposure.findMany({
      where: { experimentId: id, variant: 'b' },
      select: { userId: true },
    });
    await gateway.app.db.experimentExposure.deleteMany({
      where: {
        experimentId: id,
        userId: { in: lost.slice(0, Math.ceil(lost.length / 2)).map((row) => row.userId) },
      },
    });
    const skewed = await results(id);

    expect(fair.srm.flagged).toBe(false);
    expect(skewed.srm.flagged).toBe(true);
    expect(skewed.srm.pValue).toBeLessThan(0.001);
    await gateway.graphql(STOP, { id });
  });

  it('when the allocation changes then a new phase starts and the old phase keeps its results', async () => {
    const { id, where } = await startAa('phase');
    await serve(['p1', 'p2', 'p3'].map(uniqueId), where);

    const same = await upsert({
      id,
      placement: where,
      variants: [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
      ],
    });
    const changed = await upsert({
      id,
      placement: where,
      variants: [
        { name: 'a', weight: 3 },
        { name: 'b', weight: 1 },
      ],
    });
    const [list] = await serve([uniqueId('p4')], where);
    const phase1 = await results(id, 1);
    const phase2 = await results(id);
    const stopped = await gateway.graphql<{ stopExperiment: { running: boolean; history: { kind: string }[] } }>(STOP, {
      id,
    });
    const [after] = await serve([uniqueId('p5')], where);

    expect(same.data).toMatchObject({ upsertExperiment: { phase: 1 } });
    expect(changed.data).toMatchObject({ upsertExperiment: { phase: 2 } });
    expect(list!.experiment?.phase).toBe(2);
    expect(phase1.variants.reduce((sum, v) => sum + v.shoppers, 0)).toBe(3);
    expect(phase2.variants.reduce((sum, v) => sum + v.shoppers, 0)).toBe(1);
    expect(stopped.data?.stopExperiment.running).toBe(false);
    expect(stopped.data?.stopExperiment.history.map((h) => h.kind)).toEqual(['STARTED', 'CHANGED', 'STOPPED']);
    expect(after!.experiment).toBeNull();
  });

  it('when an experiment starts on a watched placement then the subscriber gets a list of its variant', async () => {
    const where = await placement(uniqueId('live'));
    const id = uniqueId('live');
    const shopper = uniqueId('watcher');
    const pushes = subscribe<{
      recommendationsUpdated: {
        recommendationId: string;
        experiment: { id: string } | null;
        change: { trigger: string };
      };
    }>(
      gateway.wsClient(),
      `subscription($userId: ID!, $placement: ID) {
        recommendationsUpdated(userId: $userId, k: 3, placement: $placement) { recommendationId experiment { id } change { trigger } }
      }`,
      { userId: shopper, placement: where },
    );
    const first = await pushes.next();

    await upsert({
      id,
      placement: where,
      variants: [
        { name: 'a', weight: 1 },
        { name: 'b', weight: 1 },
      ],
    });
    const pushed = await pushes.next();
    await gateway.graphql(STOP, { id });
    const ended = await pushes.next();

    expect(first.data?.recommendationsUpdated.experiment).toBeNull();
    expect(pushed.data?.recommendationsUpdated).toMatchObject({
      experiment: { id },
      change: { trigger: 'EXPERIMENT' },
    });
    expect(ended.data?.recommendationsUpdated).toMatchObject({ experiment: null, change: { trigger: 'EXPERIMENT' } });
    await eventually(async () => {
      const rows = await gateway.app.db.experimentExposure.findMany({ where: { experimentId: id } });
      return rows.length === 1 && rows[0]?.lists === 1;
    });
    await pushes.close();
  });

  it('when an event carries a forged or malformed recommendationId then it is stored, not attributed, and counted', async () => {
    const before = await scrape(gateway.url);
    const shopper = uniqueId('forger');
    const forged = `x1.someexp.1.b.AAAAAAAAAAAA.${'A'.repeat(22)}`;

    const tracked = await gateway.graphql<{ trackEvents: { eventId: string; status: string }[] }>(
      `mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { eventId status } }`,
      {
        inputs: [
          { userId: shopper, type: 'CLICK', itemId: items[0]!.id, recommendationId: forged },
          { userId: shopper, type: 'CLICK', itemId: items[1]!.id, recommendationId: 'not-a-list-id' },
        ],
      },
    );
    await processed(tracked.data?.trackEvents.map((r) => r.eventId) ?? []);
    const after = await scrape(gateway.url);

    expect(tracked.data?.trackEvents.map((r) => r.status)).toEqual(['ACCEPTED', 'ACCEPTED']);
    expect(await gateway.app.db.event.count({ where: { userId: shopper } })).toBe(2);
    expect(await gateway.app.db.event.count({ where: { userId: shopper, experimentId: { not: null } } })).toBe(0);
    const count = (text: string, outcome: string) =>
      sample(text, 'pgw_experiment_attributions_total', { outcome }) ?? 0;
    expect(count(after, 'forged') - count(before, 'forged')).toBe(1);
    expect(count(after, 'malformed') - count(before, 'malformed')).toBe(1);
  });

  it('when an event reaches the worker through the outbox sweep then it is attributed from its stored row', async () => {
    const { id, where } = await startAa('swept');
    const [list] = await serve([uniqueId('swept-shopper')], where);
    const eventId = uniqueId('click');
    await track([
      {
        eventId,
        userId: list!.userId,
        type: 'CLICK',
        itemId: list!.items[0]!.item.id,
        recommendationId: list!.recommendationId,
      },
    ]);
    // As after a lost hand-off: unprocessed and unattributed, so only the sweep, which reads the row, brings it back.
    await gateway.app.db.event.update({
      where: { eventId },
      data: { processedAt: null, experimentId: null, experimentPhase: null, experimentVariant: null },
    });
    await processed([eventId]);

    expect(await gateway.app.db.event.findUnique({ where: { eventId } })).toMatchObject({
      experimentId: id,
      experimentPhase: 1,
      experimentVariant: list!.experiment!.variant,
    });
    await gateway.graphql(STOP, { id });
  });

  describe('bad input', () => {
    const two = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ];
    const cases: [string, () => Promise<ExperimentInput>, string, string][] = [
      [
        'a weight that is not positive',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 0 },
            { name: 'b', weight: 1 },
          ],
        }),
        'input.variants[0].weight',
        'positive',
      ],
      [
        'a negative weight',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: -2 },
          ],
        }),
        'input.variants[1].weight',
        'positive',
      ],
      [
        'weights that do not sum to a finite positive number',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1.7e308 },
            { name: 'b', weight: 1.7e308 },
          ],
        }),
        'input.variants',
        'sum',
      ],
      [
        'fewer than two variants',
        async () => ({ id: uniqueId('x'), variants: [{ name: 'a', weight: 1 }] }),
        'input.variants',
        'minItems',
      ],
      [
        'more than ten variants',
        async () => ({
          id: uniqueId('x'),
          variants: Array.from({ length: 11 }, (_, i) => ({ name: `v${i}`, weight: 1 })),
        }),
        'input.variants',
        'maxItems',
      ],
      [
        'an unknown model version',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: 1, modelVersion: 999_999 },
          ],
        }),
        'input.variants[1].modelVersion',
        'exists',
      ],
      [
        'an unknown variant placement',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: 1, placement: 'no-such-placement' },
          ],
        }),
        'input.variants[1].placement',
        'exists',
      ],
      [
        'an unknown experiment placement',
        async () => ({ id: uniqueId('x'), placement: 'no-such-placement', variants: two }),
        'input.placement',
        'exists',
      ],
      [
        'a traffic share above 1',
        async () => ({ id: uniqueId('x'), trafficShare: 1.5, variants: two }),
        'input.trafficShare',
        'range',
      ],
      [
        'a traffic share of 0',
        async () => ({ id: uniqueId('x'), trafficShare: 0, variants: two }),
        'input.trafficShare',
        'range',
      ],
      [
        'a negative traffic share',
        async () => ({ id: uniqueId('x'), trafficShare: -0.1, variants: two }),
        'input.trafficShare',
        'range',
      ],
      [
        'an unknown strategy',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'b', weight: 1, strategy: 'magic' },
          ],
        }),
        'input.variants[1].strategy',
        'oneOf',
      ],
      [
        'two variants of one name',
        async () => ({
          id: uniqueId('x'),
          variants: [
            { name: 'a', weight: 1 },
            { name: 'a', weight: 1 },
          ],
        }),
        'input.variants[1].name',
        'unique',
      ],
      ['an id with a dot', async () => ({ id: 'a.b', variants: two }), 'input.id', 'format'],
      [
        'a second running experiment on the same placement',
        async () => {
          const where = await placement(uniqueId('busy'));
          const first = await upsert({ id: uniqueId('first'), placement: where, variants: two });
          expect(first.errors).toBeUndefined();
          return { id: uniqueId('second'), placement: where, variants: two };
        },
        'input.placement',
        'conflict',
      ],
    ];

    it.each(cases)('refuses %s', async (_name, input, field, rule) => {
      const body = await upsert(await input());

      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'INVALID_INPUT', field, rule });
    });

    it('refuses an experiment on every list while another runs', async () => {
      const refused = await upsert({ id: uniqueId('everything'), variants: two });

      expect(refused.errors?.[0]?.extensions).toMatchObject({
        code: 'INVALID_INPUT',
        field: 'input.placement',
        rule: 'conflict',
      });
    });
  });
});
